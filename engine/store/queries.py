"""The hot statements, named and kept together: idempotent outbox inserts and the reads the daemon repeats."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from sqlalchemy import (
    CursorResult,
    Insert,
    String,
    Update,
    and_,
    bindparam,
    case,
    delete,
    exists,
    insert,
    literal,
    not_,
    or_,
    update,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import func
from sqlmodel import Session, col, select

from engine.domain.digests import INFORMATIONAL_KINDS, DigestChoice
from engine.domain.notices import (
    DELIVERABLE,
    NOT_SENT_YET,
    RETRYABLE,
    NewNotice,
    NoticeKind,
    NoticeStatus,
    cadence_key_prefix,
)
from engine.domain.tasks import TaskStatus
from engine.store.models import (
    Assignment,
    CadenceState,
    Contact,
    DaemonLease,
    Outbox,
    Person,
    StageChange,
    Stakeholder,
    Task,
    Workflow,
    table_of,
)

if TYPE_CHECKING:
    from sqlalchemy import Executable
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.engine import Dialect
    from sqlmodel.sql.expression import SelectOfScalar


def dialect_insert(dialect: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that knows ON CONFLICT; the dialect module is imported only for the database in use."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _insert_ignoring_duplicates(session: Session, table: Any, conflict_column: str) -> Insert:
    """`INSERT ... ON CONFLICT (column) DO NOTHING` in the dialect of the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        return dialect_insert(dialect, table).on_conflict_do_nothing(index_elements=[conflict_column])
    return insert(table)


def insert_notifications(session: Session, notices: Sequence[NewNotice]) -> int:
    """insert_notifications: insert outbox rows whose key is new; a key already present is silently kept as it is.

    This is what makes planning idempotent: two daemons, or one daemon after a restart, planning the same
    reminder insert it once. Returns how many rows were new.

    The rows go to the driver as one `executemany` of plain tuples, each value converted by its column's own bind
    processor, so they are stored exactly as the ORM would store them: planning writes thousands of rows a sweep,
    and SQLAlchemy's per-row statement handling cost more than the insert itself.
    """
    if not notices:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name not in ("postgresql", "sqlite"):
        table = table_of(Outbox)
        statement = _insert_ignoring_duplicates(session, table, "key").returning(table.c.key)
        return len(session.execute(statement, [_outbox_row(n) for n in notices]).all())
    insert = _outbox_insert(dialect)
    instant, status, delivered_to = insert.instant, insert.status, insert.delivered_to
    rows = [(n.key, str(n.kind), n.assignment_id, n.task_id, n.recipient, n.role, n.subject, n.body,
             instant(n.created_at), deliver := instant(n.deliver_at), n.calendar, status, 0, deliver, delivered_to,
             n.cadence, n.plan_version, n.pulse_id)
            for n in notices]
    return _rowcount(connection.exec_driver_sql(insert.sql, rows))


@dataclass(frozen=True)
class _OutboxInsert:
    """The driver-level `INSERT ... ON CONFLICT (key) DO NOTHING` of new outbox rows in one dialect's parameter
    style, with the values its columns' bind processors make: instants converted by the instant columns' own
    processor, and the constant status and empty `delivered_to` of a new row converted once."""

    sql: str
    instant: Callable[[Any], Any]
    status: Any
    delivered_to: Any


_OUTBOX_INSERT_COLUMNS = ("key", "kind", "assignment_id", "task_id", "recipient", "role", "subject", "body",
                          "created_at", "deliver_at", "calendar", "status", "attempts", "next_attempt_at",
                          "delivered_to", "cadence", "plan_version", "pulse_id")
_OUTBOX_INSTANTS = ("created_at", "deliver_at", "next_attempt_at")
_OUTBOX_INSERTS: dict[tuple[str, str], _OutboxInsert] = {}


