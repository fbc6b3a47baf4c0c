"""Dispatch against a real database: claims, retries with backoff, dead letters, routing, leases and SKIP LOCKED."""

from __future__ import annotations

import random
import socket
import sqlite3
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, event, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select
from structlog.testing import capture_logs

from engine.delivery import outbox
from engine.delivery.config import DeliveryPolicy, Routing
from engine.delivery.dispatch import DispatchReport, dispatch_due
from engine.delivery.leases import (
    DISPATCHER,
    DaemonIdentity,
    acquire_dispatcher_lease,
    process_start_of,
    release_leases,
    renew_leases,
    start_heartbeat,
)
from engine.domain.errors import ConcurrentChange, DaemonAlreadyRunning, NotFound, SojournError
from engine.domain.notices import NewNotice, NoticeKind
from engine.program import assignments, workflows
from engine.program.logging import get_logger
from engine.store import queries
from engine.store.db import transaction
from engine.store.models import Outbox
from notifiers import Notification, PermanentDeliveryError, TransientDeliveryError, WebhookNotifier
from tests.support.webhook import Receiver
from workflows import builtin_workflow_texts

LEASE = 5.0
ALICE = DaemonIdentity(host="alpha", pid=101, token="aaaa")
BOB = DaemonIdentity(host="beta", pid=202, token="bbbb")


class FakeNotifier:
    """A channel that fails with the given errors first (or `always`), then accepts and remembers."""

    def __init__(self, name: str, *failures: Exception, always: Exception | None = None) -> None:
        self.name = name
        self.failures = list(failures)
        self.always = always
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        if self.always is not None:
            raise self.always
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(notification)


EVERY_ROLE_TOLD = builtin_workflow_texts()["leadership-development.yaml"].replace(
    "stage_changes:\n  notify: [assignee, mobility]",
    "stage_changes:\n  notify: [assignee, sending_manager, host_manager, coach, sponsor, talent, mobility]")


def _created_telling_every_role(db: Engine, spec: assignments.AssignmentSpec, now: datetime) -> int:
    """An assignment created at `now` on a workflow version that tells all seven roles of a stage change."""
    assert "sponsor, talent, mobility]" in EVERY_ROLE_TOLD
    workflows.install_workflow(db, EVERY_ROLE_TOLD, source="every-role-told.yaml", now=now)
    return assignments.create_assignment(db, spec, actor="admin", now=now).id


@pytest.fixture
def pending(db: Engine, spec: assignments.AssignmentSpec, now: datetime) -> list[str]:
    """An assignment just created at `now`: its seven stage_changed notices are due; their keys."""
    _created_telling_every_role(db, spec, now)
    return [r.key for r in _rows(db)]


def _rows(db: Engine) -> list[Outbox]:
    with transaction(db) as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())


def _row(db: Engine, key: str) -> Outbox:
    with transaction(db) as session:
        row = queries.outbox_row(session, key)
        assert row is not None
        return row


def _dispatch(db: Engine, notifiers: list[FakeNotifier], now: datetime, **options: object) -> DispatchReport:
    policy = options.pop("policy", DeliveryPolicy())
    assert isinstance(policy, DeliveryPolicy)
    routing = options.pop("routing", Routing({}))
    assert isinstance(routing, Routing)
    return dispatch_due(db, notifiers, holder="tester", now=now, policy=policy, routing=routing,
                        rng=random.Random(7))


def test_dispatch_marks_every_row_sent_when_all_notifiers_accept(db: Engine, pending: list[str],
                                                                  now: datetime) -> None:
    """Each due row reaches every notifier once and is marked sent with no claim left behind."""
    file, webhook = FakeNotifier("file"), FakeNotifier("webhook")
    report = _dispatch(db, [file, webhook], now)
    assert (report.claimed, report.sent) == (7, 7)
    assert sorted(n.key for n in file.sent) == sorted(pending) == sorted(n.key for n in webhook.sent)
    rows = _rows(db)
    assert {(r.status, r.attempts, r.claimed_by, r.sent_at) for r in rows} == {("sent", 1, None, now)}
    assert {tuple(r.delivered_to) for r in rows} == {("file", "webhook")}
    assert _dispatch(db, [file, webhook], now + timedelta(minutes=5)).claimed == 0


