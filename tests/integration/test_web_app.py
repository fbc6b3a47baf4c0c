"""The Flask app in-process: a failing request is logged by its route, never with the token in its URL; the
check-in and pulse forms over HTTP, with their statuses, on both backends."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text
from structlog.testing import capture_logs

from engine.delivery.links import LinkSigner
from engine.domain.link_rules import LinkAction
from engine.domain.views import views
from engine.program import assignments, plans, tasks
from engine.store.db import open_db
from engine.web.app import create_app
from engine.web.serve import instance_database
from integration.conftest import snapshot
from tests.conftest import NOW
from tests.support import scenarios

SIGNER = LinkSigner("test secret", "https://sojourn.example.com", timedelta(days=14))
LATER = NOW + timedelta(hours=1)


def test_a_failed_request_is_logged_without_its_token(tmp_path: Path) -> None:
    """A request that fails inside (here: the database was never initialised) answers 500 and logs the route only."""
    db = open_db(f"sqlite:///{tmp_path / 'never-initialised.db'}")
    signer = LinkSigner("secret", "http://127.0.0.1", timedelta(days=14))
    token = signer.mint("a@example.com", LinkAction.TASK_DONE, {"task": 1}, now=datetime.now(UTC))
    app = create_app(db, signer)
    with capture_logs() as logs:
        response = app.test_client().get(f"/a/task_done/{token}")
    db.dispose()
    assert response.status_code == 500
    (failed,) = [entry for entry in logs if entry["event"] == "request_failed"]
    assert failed["route"] == "/a/<action>/<token>"
    assert token not in repr(logs)


@pytest.fixture
def in_orientation(db: Engine, spec: assignments.AssignmentSpec) -> int:
    """An assignment in orientation with one goal, where check-ins and pulses are open."""
    return scenarios.assignment_in_stage(db, dataclasses.replace(spec, end="2028-08-31"), "orientation", NOW)


@pytest.fixture
def client(db: Engine) -> FlaskClient:
    return create_app(db, SIGNER, clock=lambda: LATER).test_client()


def _path(person: str, action: LinkAction, assignment_id: int) -> tuple[str, str]:
    token = SIGNER.mint(person, action, {"assignment": assignment_id}, now=NOW)
    return f"/a/{action}/{token}", token


def _goal_field(db: Engine, assignment_id: int) -> str:
    (goal,) = assignments.show_assignment(db, assignment_id, now=NOW).view()["goals"]
    return f"goal_{goal['id']}"


def test_the_checkin_form_over_http(db: Engine, db_url: str, client: FlaskClient, in_orientation: int,
                                    people: dict[str, str]) -> None:
    """GET shows a 0-100 field per goal and writes nothing; POST records it (200); the second POST is 409."""
    path, token = _path(people["assignee"], LinkAction.CHECKIN, in_orientation)
    field = _goal_field(db, in_orientation)
    before = snapshot(db_url)
    shown = client.get(path)
    assert shown.status_code == 200
    assert f'name="{field}" type="number" min="0" max="100"' in shown.text
    assert snapshot(db_url) == before
    done = client.post(path, data={"token": token, field: "55", "note": "halfway", "feedback": "more time"})
    assert done.status_code == 200
    assert "55%" in done.text
    after = snapshot(db_url)
    assert len(after["checkin"]) == len(before["checkin"]) + 1
    again = client.post(path, data={"token": token, field: "70"})
    assert again.status_code == 409
    assert "Already done" in again.text
    assert snapshot(db_url) == after


def test_a_bad_percentage_shows_the_form_again_with_400(db: Engine, db_url: str, client: FlaskClient,
                                                        in_orientation: int, people: dict[str, str]) -> None:
    """A percentage over 100 re-shows the form as typed with a 400, writes nothing, and the link still works."""
    path, token = _path(people["host_manager"], LinkAction.CHECKIN, in_orientation)
    field = _goal_field(db, in_orientation)
    before = snapshot(db_url)
    rejected = client.post(path, data={"token": token, field: "150", "note": "kept"})
    assert rejected.status_code == 400
    assert 'id="error"' in rejected.text
    assert 'value="150"' in rejected.text
    assert ">kept</textarea>" in rejected.text
    assert snapshot(db_url) == before
    assert client.post(path, data={"token": token, field: "100"}).status_code == 200


def test_a_checkin_link_of_the_sending_manager_is_403(db: Engine, db_url: str, client: FlaskClient,
                                                      in_orientation: int, people: dict[str, str]) -> None:
    """Only the assignee or host manager may check in: the sending manager's link is 403 on GET and POST."""
    path, token = _path(people["sending_manager"], LinkAction.CHECKIN, in_orientation)
    before = snapshot(db_url)
    assert client.get(path).status_code == 403
    assert client.post(path, data={"token": token, _goal_field(db, in_orientation): "10"}).status_code == 403
    assert snapshot(db_url) == before


