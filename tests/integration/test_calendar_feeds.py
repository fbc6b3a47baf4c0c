"""Calendar feeds in-process on both backends: what the feed serves, its UIDs, and how it is refused and ended."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from engine.delivery.links import LinkSigner, webcal_url
from engine.domain.link_rules import LinkAction
from engine.planning import agenda
from engine.program import assignments, changes, privacy
from engine.program.people import add_person
from engine.store.db import transaction
from engine.store.link_queries import revoked_before
from engine.store.lookups import person_by_email
from engine.store.models import pk
from engine.web import actions
from engine.web.app import create_app
from integration.conftest import Sojourn, snapshot
from tests.conftest import NOW
from tests.support import scenarios

SIGNER = LinkSigner("a feed secret for tests only, 32 bytes or more", "https://sojourn.example.com",
                    timedelta(days=14))
LATER = NOW + timedelta(hours=1)
END = "2028-08-31"  # far enough for the goal the plan needs on the way to a later stage


@pytest.fixture
def client(db: Engine) -> FlaskClient:
    return create_app(db, SIGNER, clock=lambda: LATER).test_client()


@pytest.fixture
def in_orientation(db: Engine, spec: assignments.AssignmentSpec) -> int:
    """An assignment in orientation: the assignee owns open tasks and has contact periods running."""
    return scenarios.assignment_in_stage(db, dataclasses.replace(spec, end=END), "orientation", NOW)


def _feed_url(db: Engine, email: str) -> str:
    with transaction(db) as session:
        person = person_by_email(session, email)
        assert person is not None
        return SIGNER.feed_url(pk(person), revoked_before(session, pk(person)))


def _path(url: str) -> str:
    return url.removeprefix(SIGNER.public_url)


def _fetch(client: FlaskClient, url: str) -> TestResponse:
    return client.get(_path(url))


def _uids(response: TestResponse) -> dict[str, str]:
    """UID -> DTSTART of every event, read by icalendar (a parser of its own, not Sojourn's writer)."""
    calendar = Calendar.from_ical(response.data)
    return {str(event["UID"]): event.decoded("DTSTART").isoformat() for event in calendar.walk("VEVENT")}


def test_the_feed_serves_what_sojourn_calendar_writes(db: Engine, client: FlaskClient, in_orientation: int,
                                                      people: dict[str, str]) -> None:
    """200 text/calendar, no redirect, no cookie, byte for byte the calendar the CLI writes at that instant;
    icalendar reads the mobility manager's tasks and the assignee's contact periods in it."""
    uids: dict[str, str] = {}
    for role in ("mobility", "assignee"):
        url = _feed_url(db, people[role])
        assert url.endswith(".ics")
        assert url.startswith("https://sojourn.example.com/calendar/")
        response = _fetch(client, url)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
        assert "Set-Cookie" not in response.headers
        assert "Location" not in response.headers
        assert response.data.decode() == agenda.person_calendar(db, people[role], now=LATER).text
        uids |= _uids(response)
    assert any(uid.startswith("task-") for uid in uids)
    assert any(uid.startswith("sponsor_contact-") for uid in uids)


def test_reading_the_feed_writes_nothing(db: Engine, db_url: str, client: FlaskClient, in_orientation: int,
                                         people: dict[str, str]) -> None:
    """A calendar client polls the feed; a poll leaves the database as it was."""
    url = _feed_url(db, people["assignee"])
    before = snapshot(db_url)
    assert _fetch(client, url).status_code == 200
    assert snapshot(db_url) == before


def test_uids_stay_the_same_between_fetches_and_when_a_due_date_moves(db: Engine,
                                                                     spec: assignments.AssignmentSpec) -> None:
    """Two fetches give the same UIDs; extending the assignment moves a task's day but keeps its UID, so a
    subscribed calendar moves the event instead of adding a second one."""
    in_repatriation = NOW.replace(year=2028, month=4)  # repatriation opens 180 days before the end
    assignment_id = scenarios.assignment_in_stage(db, dataclasses.replace(spec, end=END), "repatriation",
                                                  in_repatriation)
    task = next(t for t in assignments.show_assignment(db, assignment_id, now=in_repatriation).view()["tasks"]
                if t["key"] == "plan_repatriation")
    client = create_app(db, SIGNER, clock=lambda: in_repatriation).test_client()
    url = _feed_url(db, task["owner"])
    first, second = _uids(_fetch(client, url)), _uids(_fetch(client, url))
    assert first == second
    uid = f"task-{task['id']}@sojourn"
    old_day = date.fromisoformat(first[uid])
    changes.extend_assignment(db, assignment_id, end="2028-10-31", reason="the project runs longer", actor="admin",
                              now=in_repatriation)
    moved = _uids(_fetch(client, url))
    assert moved.keys() == first.keys()
    assert date.fromisoformat(moved[uid]) == old_day + timedelta(days=61)


def test_the_feed_outlives_the_lifetime_of_action_links(db: Engine, in_orientation: int,
                                                        people: dict[str, str]) -> None:
    """A year after it was issued the feed still answers: a subscription is polled for months, unlike a link."""
    url = _feed_url(db, people["assignee"])
    a_year_on = create_app(db, SIGNER, clock=lambda: NOW + timedelta(days=365)).test_client()
    assert _fetch(a_year_on, url).status_code == 200


def test_the_feed_url_is_the_same_every_time_and_names_nobody(db: Engine, people: dict[str, str]) -> None:
    """Asking twice gives one address, whose token carries the person's id, not their email (calendar services
    store the address)."""
    url = _feed_url(db, people["assignee"])
    assert _feed_url(db, people["assignee"]) == url
    assert url != _feed_url(db, people["coach"])
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()
    assert "@" not in payload
    assert "ana" not in payload.lower()


def _tampered(token: str, at: int) -> str:
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]


