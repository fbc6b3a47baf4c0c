"""A calendar feed from a running `sojourn serve`, as a calendar client subscribes to it: one plain GET, no cookie,
no redirect, read by icalendar; `links revoke` at the command line ends it with 410."""

from __future__ import annotations

import dataclasses
import http.client
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from icalendar import Calendar

from engine.program import assignments
from engine.store.db import open_db
from tests.acceptance.conftest import Sojourn
from tests.support import scenarios
from tests.support.web import LINK_SECRET, SECRET_ENV, free_port, running_server, write_config


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(url: str) -> Response:
    """One GET, exactly as sent: a redirect would come back as itself, not be followed."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        connection.request("GET", parts.path, headers={"User-Agent": "a calendar client"})
        answer = connection.getresponse()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        connection.close()


@pytest.fixture
def cli(sojourn: Sojourn, tmp_path: Path) -> Iterator[Sojourn]:
    """The command line beside a running `sojourn serve` (with the secret, as an administrator's shell has it), on
    a database with the cast and one assignment with open tasks."""
    url = sojourn.env.get("SOJOURN_DATABASE_URL") or f"sqlite:///{sojourn.cwd / 'sojourn.db'}"
    db = open_db(url)
    try:
        scenarios.add_cast(db)
        assignments.create_assignment(db, scenarios.cast_spec(), actor="admin", now=datetime.now(UTC))
    finally:
        db.dispose()
    port = free_port()
    write_config(sojourn.cwd, port)
    with running_server(sojourn.binary, sojourn.cwd, sojourn.env, port, tmp_path / "serve.log"):
        yield dataclasses.replace(sojourn, env={**sojourn.env, SECRET_ENV: LINK_SECRET})


def _uids(body: bytes) -> set[str]:
    return {str(event["UID"]) for event in Calendar.from_ical(body).walk("VEVENT")}


def test_a_calendar_client_subscribes_to_the_feed_until_it_is_revoked(cli: Sojourn, tmp_path: Path) -> None:
    """The URL `calendar --url` prints answers 200 text/calendar with the events of `sojourn calendar`, twice with
    the same UIDs; after `links revoke` it answers 410 and a new `--url` gives a new address that works. The log
    never holds a feed's token."""
    owner = cli.json("task", "list")[0]["owner"]
    url = cli.ok("calendar", "--person", owner, "--url").strip()
    assert url.startswith("http://127.0.0.1:")  # [serve] public_url
    assert "/calendar/" in url
    assert url.endswith(".ics")
    first, second = fetch(url), fetch(url)
    assert first.status == 200
    assert first.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "set-cookie" not in first.headers
    events = _uids(first.body)
    assert events
    assert events == _uids(second.body) == _uids(cli.ok("calendar", "--person", owner).encode())
    cli.ok("links", "revoke", "--person", owner)
    revoked = fetch(url)
    assert revoked.status == 410
    assert b"BEGIN:VCALENDAR" not in revoked.body
    renewed = cli.ok("calendar", "--person", owner, "--url").strip()
    assert renewed != url
    assert fetch(renewed).status == 200
    assert fetch(url).status == 410
    log = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert '"event": "feed_refused"' in log
    for address in (url, renewed):
        assert address.rsplit("/", 1)[1].removesuffix(".ics") not in log


def test_a_changed_feed_address_answers_404(cli: Sojourn) -> None:
    """One character of the signature changed: 404, as for an address that was never issued."""
    url = cli.ok("calendar", "--person", scenarios.CAST["assignee"][0], "--url").strip()
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    changed = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert fetch(url.replace(token, changed)).status == 404
