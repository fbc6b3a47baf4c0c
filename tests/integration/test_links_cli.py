"""`sojourn links revoke` and `sojourn serve` at the command line: their output, refusals and exit codes."""

from __future__ import annotations

import json

from integration.conftest import Sojourn, snapshot


def test_links_revoke_prints_the_instant_and_is_repeatable(on_db: Sojourn, people: dict[str, str]) -> None:
    """Revoking twice moves the cut-off forward; --json prints one document naming the person."""
    first = on_db("links", "revoke", "--person", people["coach"], "--json")
    assert first.code == 0, first.stderr
    shown = json.loads(first.stdout)
    assert shown["person"] == people["coach"]
    assert on_db("links", "revoke", "--person", people["coach"]).stdout.startswith(f"revoked every link of "
                                                                                   f"{people['coach']}")


def test_links_revoke_refuses_an_unknown_person_and_writes_nothing(on_db: Sojourn, db_url: str,
                                                                   people: dict[str, str]) -> None:
    """An unknown email is refused with exit 1 and an Error line; nothing is written."""
    before = snapshot(db_url)
    refused = on_db("links", "revoke", "--person", "nobody@example.com")
    assert (refused.code, refused.stdout) == (1, "")
    assert refused.stderr.startswith("Error: --person: no person with email nobody@example.com")
    assert snapshot(db_url) == before


def test_serve_without_a_secret_or_public_url_refuses_to_start(on_db: Sojourn, people: dict[str, str]) -> None:
    """No [serve] public_url and secret: exit 2 with an Error line saying what to configure."""
    refused = on_db("serve")
    assert (refused.code, refused.stdout) == (2, "")
    assert refused.stderr.startswith("Error: config [serve]: public_url and secret_env")
