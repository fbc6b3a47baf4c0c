"""Persistence: SQLModel tables (`models`), engine setup and migrations (`db`), named hot queries (`queries`)."""
