"""The erasure rules on plain values: which strings become the pseudonym, which become blank, which stay."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.program.audit import check_chain, erase_strings, seal
from engine.program.privacy import ErasedPerson, event_replacements

ANA = ErasedPerson(3, "ana.lima@example.com", "Ana Lima", "erased-0a1b2c3d@erased.invalid", "Erased person 0a1b2c3d")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_email_and_name_become_the_pseudonym() -> None:
    """A string that is the person's email or name, in any case, becomes the matching pseudonym."""
    assert ANA.erased_value("Ana.Lima@example.com", "by", authored=False) == ANA.pseudonymous_email
    assert ANA.erased_value("ana lima", "name", authored=False) == ANA.pseudonymous_name


def test_text_naming_the_person_is_blanked_and_other_text_stays() -> None:
    """Free text that carries the email or the full name as a word is blanked; a name inside another word is not a
    mention, and text about others stays."""
    assert ANA.erased_value("call with ANA LIMA about her return", "notes", authored=False) == ""
    assert ANA.erased_value("wrote to ana.lima@example.com", "reason", authored=False) == ""
    assert ANA.erased_value("Banana Limassol", "notes", authored=False) == "Banana Limassol"
    assert ANA.erased_value("quarterly revenue", "measure", authored=False) == "quarterly revenue"


def test_free_text_the_person_wrote_is_blanked_but_not_vocabulary() -> None:
    """In an event the person wrote, free-text keys are blanked; stage names and kinds are not free text."""
    assert ANA.erased_value("hiring is slow", "note", authored=True) == ""
    assert ANA.erased_value("coaching", "to", authored=True) == "coaching"


def test_substituted_generated_text_keeps_its_words() -> None:
    """Text Sojourn wrote keeps its words, with the person replaced by the pseudonym."""
    assert ANA.substituted("Dear Ana Lima, ana.lima@example.com has a task") == (
        f"Dear {ANA.pseudonymous_name}, {ANA.pseudonymous_email} has a task")


def test_erased_event_keeps_its_hash_and_its_chain() -> None:
    """An event rewritten by the rules keeps its hash, so its chain stays intact once the erasure is recorded."""
    event = seal(7, 1, T0, ANA.email, "checkin_recorded", {"by": ANA.email, "note": "slow", "feedback": None,
                                                          "role": "assignee"}, None)
    replacements = event_replacements(event, ANA)
    assert replacements == {"actor": ANA.pseudonymous_email, "details/by": ANA.pseudonymous_email,
                            "details/note": ""}
    erased = erase_strings(event, replacements)
    record = seal(7, 2, T0, "dpo", "person_erased", {"events": [1], "reason": "asked"}, event.hash)
    assert erased.hash == event.hash
    assert check_chain(7, [erased, record], (2, record.hash)) is None


def test_a_key_with_a_slash_is_one_step_of_a_path() -> None:
    """A details key holding "/" is escaped in the path, so the string under it can be erased like any other."""
    event = seal(7, 1, T0, "admin", "outcome_recorded", {"impact": {"sales/marketing": f"{ANA.name} led it"}}, None)
    replacements = event_replacements(event, ANA)
    assert replacements == {"details/impact/sales~1marketing": ""}
    assert erase_strings(event, replacements).details == '{"impact":{"sales/marketing":""}}'