def test_transient_failure_retries_with_backoff_when_channel_recovers(db: Engine, pending: list[str],
                                                                      now: datetime) -> None:
    """A transient error schedules the next attempt 24-30 s later; the row is sent when it comes."""
    flaky = FakeNotifier("webhook", *[TransientDeliveryError("HTTP 503 from hooks.example.com")] * 7)
    assert _dispatch(db, [flaky], now).failed == 7
    row = _row(db, pending[0])
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "webhook: HTTP 503 from hooks.example.com")
    assert now + timedelta(seconds=24) <= row.next_attempt_at <= now + timedelta(seconds=30)
    assert _dispatch(db, [flaky], now + timedelta(seconds=20)).claimed == 0
    report = _dispatch(db, [flaky], now + timedelta(seconds=30))
    assert (report.claimed, report.sent) == (7, 7)
    assert {(r.status, r.attempts) for r in _rows(db)} == {("sent", 2)}


def test_second_failure_waits_twice_as_long_when_channel_stays_down(db: Engine, pending: list[str],
                                                                     now: datetime) -> None:
    """The wait doubles with each failure: about 30 s after the first, about 60 s after the second."""
    down = FakeNotifier("email", always=TransientDeliveryError("connection refused"))
    _dispatch(db, [down], now)
    second_try = _row(db, pending[0]).next_attempt_at
    _dispatch(db, [down], second_try)
    row = _row(db, pending[0])
    assert row.attempts == 2
    assert second_try + timedelta(seconds=48) <= row.next_attempt_at <= second_try + timedelta(seconds=60)


def test_retry_after_is_honoured_when_longer_than_backoff(db: Engine, pending: list[str], now: datetime) -> None:
    """A channel asking for 10 minutes gets them, although the backoff alone would wait 30 s."""
    limited = FakeNotifier("webhook", always=TransientDeliveryError("HTTP 429", retry_after=600))
    _dispatch(db, [limited], now)
    assert _row(db, pending[0]).next_attempt_at == now + timedelta(seconds=600)


def test_absurd_retry_after_waits_one_day_when_channel_asks_for_centuries(db: Engine, pending: list[str],
                                                                         now: datetime) -> None:
    """A Retry-After of 999999999999 s is cut to one day, and every row's failure is recorded."""
    greedy = FakeNotifier("webhook", always=TransientDeliveryError("HTTP 429", retry_after=999999999999))
    report = _dispatch(db, [greedy], now)
    assert (report.claimed, report.failed) == (7, 7)
    assert {(r.status, r.attempts, r.claimed_by, r.next_attempt_at) for r in _rows(db)} == {
        ("failed", 1, None, now + timedelta(days=1))}


class _BrokenPolicy(DeliveryPolicy):
    def retry_delay(self, failed_attempts: int, retry_after: float | None, rng: random.Random) -> float:
        raise OverflowError("date value out of range")


def test_other_rows_are_recorded_when_one_row_outcome_cannot_be_computed(db: Engine, pending: list[str],
                                                                        now: datetime) -> None:
    """A row whose retry time cannot be worked out is retried in an hour; the rest of the batch is still sent."""
    unlucky = pending[0]

    class FailsOne(FakeNotifier):
        def send(self, notification: Notification) -> None:
            if notification.key == unlucky:
                raise TransientDeliveryError("HTTP 503")
            super().send(notification)

    report = _dispatch(db, [FailsOne("webhook")], now, policy=_BrokenPolicy())
    assert (report.claimed, report.sent, report.failed) == (7, 6, 1)
    row = _row(db, unlucky)
    assert (row.status, row.attempts, row.claimed_by) == ("failed", 1, None)
    assert row.next_attempt_at == now + timedelta(hours=1)
    assert row.last_error == ("webhook: not delivered, and the next attempt could not be scheduled (OverflowError); "
                              "trying again in an hour")
    assert {r.status for r in _rows(db) if r.key != unlucky} == {"sent"}


