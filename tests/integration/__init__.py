"""Integration tests: the engine and the CLI against real SQLite and PostgreSQL databases."""
