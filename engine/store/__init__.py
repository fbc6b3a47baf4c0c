"""Persistence: SQLModel tables (`models`), engine setup and migrations (`db`), and the named hot queries (`queries`)."""