def test_permanent_failure_dead_letters_at_once_when_channel_refuses(db: Engine, pending: list[str],
                                                                     now: datetime) -> None:
    """A permanent error ends delivery on the first attempt: status dead, error kept, never claimed again."""
    refusing = FakeNotifier("email", always=PermanentDeliveryError("SMTP 550 mailbox unavailable"))
    report = _dispatch(db, [refusing], now)
    assert report.dead == 7
    row = _row(db, pending[0])
    assert (row.status, row.attempts, row.last_error) == ("dead", 1, "email: SMTP 550 mailbox unavailable")
    assert _dispatch(db, [refusing], now + timedelta(days=1)).claimed == 0


def test_transient_failures_dead_letter_when_max_attempts_is_reached(db: Engine, pending: list[str],
                                                                     now: datetime) -> None:
    """With max_attempts 3 the third transient failure dead-letters the row and says why."""
    policy = DeliveryPolicy(max_attempts=3)
    down = FakeNotifier("webhook", always=TransientDeliveryError("timed out"))
    at = now
    for _ in range(3):
        _dispatch(db, [down], at, policy=policy)
        at += timedelta(hours=1)
    row = _row(db, pending[0])
    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error == "gave up after 3 attempts: webhook: timed out"


def test_outbox_retry_revives_dead_row_and_skips_notifiers_that_accepted(db: Engine, pending: list[str],
                                                                         now: datetime) -> None:
    """After a fix, `outbox retry` makes a dead row pending; only the notifier that refused gets it again."""
    file = FakeNotifier("file")
    email = FakeNotifier("email", PermanentDeliveryError("SMTP 553 sender rejected"))
    _dispatch(db, [file, email], now, policy=DeliveryPolicy(batch_size=1))
    dead = _row(db, pending[0])
    assert (dead.status, dead.delivered_to) == ("dead", ["file"])
    later = now + timedelta(hours=2)
    revived = outbox.retry_notification(db, dead.key, now=later)
    assert (revived.status, revived.attempts, revived.next_attempt_at) == ("pending", 0, later)
    _dispatch(db, [file, email], later)
    row = _row(db, dead.key)
    assert (row.status, sorted(row.delivered_to)) == ("sent", ["email", "file"])
    assert Counter(n.key for n in file.sent)[dead.key] == 1
    assert [n.key for n in email.sent].count(dead.key) == 1


def test_outbox_retry_refuses_when_key_is_unknown_or_already_sent(db: Engine, pending: list[str],
                                                                  now: datetime) -> None:
    """An unknown key is NotFound and a sent row is refused; both exit 1 and change nothing."""
    with pytest.raises(NotFound, match="no notification with key 'nope/1'"):
        outbox.retry_notification(db, "nope/1", now=now)
    _dispatch(db, [FakeNotifier("file")], now)
    with pytest.raises(SojournError, match="already sent"):
        outbox.retry_notification(db, pending[0], now=now)
    assert NotFound.exit_code == SojournError.exit_code == 1