def test_a_changed_or_foreign_feed_address_answers_404(db: Engine, client: FlaskClient,
                                                       people: dict[str, str]) -> None:
    """A changed payload or signature, another deployment's feed, an action link's token in a feed's place and a
    feed address without `.ics` are all 404: nothing at this address, and nothing said about which feeds exist."""
    url = _feed_url(db, people["assignee"])
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    other = LinkSigner("another deployment's secret, 32 bytes or more", SIGNER.public_url)
    with transaction(db) as session:
        person = person_by_email(session, people["assignee"])
        assert person is not None
        foreign = other.feed_token(pk(person), None)
    action_token = SIGNER.mint(people["assignee"], LinkAction.MY_PAGE, {}, now=NOW)
    for wrong in (_tampered(token, 3), _tampered(token, len(token) - 3), foreign, action_token):
        response = client.get(f"/calendar/{wrong}.ics")
        assert response.status_code == 404, wrong
        assert b"BEGIN:VCALENDAR" not in response.data
    assert client.get(f"/calendar/{token}").status_code == 404


def test_links_revoke_ends_the_feed_for_good(db: Engine, client: FlaskClient, in_orientation: int,
                                             people: dict[str, str]) -> None:
    """After `links revoke` the feed answers 410; the address asked for next is a new one that works, and the
    revoked one stays 410 whatever comes after, even a second revocation at the very same instant."""
    email = people["assignee"]
    first = _feed_url(db, email)
    assert _fetch(client, first).status_code == 200
    actions.revoke_person_links(db, email, now=LATER)
    refused = _fetch(client, first)
    assert refused.status_code == 410
    assert "revoked" in refused.text
    second = _feed_url(db, email)
    assert second != first
    assert _fetch(client, second).status_code == 200
    actions.revoke_person_links(db, email, now=LATER)  # the same instant: the cut-off still moves on
    assert _fetch(client, second).status_code == 410
    third = _feed_url(db, email)
    assert [_fetch(client, url).status_code for url in (first, second, third)] == [410, 410, 200]


def test_person_erase_ends_the_feed(db: Engine, client: FlaskClient) -> None:
    """An erased person's feed answers 410, as after `links revoke`."""
    add_person(db, "leaver@example.com", name="Lee Leaver", tz="Europe/Berlin")
    url = _feed_url(db, "leaver@example.com")
    assert _fetch(client, url).status_code == 200
    privacy.erase_person(db, "leaver@example.com", reason="left the company", actor="admin", now=LATER)
    assert _fetch(client, url).status_code == 410