def _outbox_insert(dialect: Dialect) -> _OutboxInsert:
    """The insert for `dialect`, made once. Only the instant columns and `status`/`delivered_to` may have a bind
    processor (the others are plain text and integers on both backends); a test compares what it stores with what
    the ORM reads back."""
    cached = _OUTBOX_INSERTS.get((dialect.name, dialect.paramstyle))
    if cached is None:
        columns = table_of(Outbox).c
        processors = {name: columns[name].type.dialect_impl(dialect).bind_processor(dialect)
                      for name in _OUTBOX_INSERT_COLUMNS}
        plain = [name for name, process in processors.items() if process is not None
                 and name not in (*_OUTBOX_INSTANTS, "status", "delivered_to")]
        assert not plain, f"outbox columns converted on the way in: {plain}"
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in _OUTBOX_INSERT_COLUMNS)
        # constant column names quoted by the dialect; every value is bound
        sql = (f"INSERT INTO outbox ({quoted}) VALUES ({', '.join([mark] * len(_OUTBOX_INSERT_COLUMNS))}) "  # noqa: S608
               "ON CONFLICT (key) DO NOTHING")
        instant = processors["created_at"] or _unchanged
        cached = _OUTBOX_INSERTS[(dialect.name, dialect.paramstyle)] = _OutboxInsert(
            sql, instant, _converted(processors["status"], NoticeStatus.PENDING.value),
            _converted(processors["delivered_to"], []))
    return cached


def _unchanged(value: Any) -> Any:
    return value


def _converted(process: Callable[[Any], Any] | None, value: Any) -> Any:
    return value if process is None else process(value)


def _outbox_row(notice: NewNotice) -> dict[str, Any]:
    """The bind parameters, by column, of one new outbox row, as an INSERT executed for many rows takes them."""
    return {**notice._asdict(), "status": NoticeStatus.PENDING, "attempts": 0, "delivered_to": [],
            "next_attempt_at": notice.deliver_at}


def existing_outbox_keys(session: Session, keys: Iterable[str]) -> set[str]:
    """existing_outbox_keys: which of `keys` the outbox holds already (the unique index on key), in few queries.

    Planning asks before it builds a notice's text and attachment: at each later step of a task and each check of
    a cadence, most of what is due was written at an earlier sweep.
    """
    wanted = list(dict.fromkeys(keys))
    found: set[str] = set()
    for first in range(0, len(wanted), _KEYS_PER_QUERY):
        chunk = wanted[first:first + _KEYS_PER_QUERY]
        found.update(session.connection().execute(_existing_keys_statement(), {"keys": chunk}).scalars())
    return found


@cache
def _existing_keys_statement() -> Executable:
    return select(Outbox.key).where(col(Outbox.key).in_(bindparam("keys", expanding=True)))


_KEYS_PER_QUERY = 2000  # well under SQLite's limit of bound values in one statement


# --- planning -------------------------------------------------------------------------------------------------


def anything_due(session: Session, now: datetime) -> tuple[bool, bool]:
    """anything_due: whether a task reminder, and whether a cadence check, has come at `now` (two index probes).

    The daemon sweeps every minute and mostly finds nothing; this one plain statement answers that, where the two
    reads of what is due cost many times more through the ORM.
    """
    row = session.connection().execute(_anything_due_statement(), {"due_now": now}).one()
    return bool(row[0]), bool(row[1])


@cache
def _anything_due_statement() -> Executable:
    task, state = table_of(Task), table_of(CadenceState)
    statement: Executable = select(
        exists().where(task.c.status == TaskStatus.OPEN, task.c.next_reminder_at <= bindparam("due_now")),
        exists().where(state.c.next_check_at <= bindparam("due_now")))
    return statement


def due_task_reminders(session: Session, now: datetime, limit: int) -> Sequence[Task]:
    """due_task_reminders: open tasks whose next reminder step has come (`next_reminder_at <= now`), soonest first.

    Served by ix_task_next_reminder_at, so the cost follows the reminders that are due, not the tasks ever made.
    On PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED until the planning transaction ends: two daemons
    planning at once work on disjoint tasks instead of waiting on (or deadlocking over) each other.
    """
    return session.exec(_due_task_statement(limit), params={"due_now": now}).all()


@cache
def _due_task_statement(limit: int) -> SelectOfScalar[Task]:
    """Built once per limit: the daemon runs it at every sweep, and building it cost more than running it (as for
    the other statements of a sweep below, which run on the session's connection, below the ORM, for the same
    reason)."""
    return (select(Task).where(Task.status == TaskStatus.OPEN, col(Task.next_reminder_at) <= bindparam("due_now"))
            .order_by(col(Task.next_reminder_at), col(Task.id)).limit(limit)
            .with_for_update(skip_locked=True))


class DueCadence(NamedTuple):
    assignment_id: int
    kind: str
    next_check_at: datetime | None