def test_outbox_retry_refuses_when_row_is_pending_or_being_delivered(db: Engine, pending: list[str],
                                                                    now: datetime) -> None:
    """Only dead or failed rows are retried; a pending row or one claimed right now is left as it is."""
    with pytest.raises(SojournError, match="is pending; only dead or failed notifications can be retried"):
        outbox.retry_notification(db, pending[0], now=now)
    _dispatch(db, [FakeNotifier("email", always=TransientDeliveryError("timed out"))], now)
    later = now + timedelta(minutes=1)
    with transaction(db) as session:
        queries.claim_due_notifications(session, holder="daemon-a", now=later, limit=10,
                                        claim_until=later + timedelta(minutes=5))
    with pytest.raises(SojournError, match="is being delivered right now by daemon-a"):
        outbox.retry_notification(db, pending[0], now=later)
    assert (_row(db, pending[0]).status, _row(db, pending[0]).claimed_by) == ("failed", "daemon-a")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_outbox_retry_keeps_daemon_claim_when_daemon_claims_row_while_retry_runs(db: Engine, pending: list[str],
                                                                                  now: datetime) -> None:
    """A daemon claiming the row while `outbox retry` runs keeps its claim: retry goes first or is refused."""
    _dispatch(db, [FakeNotifier("email", always=TransientDeliveryError("timed out"))], now)
    later, key = now + timedelta(minutes=1), pending[0]
    claimed: list[str] = []

    def claim_meanwhile(target: Outbox, _context: object) -> None:
        if target.key == key and not claimed:
            claimed.append("tried")
            with transaction(db) as session:
                claimed.extend(r.key for r in queries.claim_due_notifications(
                    session, holder="daemon-a", now=later, limit=10, claim_until=later + timedelta(minutes=5)))

    event.listen(Outbox, "load", claim_meanwhile)
    try:
        refused = False
        try:
            outbox.retry_notification(db, key, now=later)
        except SojournError:
            refused = True
    finally:
        event.remove(Outbox, "load", claim_meanwhile)
    row = _row(db, key)
    assert claimed[0] == "tried"
    if key in claimed:
        assert (refused, row.status, row.claimed_by) == (True, "failed", "daemon-a")
    else:
        assert (refused, row.status, row.attempts, row.claimed_by) == (False, "pending", 0, None)


@pytest.mark.parametrize("use", [
    lambda db, now: outbox.list_notifications(db),
    lambda db, now: outbox.retry_notification(db, "task_due/1", now=now),
    lambda db, now: outbox.daemon_status(db, now=now),
], ids=["list", "retry", "status"])
def test_outbox_commands_report_busy_database_when_it_stays_locked(db: Engine, now: datetime,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   use: Callable[[Engine, datetime], object]) -> None:
    """A database that stays locked is a ConcurrentChange (an Error: line, exit 1), not a traceback."""
    def locked(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("UPDATE outbox ...", {}, sqlite3.OperationalError("database is locked"))

    for name in ("outbox_rows", "outbox_row", "requeue_notification", "heartbeats"):
        monkeypatch.setattr(queries, name, locked, raising=False)
    with pytest.raises(ConcurrentChange, match="the database stayed busy with another writer"):
        use(db, now)


def test_row_cancelled_in_flight_stays_cancelled_unless_its_delivery_got_through(db: Engine, pending: list[str],
                                                                                   now: datetime) -> None:
    """A row cancelled while a daemon delivers it ends sent if a notifier took it, and cancelled if all failed."""
    keys = pending[:2]

    class CancelsWhileSending(FakeNotifier):
        def send(self, notification: Notification) -> None:
            with transaction(db) as session:
                session.execute(update(Outbox).where(col(Outbox.key) == notification.key)
                                .values(status="cancelled", last_error="task done before delivery"))
            if notification.key == keys[1]:
                raise TransientDeliveryError("HTTP 503")
            super().send(notification)

    report = _dispatch(db, [CancelsWhileSending("webhook")], now, policy=DeliveryPolicy(batch_size=2))
    assert (report.sent, report.failed) == (1, 1)
    got_through, failed = _row(db, keys[0]), _row(db, keys[1])
    assert (got_through.status, got_through.sent_at, got_through.claimed_by) == ("sent", now, None)
    assert (failed.status, failed.last_error, failed.attempts, failed.claimed_by) == (
        "cancelled", "task done before delivery", 1, None)
    assert _dispatch(db, [FakeNotifier("webhook")], now + timedelta(days=1)).claimed == 5


def test_routing_sends_each_kind_only_to_its_notifiers_when_routes_are_configured(
        db: Engine, pending: list[str], now: datetime) -> None:
    """stage_changed routed to the webhook reaches it alone; other kinds follow the default route."""
    email, webhook = FakeNotifier("email"), FakeNotifier("webhook")
    routing = Routing.from_config({"stage_changed": ["webhook"], "default": ["email"]}, ["email", "webhook"])
    with transaction(db) as session:
        queries.insert_notifications(session, [NewNotice(
            key="escalation/test/1/mobility", kind=NoticeKind.ESCALATION, assignment_id=1, task_id=None,
            recipient="m@example.com", role="mobility", subject="s", body="b", created_at=now, deliver_at=now)])
    _dispatch(db, [email, webhook], now, routing=routing)
    assert sorted(n.key for n in webhook.sent) == sorted(pending)
    assert [n.key for n in email.sent] == ["escalation/test/1/mobility"]
    assert {tuple(r.delivered_to) for r in _rows(db) if r.kind == "stage_changed"} == {("webhook",)}


def test_row_is_not_claimed_when_deliver_at_is_still_ahead(db: Engine, people: dict[str, str],
                                                           now: datetime) -> None:
    """A notification meant for 09:00 tomorrow stays pending until then."""
    spec = assignments.AssignmentSpec("leadership-development", people["assignee"], "BR", "DE", "2026-03-01",
                                      "2027-08-31", {r: e for r, e in people.items() if r != "assignee"})
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=now).id
    tomorrow = now + timedelta(days=1)
    with transaction(db) as session:
        queries.insert_notifications(session, [NewNotice(
            key="task_due/99", kind=NoticeKind.TASK_DUE, assignment_id=assignment_id, task_id=None,
            recipient="c@example.com", role="coach", subject="s", body="b", created_at=now, deliver_at=tomorrow)])
    file = FakeNotifier("file")
    _dispatch(db, [file], tomorrow - timedelta(minutes=1))
    assert "task_due/99" not in {n.key for n in file.sent}
    _dispatch(db, [file], tomorrow)
    assert "task_due/99" in {n.key for n in file.sent}


