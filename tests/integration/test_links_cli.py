"""`sojourn links revoke` and `sojourn serve` at the command line: their output, refusals and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


SERVE_TABLE = '[serve]\npublic_url = "https://sojourn.example.com"\nsecret_env = "SOJOURN_LINK_SECRET"\n'
FILE_NOTIFIER = '[notifiers.file]\npath = "notices.jsonl"\n'


@pytest.mark.parametrize("command", [("serve",), ("daemon", "--once")])
def test_serve_and_the_daemon_refuse_a_link_secret_shorter_than_32_bytes(
        on_db: Sojourn, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]) -> None:
    """A 31-byte secret: one `Error:` line naming the variable (never the secret), exit 2, nothing written."""
    config = tmp_path / "sojourn.toml"
    config.write_text(SERVE_TABLE + FILE_NOTIFIER, encoding="utf-8")
    monkeypatch.setenv("SOJOURN_LINK_SECRET", "s" * 31)
    before = snapshot(db_url)
    refused = on_db("--config", str(config), *command)
    assert (refused.code, refused.stdout) == (2, "")
    assert refused.stderr.startswith("Error: [serve] secret_env: the secret in SOJOURN_LINK_SECRET is 31 bytes; a "
                                     "signing secret must be at least 32 bytes")
    assert "s" * 31 not in refused.stderr
    assert snapshot(db_url) == before


@pytest.mark.parametrize("secret", [None, ""])
def test_the_daemon_refuses_to_start_when_public_url_is_set_but_its_secret_is_missing(
        on_db: Sojourn, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str | None) -> None:
    """[serve] public_url with its secret variable unset or empty: exit 2 instead of notices without links."""
    config = tmp_path / "sojourn.toml"
    config.write_text(SERVE_TABLE + FILE_NOTIFIER, encoding="utf-8")
    if secret is None:
        monkeypatch.delenv("SOJOURN_LINK_SECRET", raising=False)
    else:
        monkeypatch.setenv("SOJOURN_LINK_SECRET", secret)
    before = snapshot(db_url)
    refused = on_db("--config", str(config), "daemon", "--once")
    assert (refused.code, refused.stdout) == (2, "")
    assert refused.stderr.startswith("Error: config [serve]: public_url is set but the environment variable "
                                     "SOJOURN_LINK_SECRET named by secret_env is not set or empty")
    assert not (tmp_path / "cwd" / "notices.jsonl").exists()
    assert snapshot(db_url) == before