def due_cadence_checks(session: Session, now: datetime, limit: int) -> list[DueCadence]:
    """due_cadence_checks: cadences the daemon must look at (`next_check_at <= now`), soonest first.

    Served by ix_cadencestate_next_check_at; locked FOR UPDATE SKIP LOCKED on PostgreSQL like due_task_reminders.
    Plain rows, not tracked objects: planning moves `next_check_at` with `set_next_cadence_checks`.
    """
    return [DueCadence(*row) for row in session.connection().execute(_due_cadence_statement(limit),
                                                                      {"due_now": now})]


@cache
def _due_cadence_statement(limit: int) -> Executable:
    return (select(CadenceState.assignment_id, CadenceState.kind, CadenceState.next_check_at)
            .where(col(CadenceState.next_check_at) <= bindparam("due_now"))
            .order_by(col(CadenceState.next_check_at), col(CadenceState.assignment_id), col(CadenceState.kind))
            .limit(limit).with_for_update(skip_locked=True))


def set_next_cadence_checks(session: Session, next_checks: Sequence[tuple[int, str, datetime | None]]) -> None:
    """set_next_cadence_checks: move each (assignment id, cadence kind) to its next check instant, in one statement."""
    if next_checks:
        session.connection().execute(_next_check_statement(), [
            {"state_assignment_id": a, "state_kind": k, "state_next_check_at": at} for a, k, at in next_checks])


@cache
def _next_check_statement() -> Update:
    table = table_of(CadenceState)
    return (update(table).where(table.c.assignment_id == bindparam("state_assignment_id"),
                                table.c.kind == bindparam("state_kind"))
            .values(next_check_at=bindparam("state_next_check_at")))


def set_next_reminders(session: Session, moves: Sequence[tuple[Task, datetime | None]]) -> None:
    """set_next_reminders: move each task's `next_reminder_at`, in one statement for the batch.

    The loaded tasks get the new instant as their committed value, so the session neither writes them again nor
    holds a stale value.
    """
    if not moves:
        return
    session.connection().execute(_next_reminder_statement(), [
        {"moved_task_id": task.id, "moved_next_reminder_at": at} for task, at in moves])
    for task, at in moves:
        set_committed_value(task, "next_reminder_at", at)


def cancel_queued_cadence_notifications(session: Session, cadences: Sequence[tuple[int, str]], *, kinds: Sequence[str],
                                        reason: str) -> int:
    """cancel_queued_cadence_notifications: `cancel_queued_notifications` for many (assignment id, cadence kind)
    pairs in one statement: their queued notices of `kinds` that are not sent yet become `cancelled`, with `reason`.
    Returns the rows cancelled."""
    if not cadences:
        return 0
    outbox = table_of(Outbox)
    # literal kinds and statuses, not expanding parameters: the statement runs once per pair (executemany)
    statement = (update(outbox).where(outbox.c.assignment_id == bindparam("cancel_assignment_id"),
                                      outbox.c.cadence == bindparam("cancel_cadence"),
                                      or_(*(outbox.c.kind == literal(k) for k in kinds)),
                                      or_(*(outbox.c.status == literal(s) for s in NOT_SENT_YET)))
                 .values(status=NoticeStatus.CANCELLED, last_error=reason))
    values = [{"cancel_assignment_id": assignment_id, "cancel_cadence": cadence} for assignment_id, cadence in cadences]
    return _rowcount(session.connection().execute(statement, values))


@cache
def _next_reminder_statement() -> Update:
    table = table_of(Task)
    return (update(table).where(table.c.id == bindparam("moved_task_id"))
            .values(next_reminder_at=bindparam("moved_next_reminder_at")))


class StageStep(NamedTuple):
    """One step of an assignment's stage history, as planning needs it."""

    from_stage: str | None
    to_stage: str
    at: datetime


def stage_steps_of(session: Session, assignment_ids: Iterable[int]) -> dict[int, list[StageStep]]:
    """stage_steps_of: the stage history of several assignments as plain rows, oldest first, in one query."""
    history: dict[int, list[StageStep]] = defaultdict(list)
    ids = set(assignment_ids)
    if ids:
        rows = session.connection().execute(_stage_steps_statement(), {"ids": list(ids)}).all()
        for assignment_id, from_stage, to_stage, at in rows:
            history[assignment_id].append(StageStep(from_stage, to_stage, at))
    return history