PULSE_FORM = {"expectancy": "2", "instrumentality": "4", "valence": "4"}


def test_the_pulse_form_over_http(db_url: str, client: FlaskClient, in_orientation: int,
                                  people: dict[str, str]) -> None:
    """GET shows three 1-5 radio groups and writes nothing; POST records the pulse (200); the second POST is 409."""
    path, token = _path(people["assignee"], LinkAction.PULSE, in_orientation)
    before = snapshot(db_url)
    shown = client.get(path)
    assert shown.status_code == 200
    assert all(f'type="radio" id="{q}_{v}"' in shown.text for q in PULSE_FORM for v in "12345")
    assert snapshot(db_url) == before
    assert client.post(path, data={"token": token, **PULSE_FORM}).status_code == 200
    after = snapshot(db_url)
    assert len(after["pulse"]) == len(before["pulse"]) + 1
    assert client.post(path, data={"token": token, **PULSE_FORM}).status_code == 409
    assert snapshot(db_url) == after


def test_a_missing_pulse_answer_shows_the_form_again_with_400(db_url: str, client: FlaskClient, in_orientation: int,
                                                              people: dict[str, str]) -> None:
    """A pulse without its valence is 400 with the form again, the given answers still checked; nothing is written."""
    path, token = _path(people["assignee"], LinkAction.PULSE, in_orientation)
    before = snapshot(db_url)
    rejected = client.post(path, data={"token": token, "expectancy": "2", "instrumentality": "4"})
    assert rejected.status_code == 400
    assert 'id="expectancy_2" name="expectancy" value="2" checked' in rejected.text
    assert snapshot(db_url) == before
    assert client.post(path, data={"token": token, **PULSE_FORM}).status_code == 200


def test_a_pulse_link_of_the_host_manager_is_403(db_url: str, client: FlaskClient, in_orientation: int,
                                                 people: dict[str, str]) -> None:
    """Only the assignee answers the pulse: another person's link is 403 on GET and POST, nothing written."""
    path, token = _path(people["host_manager"], LinkAction.PULSE, in_orientation)
    before = snapshot(db_url)
    assert client.get(path).status_code == 403
    assert client.post(path, data={"token": token, **PULSE_FORM}).status_code == 403
    assert snapshot(db_url) == before