def test_stop_request_hands_back_rest_of_batch_when_asked_mid_batch(db: Engine, pending: list[str],
                                                                    now: datetime) -> None:
    """Asked to stop after the first row, dispatch finishes that row and releases the other six claims."""
    file = FakeNotifier("file")
    report = dispatch_due(db, [file], holder="tester", now=now, should_stop=lambda: bool(file.sent))
    assert (report.sent, report.released) == (1, 6)
    assert Counter((r.status, r.claimed_by) for r in _rows(db)) == {("sent", None): 1, ("pending", None): 6}


# --- the dispatcher lease and heartbeats ------------------------------------------------------------------------


def test_second_dispatcher_is_refused_when_lease_is_held(db: Engine, now: datetime) -> None:
    """While one daemon holds the lease another cannot take it, and is told who holds it until when."""
    with transaction(db) as session:
        assert acquire_dispatcher_lease(session, ALICE, now, LEASE) is None
    with pytest.raises(DaemonAlreadyRunning) as refused, transaction(db) as session:
        acquire_dispatcher_lease(session, BOB, now + timedelta(seconds=4), LEASE)
    until = (now + timedelta(seconds=LEASE)).isoformat()
    assert refused.value.message == f"another daemon (pid 101 on alpha) holds the lease until {until}"
    assert refused.value.exit_code == 1


def test_lease_and_claims_of_dead_holder_are_taken_over_when_lease_expired(db: Engine, pending: list[str],
                                                                          now: datetime) -> None:
    """A killed holder's lease is taken once expired, and the rows it had claimed are free at once."""
    with transaction(db) as session:
        acquire_dispatcher_lease(session, ALICE, now, LEASE)
        queries.claim_due_notifications(session, holder=ALICE.holder, now=now, limit=3,
                                        claim_until=now + timedelta(minutes=5))
    later = now + timedelta(seconds=LEASE)
    with transaction(db) as session:
        assert acquire_dispatcher_lease(session, BOB, later, LEASE) == ALICE.holder
    assert {r.claimed_by for r in _rows(db)} == {None}
    with transaction(db) as session:
        assert not renew_leases(session, ALICE, later, LEASE, dispatcher=True)
        assert renew_leases(session, BOB, later, LEASE, dispatcher=True)


def _identity_of(process: subprocess.Popen[bytes], token: str) -> DaemonIdentity:
    return DaemonIdentity(socket.gethostname(), process.pid, token, process_start_of(process.pid))