@cache
def _stage_steps_statement() -> Executable:
    return (select(StageChange.assignment_id, StageChange.from_stage, StageChange.to_stage, StageChange.at)
            .where(col(StageChange.assignment_id).in_(bindparam("ids", expanding=True))).order_by(col(StageChange.id)))


_Value = TypeVar("_Value", Assignment, Person, Workflow)


def values_by_id(session: Session, model: type[_Value], ids: Iterable[int]) -> dict[int, _Value]:
    """values_by_id: the rows of `model` with these ids, read as plain rows and handed out as detached, read-only
    values, by id, in one query.

    Planning reads the assignments, people and workflows of every batch of every sweep; loading them as tracked
    entities cost more than reading them. A value is made once per distinct row and handed out again while the row
    stays the same, so what a caller gets is always what the database holds; callers must not change it.
    """
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = session.connection().execute(_rows_by_id(model), {"ids": wanted}).all()
    return {row[0]: _value(model, tuple(row)) for row in rows}


@cache
def _rows_by_id(model: type[_Value]) -> Executable:
    table = table_of(model)
    statement: Executable = select(*table.c).where(table.c.id.in_(bindparam("ids", expanding=True)))
    return statement


@lru_cache(maxsize=32768)
def _value(model: type[_Value], row: tuple[Any, ...]) -> _Value:
    return model(**dict(zip(table_of(model).c.keys(), row, strict=True)))


def stage_changes_of(session: Session, assignment_ids: Iterable[int]) -> dict[int, list[StageChange]]:
    """stage_changes_of: the stage history of several assignments, oldest first, in one query."""
    history: dict[int, list[StageChange]] = defaultdict(list)
    ids = set(assignment_ids)
    if ids:
        statement = (select(StageChange).where(col(StageChange.assignment_id).in_(ids))
                     .order_by(col(StageChange.id)))
        for row in session.exec(statement):
            history[row.assignment_id].append(row)
    return history


def contact_days_of(session: Session, assignment_ids: Iterable[int], kinds: Iterable[str], first_day: date,
                    last_day: date) -> dict[tuple[int, str], list[date]]:
    """contact_days_of: (assignment id, kind) -> the days, in order, of the contacts of those kinds logged on a day
    in [first_day, last_day] (ix_contact_assignment_kind_on)."""
    days: dict[tuple[int, str], list[date]] = defaultdict(list)
    values = {"ids": list(set(assignment_ids)), "kinds": list(set(kinds)), "first_day": first_day,
              "last_day": last_day}
    rows = session.connection().execute(_contact_days_statement(), values).all()
    for assignment_id, kind, on in rows:
        days[(assignment_id, kind)].append(on)
    return days


@cache
def _contact_days_statement() -> Executable:
    contact = table_of(Contact)
    statement: Executable = (select(contact.c.assignment_id, contact.c.kind, contact.c.on)
                             .where(contact.c.assignment_id.in_(bindparam("ids", expanding=True)),
                                    contact.c.kind.in_(bindparam("kinds", expanding=True)),
                                    contact.c.on >= bindparam("first_day"), contact.c.on <= bindparam("last_day"))
                             .order_by(contact.c.on))
    return statement


# --- tasks ----------------------------------------------------------------------------------------------------


def complete_open_task(session: Session, task_id: int, *, actor: str, note: str | None, now: datetime) -> bool:
    """complete_open_task: mark a task done if it is still open; False when it is not (done or cancelled already).

    Concurrency contract. Completing and `close_open_tasks` are each one UPDATE conditional on `status = 'open'`.
    On PostgreSQL the second of two concurrent statements on the same task waits for the first transaction and
    re-checks the condition on the row it committed, so a task ends either done or cancelled, never cancelled
    with a completion time. SQLite runs one writer at a time.
    """
    task = table_of(Task)  # the table, not the entity: no session state to synchronise, and less work per call
    statement = (update(task).where(task.c.id == task_id, task.c.status == TaskStatus.OPEN)
                 .values(status=TaskStatus.DONE, completed_at=now, completed_by=actor, note=note,
                         next_reminder_at=None))
    return _rowcount(session.execute(statement)) == 1


def close_open_tasks(session: Session, assignment_id: int) -> int:
    """close_open_tasks: cancel every task of an assignment that is still open; returns how many.

    A task completed by a concurrent transaction stays done (see `complete_open_task`).
    """
    statement = (update(Task).where(col(Task.assignment_id) == assignment_id, col(Task.status) == TaskStatus.OPEN)
                 .values(status=TaskStatus.CANCELLED, next_reminder_at=None)
                 .execution_options(synchronize_session=False))
    return _rowcount(session.execute(statement))