def test_the_person_page_links_to_the_feed(db: Engine, client: FlaskClient, people: dict[str, str]) -> None:
    """The page any link of theirs opens shows the feed's address and a webcal:// link to subscribe with."""
    token = SIGNER.mint(people["assignee"], LinkAction.MY_PAGE, {}, now=NOW)
    page = client.get(f"/me/me/{token}")
    assert page.status_code == 200
    url = _feed_url(db, people["assignee"])
    assert f'href="{url}"' in page.text
    assert f'href="{webcal_url(url)}"' in page.text
    assert webcal_url(url).startswith("webcal://sojourn.example.com/calendar/")


# --- `sojourn calendar --url` ------------------------------------------------------------------------------------

SERVE_TABLE = '[serve]\npublic_url = "https://sojourn.example.com"\nsecret_env = "SOJOURN_LINK_SECRET"\n'


@pytest.fixture
def with_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config with [serve] whose secret is SIGNER's, so the CLI mints what the test app reads."""
    config = tmp_path / "sojourn.toml"
    config.write_text(SERVE_TABLE, encoding="utf-8")
    monkeypatch.setenv("SOJOURN_LINK_SECRET", SIGNER.secret)
    return config


def test_calendar_url_prints_the_feed_address(db: Engine, on_db: Sojourn, with_serve: Path, client: FlaskClient,
                                              people: dict[str, str]) -> None:
    """`calendar --url` prints the address the server answers at (--json names the person too) until `links
    revoke`, which says it ended the feed; the next `--url` prints a new address."""
    printed = on_db("--config", str(with_serve), "calendar", "--person", people["coach"], "--url")
    assert printed.code == 0, printed.stderr
    url = printed.stdout.strip()
    assert url == _feed_url(db, people["coach"])
    assert _fetch(client, url).status_code == 200
    as_json = on_db("--config", str(with_serve), "calendar", "--person", people["coach"], "--url", "--json")
    assert json.loads(as_json.stdout) == {"person": people["coach"], "url": url}
    revoked = on_db("--config", str(with_serve), "links", "revoke", "--person", people["coach"])
    assert "and their calendar feed" in revoked.stdout
    assert _fetch(client, url).status_code == 410
    renewed = on_db("--config", str(with_serve), "calendar", "--person", people["coach"], "--url").stdout.strip()
    assert renewed != url
    assert _fetch(client, renewed).status_code == 200


def test_calendar_url_without_serve_says_what_to_configure(on_db: Sojourn, db_url: str,
                                                          people: dict[str, str]) -> None:
    """No [serve]: one Error line naming public_url and secret_env, then the fix; exit 2; nothing written."""
    before = snapshot(db_url)
    refused = on_db("calendar", "--person", people["coach"], "--url")
    assert (refused.code, refused.stdout) == (2, "")
    lines = refused.stderr.splitlines()
    assert lines[0].startswith("Error: config [serve]: public_url and secret_env")
    assert "calendar feed" in lines[0]
    assert lines[1].startswith('Error: set them as for `sojourn serve`, e.g. public_url = "https://')
    assert snapshot(db_url) == before


def test_calendar_url_refuses_output_and_an_unknown_person(on_db: Sojourn, with_serve: Path,
                                                           people: dict[str, str]) -> None:
    """--url with --output is exit 2 (there is no file); an unknown person is exit 1, as for the file."""
    both = on_db("--config", str(with_serve), "calendar", "--person", people["coach"], "--url", "--output", "x.ics")
    assert both.code == 2
    assert both.stderr.startswith("Error: --url prints the calendar feed's address")
    assert not Path("x.ics").exists()
    unknown = on_db("--config", str(with_serve), "calendar", "--person", "nobody@example.com", "--url")
    assert (unknown.code, unknown.stderr.splitlines()[0]) == (1, "Error: --person: no person with email "
                                                                 "nobody@example.com")