def test_lease_claims_and_heartbeat_of_a_gone_process_of_this_host_are_taken_over_at_once(
        db: Engine, pending: list[str], now: datetime, local_process: subprocess.Popen[bytes]) -> None:
    """A killed daemon of this host: its unexpired lease is taken at once, its claims freed, its heartbeat gone."""
    dead = _identity_of(local_process, "dead")
    local_process.kill()
    local_process.wait()
    with transaction(db) as session:
        start_heartbeat(session, dead, now, 60)
        acquire_dispatcher_lease(session, dead, now, 60)
        queries.claim_due_notifications(session, holder=dead.holder, now=now, limit=3,
                                        claim_until=now + timedelta(minutes=5))
    successor = DaemonIdentity.of_this_process()
    with transaction(db) as session:
        assert start_heartbeat(session, successor, now + timedelta(seconds=1), 60) == [dead.holder]
        assert acquire_dispatcher_lease(session, successor, now + timedelta(seconds=1), 60) == dead.holder
    assert {r.claimed_by for r in _rows(db)} == {None}
    status = outbox.daemon_status(db, now=now + timedelta(seconds=1))
    assert [(d.pid, d.alive) for d in status.daemons] == [(successor.pid, True)]


def test_daemon_status_shows_a_killed_daemon_of_this_host_dead_before_its_heartbeat_expires(
        db: Engine, now: datetime, local_process: subprocess.Popen[bytes]) -> None:
    """`daemon status` reads a heartbeat of this host whose process is gone as dead at once; a live one stays alive."""
    dead = _identity_of(local_process, "dead")
    with transaction(db) as session:
        start_heartbeat(session, dead, now, 60)
        acquire_dispatcher_lease(session, dead, now, 60)
    before = outbox.daemon_status(db, now=now + timedelta(seconds=1))
    assert before.dispatcher is not None
    assert ([d.alive for d in before.daemons], before.dispatcher.valid) == ([True], True)
    local_process.kill()
    local_process.wait()
    after = outbox.daemon_status(db, now=now + timedelta(seconds=1))
    assert after.dispatcher is not None
    assert ([d.alive for d in after.daemons], after.dispatcher.valid) == ([False], False)
    assert after.running is False


def test_the_lease_of_a_live_process_or_of_another_host_is_still_waited_out(
        db: Engine, now: datetime, local_process: subprocess.Popen[bytes]) -> None:
    """A live daemon of this host, and any daemon of another host (dead or not), keep their lease until it expires."""
    live = _identity_of(local_process, "live")
    with transaction(db) as session:
        acquire_dispatcher_lease(session, live, now, 60)
    with pytest.raises(DaemonAlreadyRunning), transaction(db) as session:
        acquire_dispatcher_lease(session, DaemonIdentity.of_this_process(), now + timedelta(seconds=1), 60)
    local_process.kill()
    local_process.wait()
    elsewhere = DaemonIdentity(f"not-{socket.gethostname()}", live.pid, "far", live.process_start)
    with transaction(db) as session:
        queries.drop_lease(session, DISPATCHER, live.holder)
        acquire_dispatcher_lease(session, elsewhere, now, 60)
    with pytest.raises(DaemonAlreadyRunning), transaction(db) as session:
        acquire_dispatcher_lease(session, DaemonIdentity.of_this_process(), now + timedelta(seconds=1), 60)


def test_released_lease_lets_successor_start_at_once_when_holder_exits_cleanly(db: Engine, now: datetime) -> None:
    """A clean exit deletes the lease and the heartbeat, so the next daemon need not wait for expiry."""
    with transaction(db) as session:
        start_heartbeat(session, ALICE, now, LEASE)
        acquire_dispatcher_lease(session, ALICE, now, LEASE)
    with transaction(db) as session:
        release_leases(session, ALICE)
    with transaction(db) as session:
        assert acquire_dispatcher_lease(session, BOB, now + timedelta(seconds=1), LEASE) is None
    assert outbox.daemon_status(db, now=now).daemons == ()