def cancel_queued_notifications(session: Session, *, assignment_id: int, kinds: Iterable[str], reason: str,
                                task_id: int | None = None, cadence: str | None = None,
                                period_start: date | None = None, pulse_id: int | None = None) -> int:
    """cancel_queued_notifications: stop an assignment's queued notices of `kinds` whose cause went away.

    Only rows not sent yet (`NOT_SENT_YET`: pending, failed, or held or gathered for a digest) change: they become
    `cancelled`, with `reason` in `last_error`, and are kept for the record. `task_id` narrows to one task's
    notices, `cadence` to one cadence's and `period_start` further to its period starting that day, `pulse_id` to
    one pulse's alerts. A row a daemon is delivering at this moment is cancelled too; `mark_delivery` then marks it
    sent if a notifier accepted it, and otherwise leaves it cancelled. Returns the rows cancelled.
    """
    kinds = list(kinds)
    values: dict[str, Any] = {"cancel_assignment_id": assignment_id, "cancel_kinds": kinds, "cancel_reason": reason,
                              "cancel_task_id": task_id, "cancel_cadence": cadence, "cancel_pulse_id": pulse_id}
    if period_start is not None:
        assert cadence is not None, "a period is one cadence's"
        # the period has no column of its own: a cadence notice's key is the period's key prefix and its role
        values |= {f"cancel_period_{i}": cadence_key_prefix(NoticeKind(kind), assignment_id, cadence, period_start)
                   for i, kind in enumerate(kinds)}
    statement = _cancel_statement(task_id is not None, cadence is not None, pulse_id is not None,
                                  None if period_start is None else len(kinds))
    return _rowcount(session.execute(statement, values))


@cache
def _cancel_statement(by_task: bool, by_cadence: bool, by_pulse: bool, period_kinds: int | None) -> Update:
    """The UPDATE of `cancel_queued_notifications` for one shape of call, built once: planning and every use case
    that ends a notice's cause run it, and building it cost more than running it."""
    outbox = table_of(Outbox)
    statement = update(outbox).where(outbox.c.assignment_id == bindparam("cancel_assignment_id"),
                                     outbox.c.kind.in_(bindparam("cancel_kinds", expanding=True)),
                                     outbox.c.status.in_(NOT_SENT_YET))
    if by_task:
        statement = statement.where(outbox.c.task_id == bindparam("cancel_task_id"))
    if by_cadence:
        statement = statement.where(outbox.c.cadence == bindparam("cancel_cadence"))
    if by_pulse:
        statement = statement.where(outbox.c.pulse_id == bindparam("cancel_pulse_id"))
    if period_kinds is not None:
        statement = statement.where(or_(*(outbox.c.key == bindparam(f"cancel_period_{i}", type_=String) + outbox.c.role
                                          for i in range(period_kinds))))
    return statement.values(status=NoticeStatus.CANCELLED, last_error=bindparam("cancel_reason"))


# --- calendars ------------------------------------------------------------------------------------------------


def assignments_involving(session: Session, person_id: int) -> list[int]:
    """assignments_involving: ids of the assignments the person is the assignee of or holds a role in, ascending."""
    as_assignee = select(Assignment.id).where(Assignment.assignee_id == person_id)
    as_stakeholder = select(Stakeholder.assignment_id).where(Stakeholder.person_id == person_id)
    ids = {*session.exec(as_assignee).all(), *session.exec(as_stakeholder).all()}
    return sorted(i for i in ids if i is not None)


def open_tasks_owned_by(session: Session, person_id: int) -> Sequence[Task]:
    """open_tasks_owned_by: the person's open tasks, soonest due first (ix_task_owner_id)."""
    statement = (select(Task).where(Task.owner_id == person_id, Task.status == TaskStatus.OPEN)
                 .order_by(col(Task.due_on), col(Task.id)))
    return session.exec(statement).all()


# --- dispatch -------------------------------------------------------------------------------------------------