def test_the_plan_acknowledgement_over_http(db_url: str, client: FlaskClient, db: Engine, in_orientation: int,
                                            people: dict[str, str]) -> None:
    """A plan change after agreement: the host manager's link is 403; the sending manager's GET writes nothing, the
    POST acknowledges (200) and the second POST is 409, all without further writes."""
    version = plans.add_goal(db, in_orientation, title="Run the DACH launch", measure="revenue", target="+10%",
                             due="2027-06-30", actor="admin", now=NOW).plan_version
    obj = {"assignment": in_orientation, "plan_version": version}
    other = SIGNER.mint(people["host_manager"], LinkAction.PLAN_ACK, obj, now=NOW)
    token = SIGNER.mint(people["sending_manager"], LinkAction.PLAN_ACK, obj, now=NOW)
    before = snapshot(db_url)
    assert client.post(f"/a/plan_ack/{other}", data={"token": other}).status_code == 403
    shown = client.get(f"/a/plan_ack/{token}")
    assert shown.status_code == 200
    assert "Run the DACH launch" in shown.text
    assert snapshot(db_url) == before
    done = client.post(f"/a/plan_ack/{token}", data={"token": token})
    assert done.status_code == 200
    after = snapshot(db_url)
    assert after["plan_change"] != before["plan_change"]
    assert client.post(f"/a/plan_ack/{token}", data={"token": token}).status_code == 409
    assert snapshot(db_url) == after


def _task_link(db: Engine, spec: assignments.AssignmentSpec) -> str:
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=NOW).id
    task = views(tasks.list_tasks(db, now=NOW, assignment_id=assignment_id))[0]
    return f"/a/task_done/{SIGNER.mint(task['owner'], LinkAction.TASK_DONE, {'task': task['id']}, now=NOW)}"


def test_pages_send_a_tight_content_security_policy_and_nosniff(db: Engine, client: FlaskClient,
                                                                spec: assignments.AssignmentSpec) -> None:
    """Every answer (page, refusal, health, stylesheet) forbids scripts, framing and sniffing; no inline style."""
    page = client.get(_task_link(db, spec))
    assert page.status_code == 200
    assert "<style" not in page.text
    assert "style=" not in page.text
    stylesheet = client.get("/static/sojourn.css")
    assert stylesheet.status_code == 200
    for response in (page, client.get("/a/task_done/nonsense"), client.get("/healthz"), stylesheet):
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "script-src" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    stylesheet.close()


def test_healthz_names_the_version_and_the_database_without_its_password(db: Engine, client: FlaskClient) -> None:
    """`/healthz` says it is Sojourn, which version, and which database (an SQLite file by its absolute path)."""
    health = client.get("/healthz").get_json()
    assert health == {"status": "ok", "service": "sojourn", "version": version("sojourn"),
                      "database": instance_database(db)}
    if db.dialect.name == "sqlite":
        assert health["database"] == f"sqlite:///{Path(str(db.url.database)).resolve()}"
    secret_url = open_db("postgresql+psycopg://sojourn:hunter2@db.example.com:5433/prod?sslpassword=hunter3")
    assert instance_database(secret_url) == "postgresql+psycopg://sojourn@db.example.com:5433/prod"
    secret_url.dispose()


@contextmanager
def _writer_holding_the_lock(db: Engine, db_url: str) -> Iterator[None]:
    """Another connection in the middle of a write transaction: on SQLite it holds the write lock (BEGIN
    IMMEDIATE); on PostgreSQL it locks the task table against every writer."""
    if db.dialect.name == "sqlite":
        writer = sqlite3.connect(str(db.url.database), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        return
    with db.connect() as connection, connection.begin():
        connection.execute(text("LOCK TABLE task IN SHARE ROW EXCLUSIVE MODE"))
        yield


def test_a_preview_and_the_persons_page_read_beside_a_writer_without_waiting(
        db: Engine, db_url: str, client: FlaskClient, spec: assignments.AssignmentSpec, people: dict[str, str]) -> None:
    """A GET takes no write lock: while another writer holds it, the confirm page and the person's page answer 200
    at once (a write transaction would wait for the lock and fail)."""
    path = _task_link(db, spec)
    page = f"/me/me/{SIGNER.mint(people['coach'], LinkAction.MY_PAGE, {}, now=NOW)}"
    with _writer_holding_the_lock(db, db_url):
        started = time.monotonic()
        assert client.get(path).status_code == 200
        assert client.get(page).status_code == 200
        assert time.monotonic() - started < 5  # the busy timeout a writer would wait is 10 s
