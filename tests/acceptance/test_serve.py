"""`sojourn serve` as a running process: real HTTP requests, refusals, revocation, load, and a browser confirming."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select

from engine.delivery.links import LinkSigner
from engine.domain.link_rules import LinkAction
from engine.program import assignments
from engine.store.db import open_db, transaction
from engine.store.models import AuditEvent, LinkUse
from tests.acceptance.conftest import Sojourn
from tests.support import scenarios
from tests.support.web import (
    LINK_SECRET,
    SECRET_ENV,
    Inbox,
    confirm,
    free_port,
    get,
    post,
    running_server,
    signer,
    write_config,
)


@dataclass(frozen=True)
class Served:
    """A running server on an initialised database with the cast, and the command line beside it."""

    base: str
    db: Engine
    links: LinkSigner
    cli: Sojourn
    log_path: Path
    inbox: Inbox

    def link(self, person: str, action: LinkAction, obj: dict[str, Any], *, age: timedelta = timedelta()) -> str:
        return self.links.url(person, action, obj, now=datetime.now(UTC) - age)

    def audit_count(self) -> int:
        with transaction(self.db) as session:
            return int(session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())

    def link_uses(self) -> int:
        with transaction(self.db) as session:
            return int(session.execute(select(func.count()).select_from(LinkUse)).scalar_one())

    def tasks(self, *args: str) -> list[dict[str, Any]]:
        return list(self.cli.json("task", "list", *args))


@pytest.fixture
def served(sojourn: Sojourn, tmp_path: Path) -> Iterator[Served]:
    """`sojourn serve` on a free port with an email notifier to a local SMTP inbox; the cast added."""
    url = sojourn.env.get("SOJOURN_DATABASE_URL") or f"sqlite:///{sojourn.cwd / 'sojourn.db'}"
    db = open_db(url)
    scenarios.add_cast(db)
    port, inbox = free_port(), Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    write_config(sojourn.cwd, port, smtp.port)
    log_path = tmp_path / "serve.log"
    try:
        with running_server(sojourn.binary, sojourn.cwd, sojourn.env, port, log_path) as base:
            with_secret = dataclasses.replace(sojourn, env={**sojourn.env, SECRET_ENV: LINK_SECRET})  # as the daemon's
            yield Served(base, db, signer(port), with_secret, log_path, inbox)
    finally:
        smtp.stop()
        db.dispose()


def _assignment(served: Served) -> int:
    return int(assignments.create_assignment(served.db, scenarios.cast_spec(), actor="admin",
                                             now=datetime.now(UTC)).id)


def _open_task(served: Served) -> dict[str, Any]:
    assignment_id = _assignment(served)
    return served.tasks("--assignment", str(assignment_id))[0]


def test_serve_check_probes_the_running_server(served: Served, tmp_path: Path) -> None:
    """`serve --check` exits 0 against the running server and 1 with an Error line when nothing listens."""
    assert served.cli.ok("serve", "--check").startswith("ok: ")
    write_config(served.cli.cwd, free_port())
    assert "is not healthy" in served.cli.refused("serve", "--check")


def test_serve_check_confirms_it_reached_sojourn_on_its_own_database(served: Served, tmp_path: Path) -> None:
    """`serve --check` names the version and database; pointed at another database it exits 1 saying which
    database the server serves; a server that is not Sojourn on the port is not taken for it."""
    answered = served.cli.ok("serve", "--check")
    assert f"/healthz (sojourn {version('sojourn')} on " in answered
    other = f"sqlite:///{tmp_path / 'other.db'}"
    refused = served.cli.refused("--db", other, "serve", "--check")
    assert "serves the database " in refused
    assert f"not sqlite:///{tmp_path / 'other.db'}" in refused
    with _http_server_answering(b'{"status": "ok"}') as port:
        write_config(served.cli.cwd, port)
        assert "it is not sojourn serve" in served.cli.refused("serve", "--check")


@contextmanager
def _http_server_answering(body: bytes) -> Iterator[int]:
    """Another program answering 200 with `body` on a loopback port; its port."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_serve_on_a_busy_port_says_so_in_one_error_line_and_never_logs_serving(sojourn: Sojourn) -> None:
    """Another program listens on the port: one `Error:` line naming the address, exit 2, no `serving` log line."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        write_config(sojourn.cwd, port)
        done = subprocess.run([str(sojourn.binary), "serve"], cwd=sojourn.cwd, env={**sojourn.env,
                              SECRET_ENV: LINK_SECRET}, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (2, "")
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"Error: sojourn serve cannot listen on 127.0.0.1:{port}: ")
    assert "serving" not in done.stderr


SLOW_CLIENTS = 150


def test_health_checks_pass_while_150_slow_clients_trickle_their_headers(served: Served) -> None:
    """150 loopback connections each sending a header byte every 0.2 s (slowloris) for a few seconds: `serve --check`
    exits 0 every time meanwhile, and the pages still answer."""
    port = int(served.base.rsplit(":", 1)[1])
    clients: list[socket.socket] = []
    stop = threading.Event()
    try:
        for _ in range(SLOW_CLIENTS):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            clients.append(client)
        trickler = threading.Thread(target=_trickle, args=(clients, stop), daemon=True)
        trickler.start()
        for _ in range(3):
            assert served.cli.ok("serve", "--check").startswith("ok: ")
            assert get(f"{served.base}/healthz")[0] == 200
    finally:
        stop.set()
        for client in clients:
            client.close()


def _trickle(clients: list[socket.socket], stop: threading.Event) -> None:
    """One byte of a never-ending header per client every 0.2 s, for at most 60 s or until stopped."""
    for _ in range(300):
        if stop.wait(0.2):
            return
        for client in clients:
            with contextlib.suppress(OSError):
                client.sendall(b"X")


def test_a_scanner_get_changes_nothing_and_the_post_does_it_once(served: Served) -> None:
    """GET shows the confirm button and writes nothing; the POST marks the task done by its owner; a repeat is 409."""
    task = _open_task(served)
    url = served.link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    before = served.audit_count()
    for _ in range(3):
        status, page = get(url)
        assert status == 200
        assert 'id="confirm"' in page
    assert (served.audit_count(), served.link_uses()) == (before, 0)
    assert confirm(url, note="interview held")[0] == 200
    (done,) = [t for t in served.tasks("--status", "done") if t["id"] == task["id"]]
    assert (done["completed_by"], done["note"]) == (task["owner"], "interview held")
    after = served.audit_count()
    status, page = confirm(url)
    assert (status, "Already done" in page) == (409, True)
    assert served.audit_count() == after


def test_refused_links_get_their_status_change_nothing_and_log_no_token(served: Served) -> None:
    """Tampered 400, another's 403, unknown 404, expired and revoked 410: nothing written, no token in the log."""
    task = _open_task(served)
    owner, other = task["owner"], scenarios.CAST["sponsor"][0]
    good = served.link(owner, LinkAction.TASK_DONE, {"task": task["id"]})
    cases = {
        "tampered": (good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb"), 400),
        "another person's": (served.link(other, LinkAction.TASK_DONE, {"task": task["id"]}), 403),
        "unknown task": (served.link(owner, LinkAction.TASK_DONE, {"task": 999_999}), 404),
        "expired": (served.link(owner, LinkAction.TASK_DONE, {"task": task["id"]}, age=timedelta(days=15)), 410),
    }
    before = served.audit_count()
    for name, (url, expected) in cases.items():
        assert get(url)[0] == expected, name
        status, page = confirm(url)
        assert status == expected, name
        assert "Nothing was changed" in page
    served.cli.ok("links", "revoke", "--person", owner)
    assert confirm(good)[0] == 410
    assert served.audit_count() == before
    assert served.link_uses() == 0
    assert [t["status"] for t in served.tasks("--assignment", str(task["assignment_id"])) if t["id"] == task["id"]] \
        == ["open"]
    log = served.log_path.read_text(encoding="utf-8")
    assert log.count('"event": "link_refused"') == 2 * len(cases) + 1
    for url, _ in cases.values():
        assert url.rsplit("/", 1)[1] not in log
    assert good.rsplit("/", 1)[1] not in log


def test_another_persons_form_cannot_confirm_a_link(served: Served) -> None:
    """A POST whose form carries another person's token is refused with 403 and the task stays open."""
    task = _open_task(served)
    url = served.link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    foreign = served.link(scenarios.CAST["sponsor"][0], LinkAction.TASK_DONE, {"task": task["id"]})
    assert post(url, {"token": foreign.rsplit("/", 1)[1]})[0] == 403
    assert served.link_uses() == 0


def test_a_plan_cannot_be_signed_over_http_for_a_role_one_does_not_hold(served: Served) -> None:
    """The coach's link to sign as host_manager is refused with 403; the host manager's own link signs."""
    assignment_id = scenarios.assignment_in_stage(served.db, scenarios.cast_spec(), "plan_agreed", datetime.now(UTC))
    plan = {"assignment": assignment_id, "role": "host_manager", "plan_version": 1}
    assert confirm(served.link(scenarios.CAST["coach"][0], LinkAction.PLAN_SIGNOFF, plan))[0] == 403
    assert confirm(served.link(scenarios.CAST["host_manager"][0], LinkAction.PLAN_SIGNOFF, plan))[0] == 200
    shown = served.cli.json("assignment", "show", str(assignment_id))
    unsigned = [b["reason"] for b in shown["blocking"] if "signed" in b["reason"]]
    assert unsigned
    assert "host_manager" not in unsigned[0]


def test_200_concurrent_confirmations_on_different_tasks_are_each_recorded_once(served: Served) -> None:
    """Two hundred owners confirming at once: every task done once, one link use and one audit event each."""
    for _ in range(100):
        _assignment(served)
    tasks = served.tasks("--status", "open")[:200]
    assert len(tasks) == 200
    urls = [served.link(t["owner"], LinkAction.TASK_DONE, {"task": t["id"]}) for t in tasks]
    before = served.audit_count()
    with ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(lambda u: confirm(u)[0], urls))
    assert statuses == [200] * 200
    assert served.link_uses() == 200
    assert served.audit_count() - before == 200
    done = {t["id"] for t in served.tasks("--status", "done")}
    assert {t["id"] for t in tasks} <= done