def _claimable(now: datetime, *, by_index: bool = True) -> Any:
    """The claim conditions. With `by_index=False` no index can serve them, for a statement that picks its rows by
    primary key: SQLite, without table statistics, would otherwise walk ix_outbox_status_next_attempt_at over
    every due row (the whole backlog) rather than look up a batch's ids."""
    status = col(Outbox.status) if by_index else col(Outbox.status).concat("")
    return and_(status.in_(DELIVERABLE), col(Outbox.next_attempt_at) <= now,
                or_(col(Outbox.claimed_until).is_(None), col(Outbox.claimed_until) <= now),
                not_(waits_for_digest(status)))


def waits_for_digest(status: Any = None) -> Any:
    """The condition of a pending informational notice, never tried, to a person who takes digests: the next
    gathering holds it, so no dispatcher may send it on its own, even one that claims before the hold is made."""
    on_digest = exists().where(col(Person.email) == col(Outbox.recipient), col(Person.digest) != DigestChoice.OFF)
    return and_(digest_candidate(status), on_digest)


def digest_candidate(status: Any = None) -> Any:
    """The condition of a pending informational notice never tried and in no digest: one a digest may hold.
    `status` is the status column as the caller's statement names it (see `_claimable`)."""
    status = col(Outbox.status) if status is None else status
    return and_(status == NoticeStatus.PENDING, col(Outbox.attempts) == 0,
                col(Outbox.digest_key).is_(None), col(Outbox.kind).in_(INFORMATIONAL_KINDS))


def claim_due_notifications(session: Session, *, holder: str, now: datetime, claim_until: datetime,
                            limit: int) -> list[Outbox]:
    """claim_due_notifications: give `holder` up to `limit` outbox rows to deliver, oldest due first.

    Concurrency contract. A row may be taken when, at `now`, all of these hold:
      - its status is `pending` or `failed` (`sent` and `dead` rows are never taken);
      - it does not wait for its recipient's digest (`waits_for_digest`);
      - `next_attempt_at <= now` (never before its `deliver_at`, never before its retry is due);
      - nobody holds it: `claimed_until` is null or not later than `now` (an expired claim is free again).
    The holder keeps the row until `claim_until`, or until it records the outcome or releases the claim,
    whichever comes first; after that anyone may take it again, which is why delivery is at-least-once.
    On PostgreSQL the candidates are read FOR UPDATE SKIP LOCKED, so claimers in other sessions skip rows
    another claimer is busy with instead of waiting, and two claimers never get the same row. SQLite ignores
    FOR UPDATE; there the claim is one conditional UPDATE that re-checks every condition above, so a row still
    goes to one claimer only (and the dispatcher lease keeps SQLite to one claimer anyway).
    The caller commits right after the claim so that other daemons see it at once.
    """
    candidates = (select(Outbox.id).where(_claimable(now))
                  .order_by(col(Outbox.next_attempt_at), col(Outbox.id)).limit(limit)
                  .with_for_update(skip_locked=True))
    ids = list(session.exec(candidates).all())
    if not ids:
        return []
    session.execute(update(Outbox).where(col(Outbox.id).in_(ids), _claimable(now, by_index=False))
                    .values(claimed_by=holder, claimed_until=claim_until)
                    .execution_options(synchronize_session=False))
    claimed = (select(Outbox).where(col(Outbox.id).in_(ids), col(Outbox.claimed_by) == holder,
                                    Outbox.claimed_until == claim_until)
               .order_by(col(Outbox.next_attempt_at), col(Outbox.id))
               .execution_options(populate_existing=True))
    return list(session.exec(claimed).all())


def mark_delivery(session: Session, outbox_id: int, holder: str, values: dict[str, Any]) -> bool:
    """mark_delivery: store the outcome of an attempt and drop the claim, if `holder` still holds the row.

    False means the claim expired and another holder took the row; the outcome is then left to that holder.
    A row cancelled while it was being delivered stays cancelled, with its reason, unless this attempt sent it.
    """
    outbox = table_of(Outbox)  # a Core UPDATE: the ORM's bulk-update bookkeeping cost more than the write itself
    if values.get("status") != NoticeStatus.SENT:
        cancelled = outbox.c.status == NoticeStatus.CANCELLED
        values = {**values, "status": case((cancelled, NoticeStatus.CANCELLED), else_=literal(values["status"])),
                  "last_error": case((cancelled, outbox.c.last_error), else_=literal(values.get("last_error")))}
    statement = (update(outbox).where(outbox.c.id == outbox_id, outbox.c.claimed_by == holder)
                 .values(**values, claimed_by=None, claimed_until=None))
    return _rowcount(session.execute(statement)) == 1


