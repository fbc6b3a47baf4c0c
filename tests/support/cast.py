"""The cast of test people: one person per role of leadership-development, in several time zones."""

from __future__ import annotations

WORKFLOW = "leadership-development"

# role -> (email, name, time zone)
CAST: dict[str, tuple[str, str, str]] = {
    "assignee": ("ana.lima@example.com", "Ana Lima", "America/Sao_Paulo"),
    "sending_manager": ("sam.home@example.com", "Sam Home", "America/Sao_Paulo"),
    "host_manager": ("hanna.host@example.com", "Hanna Host", "Europe/Berlin"),
    "coach": ("cole.coach@example.com", "Cole Coach", "Europe/Berlin"),
    "sponsor": ("sara.sponsor@example.com", "Sara Sponsor", "America/Sao_Paulo"),
    "talent": ("tess.talent@example.com", "Tess Talent", "UTC"),
    "mobility": ("mo.mobility@example.com", "Mo Mobility", "Asia/Kolkata"),
}

# The cast's assignment: from Brazil to Germany, eighteen months.
ASSIGNMENT = {"home": "BR", "host": "DE", "start": "2026-03-01", "end": "2027-08-31"}


def emails() -> dict[str, str]:
    """Every role of the cast, role -> email."""
    return {role: email for role, (email, _, _) in CAST.items()}


def stakeholders() -> dict[str, str]:
    """Every role but the assignee, role -> email."""
    return {role: email for role, email in emails().items() if role != "assignee"}