def test_200_concurrent_clicks_on_one_link_record_it_exactly_once(served: Served) -> None:
    """The same link confirmed 200 times at once: one 200, every other click 409, one task completion written."""
    task = _open_task(served)
    url = served.link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    before = served.audit_count()
    with ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(lambda _: confirm(url)[0], range(200)))
    assert sorted(statuses) == [200] + [409] * 199
    assert (served.link_uses(), served.audit_count() - before) == (1, 1)


def test_the_emailed_link_confirmed_in_a_browser(served: Served, tmp_path: Path) -> None:
    """Headless Chromium opens the coach's emailed link, follows it to a task, confirms, and sees it done;
    `task list` and the audit trail show the coach did it, and the stage history is untouched."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from tests.support.browser import _QUIET_FLAGS, CHROMEDRIVER, CHROMIUM

    assignment_id = _assignment(served)
    history_before = served.cli.json("history", str(assignment_id))
    served.cli.ok("daemon", "--once")
    coach = scenarios.CAST["coach"][0]
    (message,) = [m for m in served.inbox.messages if m["To"] == coach]
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = body.rsplit("Act on it here: ", 1)[1].split()[0]
    assert link.startswith(served.base + "/me/")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*_QUIET_FLAGS, "--window-size=390,844"):  # a phone's viewport
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(link)
        assert "Your open tasks" in driver.page_source
        driver.find_elements(By.CSS_SELECTOR, "a.button")[0].click()
        driver.find_element(By.ID, "note").send_keys("Interviewed in person")
        driver.find_element(By.ID, "confirm").click()
        result = driver.find_element(By.ID, "result").text
        driver.save_screenshot(str(tmp_path / "confirmed.png"))
    finally:
        driver.quit()
    assert result == "Task done"
    assert (tmp_path / "confirmed.png").stat().st_size > 0
    done = [t for t in served.tasks("--assignment", str(assignment_id)) if t["status"] == "done"]
    assert [(t["completed_by"], t["note"]) for t in done] == [(coach, "Interviewed in person")]
    events = [json.loads(line) for line in served.cli.ok("audit", "export", "--assignment",
                                                         str(assignment_id)).splitlines()]
    assert (events[-1]["action"], events[-1]["actor"]) == ("task_completed", coach)
    assert served.cli.json("history", str(assignment_id)) == history_before