def release_claims(session: Session, holder: str, ids: Iterable[int] | None = None) -> int:
    """release_claims: hand back rows `holder` claimed but did not attempt (all of them when `ids` is None)."""
    statement = update(Outbox).where(col(Outbox.status).in_(DELIVERABLE), col(Outbox.claimed_by) == holder)
    if ids is not None:
        statement = statement.where(col(Outbox.id).in_(list(ids)))
    statement = statement.values(claimed_by=None, claimed_until=None).execution_options(synchronize_session=False)
    return _rowcount(session.execute(statement))


def release_orphaned_claims(session: Session, now: datetime) -> int:
    """release_orphaned_claims: free claims whose holder has no live heartbeat (it crashed or was killed).

    A daemon's heartbeat row (`DaemonLease.holder`) is live while `expires_at > now`; a holder without one
    cannot be delivering, so its rows need not wait for `claimed_until`. Only undelivered rows are looked at.
    """
    live = select(DaemonLease.holder).where(col(DaemonLease.expires_at) > now)
    statement = (update(Outbox).where(col(Outbox.status).in_(DELIVERABLE), col(Outbox.claimed_by).is_not(None),
                                      col(Outbox.claimed_until) > now, col(Outbox.claimed_by).not_in(live))
                 .values(claimed_by=None, claimed_until=None).execution_options(synchronize_session=False))
    return _rowcount(session.execute(statement))


def outbox_rows(session: Session, *, status: str | None, kind: str | None, limit: int | None) -> list[Outbox]:
    """outbox_rows: the newest `limit` outbox rows (all when None), optionally of one status or kind, oldest first."""
    statement = select(Outbox).order_by(col(Outbox.id).desc())
    if status is not None:
        statement = statement.where(Outbox.status == status)
    if kind is not None:
        statement = statement.where(Outbox.kind == kind)
    if limit is not None:
        statement = statement.limit(limit)
    return list(reversed(session.exec(statement).all()))


def outbox_row(session: Session, key: str) -> Outbox | None:
    """outbox_row: the outbox row with idempotency key `key`, read fresh from the database."""
    statement = select(Outbox).where(Outbox.key == key).execution_options(populate_existing=True)
    return session.exec(statement).first()


def requeue_notification(session: Session, key: str, now: datetime) -> bool:
    """requeue_notification: make a dead or failed row pending again, due at `now`, with a fresh budget of attempts.

    Concurrency contract. One conditional UPDATE: only a `dead` or `failed` row that nobody holds an unexpired
    claim on is changed. A daemon that claims the row first keeps it (the UPDATE changes nothing and False
    is returned); on PostgreSQL a claim made while the UPDATE's transaction is open skips the locked row.
    `delivered_to` is kept, so notifiers that accepted the row are not sent it again.
    """
    statement = (update(Outbox).where(col(Outbox.key) == key, col(Outbox.status).in_(RETRYABLE),
                                      or_(col(Outbox.claimed_until).is_(None), col(Outbox.claimed_until) <= now))
                 .values(status=NoticeStatus.PENDING, attempts=0, next_attempt_at=now, claimed_by=None,
                         claimed_until=None)
                 .execution_options(synchronize_session=False))
    return _rowcount(session.execute(statement)) == 1



def note_resent(session: Session, key: str, notifier: str, now: datetime) -> bool:
    """note_resent: record that a sent row was delivered again, by hand, to `notifier`.

    Only a `sent` row is changed; `notifier` joins `delivered_to` if it was not there. False when the row is gone
    or no longer sent.
    """
    row = outbox_row(session, key)
    if row is None or row.status != NoticeStatus.SENT:
        return False
    if notifier not in (row.delivered_to or []):
        row.delivered_to = [*(row.delivered_to or []), notifier]
    row.sent_at = now
    return True


def next_due_at(session: Session) -> datetime | None:
    """next_due_at: the soonest instant a sweep has something to do: a reminder step, a cadence check, a delivery
    or a digest to gather.

    Each part is the smallest value of an indexed column, so this costs three index look-ups.
    """
    soonest = [session.exec(select(func.min(column)).where(*where)).one() for column, where in (
        (col(Task.next_reminder_at), (col(Task.status) == TaskStatus.OPEN,)),
        (col(CadenceState.next_check_at), ()),
        (col(Outbox.next_attempt_at), (col(Outbox.status).in_((*DELIVERABLE, NoticeStatus.HELD)),)),
    )]
    return min((at for at in soonest if at is not None), default=None)