def test_orphaned_claims_are_freed_when_holder_heartbeat_has_expired(db: Engine, pending: list[str],
                                                                     now: datetime) -> None:
    """Rows claimed by a daemon whose heartbeat died are handed back; a live daemon's claims are kept."""
    with transaction(db) as session:
        start_heartbeat(session, ALICE, now, LEASE)
        start_heartbeat(session, BOB, now, 60)
        queries.claim_due_notifications(session, holder=ALICE.holder, now=now, limit=3,
                                        claim_until=now + timedelta(minutes=5))
        queries.claim_due_notifications(session, holder=BOB.holder, now=now, limit=3,
                                        claim_until=now + timedelta(minutes=5))
    with transaction(db) as session:
        assert queries.release_orphaned_claims(session, now + timedelta(seconds=10)) == 3
    assert Counter(r.claimed_by for r in _rows(db)) == {None: 4, BOB.holder: 3}
    status = outbox.daemon_status(db, now=now + timedelta(seconds=10))
    assert {(d.pid, d.alive) for d in status.daemons} == {(101, False), (202, True)}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_claimers_never_get_same_row_when_claiming_in_separate_postgresql_sessions(
        db: Engine, spec: assignments.AssignmentSpec, now: datetime) -> None:
    """With SKIP LOCKED, open claim transactions skip each other's rows, and racing threads split the work."""
    assignment_id = _created_telling_every_role(db, spec, now)
    with transaction(db) as session:
        queries.insert_notifications(session, [NewNotice(
            key=f"contact_due/{assignment_id}/test/{n}", kind=NoticeKind.CONTACT_DUE, assignment_id=assignment_id,
            task_id=None, recipient="s@example.com", role="sponsor", subject="s", body="b", created_at=now,
            deliver_at=now) for n in range(293)])
    until = now + timedelta(minutes=5)
    with Session(db) as first, Session(db) as second:
        mine = queries.claim_due_notifications(first, holder="first", now=now, limit=5, claim_until=until)
        theirs = queries.claim_due_notifications(second, holder="second", now=now, limit=5, claim_until=until)
        assert {r.id for r in mine}.isdisjoint({r.id for r in theirs})
        first.rollback()
        second.rollback()
    claimed: list[int] = []
    lock = threading.Lock()

    def claim_until_empty(holder: str) -> None:
        while True:
            with transaction(db) as session:
                rows = queries.claim_due_notifications(session, holder=holder, now=now, limit=7, claim_until=until)
            if not rows:
                return
            with lock:
                claimed.extend(r.id for r in rows if r.id is not None)

    workers = [threading.Thread(target=claim_until_empty, args=(f"worker-{n}",)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert len(claimed) == len(set(claimed)) == 300


SECRET_PATH = "/services/T0SECRET/B0SECRET/pathSecret42"
SECRET_QUERY = "token=querySecret42"


@pytest.mark.parametrize("status", [404, 503])
def test_a_webhook_error_body_echoing_its_url_is_redacted_in_last_error_and_logs(
        db: Engine, pending: list[str], now: datetime, status: int) -> None:
    """A receiver answering with its request's path and query in the body: `last_error` and the log keep the
    status and a short reason, never the path, the query or the signing secret."""
    def echo(path: str) -> bytes:
        return f'{{"error": "no hook at {path}", "see": "http://127.0.0.1{path}", "secret": "whsec-hook"}}'.encode()

    with Receiver(0, status=status, answer=echo) as receiver:
        notifier = WebhookNotifier(receiver.at(f"{SECRET_PATH}?{SECRET_QUERY}"), secret="whsec-hook")
        with capture_logs() as logs:
            dispatch_due(db, [notifier], holder="tester", now=now, policy=DeliveryPolicy(), routing=Routing({}),
                         rng=random.Random(7), log=get_logger("sojourn.daemon"))
        assert receiver.take()
    errors = [r.last_error or "" for r in _rows(db)]
    assert errors
    logged = repr([entry for entry in logs if entry.get("error")])
    assert f"answered {status} " in logged
    for error in errors:
        assert f"answered {status} " in error
        assert len(error) < 250
    for leaked in ("T0SECRET", "B0SECRET", "pathSecret42", "querySecret42", "/services", "whsec-hook"):
        assert leaked.lower() not in " ".join(errors).lower()
        assert leaked.lower() not in logged.lower()
    assert "no hook at" in errors[0]