# --- leases and heartbeats ------------------------------------------------------------------------------------


def lease_row(session: Session, name: str) -> DaemonLease | None:
    """lease_row: the lease or heartbeat row called `name`, read fresh from the database."""
    statement = select(DaemonLease).where(col(DaemonLease.name) == name).execution_options(populate_existing=True)
    return session.exec(statement).first()


def take_lease(session: Session, *, name: str, holder: str, pid: int, host: str, now: datetime,
               expires_at: datetime, process_start: str | None = None) -> bool:
    """take_lease: make `holder` the holder of lease `name` until `expires_at`, unless someone else holds it.

    Concurrency contract. The lease is free when its row is missing or has expired (`expires_at <= now`);
    its own holder may always take it again. Taking it is one conditional UPDATE, or an INSERT that does
    nothing on a conflict, so of several daemons racing for a free lease exactly one wins. The lease expires
    on its own at `expires_at` unless `renew_lease` moves it on; `drop_lease` gives it up at once.
    """
    values = {"holder": holder, "pid": pid, "host": host, "process_start": process_start, "started_at": now,
              "heartbeat_at": now, "expires_at": expires_at}
    taken = (update(DaemonLease).where(col(DaemonLease.name) == name,
                                       or_(col(DaemonLease.holder) == holder, col(DaemonLease.expires_at) <= now))
             .values(**values).execution_options(synchronize_session=False))
    if _rowcount(session.execute(taken)) == 1:
        return True
    table = table_of(DaemonLease)
    inserted = session.execute(_insert_ignoring_duplicates(session, table, "name").values(name=name, **values)
                               .returning(table.c.name))
    return inserted.first() is not None


def take_over_lease(session: Session, *, name: str, dead_holder: str, holder: str, pid: int, host: str,
                    process_start: str | None, now: datetime, expires_at: datetime) -> bool:
    """take_over_lease: make `holder` the holder of lease `name` in place of `dead_holder`, expired or not.

    Concurrency contract. Only for a holder the caller has found dead (its process is gone). One conditional
    UPDATE that still names `dead_holder`, so of several daemons taking over at once exactly one wins, and a
    lease that changed hands in between is left alone (False).
    """
    statement = (update(DaemonLease).where(col(DaemonLease.name) == name, col(DaemonLease.holder) == dead_holder)
                 .values(holder=holder, pid=pid, host=host, process_start=process_start, started_at=now,
                         heartbeat_at=now, expires_at=expires_at)
                 .execution_options(synchronize_session=False))
    return _rowcount(session.execute(statement)) == 1


def renew_lease(session: Session, *, name: str, holder: str, now: datetime, expires_at: datetime) -> bool:
    """renew_lease: move the expiry of a lease `holder` still holds; False when it has been taken over.

    A holder may renew a lease that has expired as long as nobody else took it in the meantime.
    """
    statement = (update(DaemonLease).where(col(DaemonLease.name) == name, col(DaemonLease.holder) == holder)
                 .values(heartbeat_at=now, expires_at=expires_at).execution_options(synchronize_session=False))
    return _rowcount(session.execute(statement)) == 1


def drop_lease(session: Session, name: str, holder: str) -> None:
    """drop_lease: give up lease `name` if `holder` still holds it, so the next daemon need not wait for expiry."""
    session.execute(delete(DaemonLease).where(col(DaemonLease.name) == name, col(DaemonLease.holder) == holder)
                    .execution_options(synchronize_session=False))


def heartbeats(session: Session, prefix: str) -> list[DaemonLease]:
    """heartbeats: every lease row whose name starts with `prefix`, newest heartbeat first."""
    statement = (select(DaemonLease).where(col(DaemonLease.name).startswith(prefix, autoescape=True))
                 .order_by(col(DaemonLease.heartbeat_at).desc(), col(DaemonLease.name)))
    return list(session.exec(statement).all())


def prune_heartbeats(session: Session, prefix: str, expired_before: datetime) -> int:
    """prune_heartbeats: delete heartbeat rows of daemons that died long ago (expired before `expired_before`)."""
    statement = (delete(DaemonLease).where(col(DaemonLease.name).startswith(prefix, autoescape=True),
                                           col(DaemonLease.expires_at) < expired_before)
                 .execution_options(synchronize_session=False))
    return _rowcount(session.execute(statement))
