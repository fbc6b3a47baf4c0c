"""The tables: the database is the single source of truth for assignments, tasks and the outbox."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, cast

from sqlalchemy import JSON, Column, Index, Integer, Numeric, Table, Text, UniqueConstraint, false
from sqlalchemy.ext.mutable import MutableList
from sqlmodel import Field, SQLModel

from engine.domain.notices import NoticeStatus
from engine.domain.tasks import TaskStatus


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model, for the named Core statements of the store."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def pk(row: SQLModel) -> int:
    """The primary key of a row that has been flushed (SQLModel types it as optional until then)."""
    value = getattr(row, "id", None)
    assert isinstance(value, int), f"{type(row).__name__} has not been flushed yet"
    return value


class Workflow(SQLModel, table=True):
    """One installed version of a workflow definition; assignments pin the version they started on."""

    __table_args__ = (UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: int
    source: str = Field(sa_column=Column(Text, nullable=False))  # the YAML text as installed
    installed_at: datetime


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)
    name: str
    tz: str = "UTC"
    digest: str = Field(default="off", sa_column_kwargs={"server_default": "off"})  # see DigestChoice


_ASSIGNMENT_ROW_VERSION = Column("row_version", Integer, nullable=False)


class Assignment(SQLModel, table=True):
    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": _ASSIGNMENT_ROW_VERSION}
    id: int | None = Field(default=None, primary_key=True)
    workflow_id: int = Field(foreign_key="workflow.id")
    assignee_id: int = Field(foreign_key="person.id")
    stage: str = Field(index=True)
    home: str
    host: str
    start: date
    end: date
    plan_version: int = 1  # bumped by every plan change; sign-offs bind to one version
    stage_entered_at: datetime
    created_at: datetime
    # optimistic lock: every UPDATE checks and bumps it, so a stale write raises StaleDataError
    row_version: int = Field(default=0, sa_column=_ASSIGNMENT_ROW_VERSION)
    # the head of the assignment's audit chain (see AuditEvent): its newest seq and hash, so a deleted newest row shows
    audit_seq: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    audit_head: str | None = None
    # what the assignment cost (assignments cost two to five times base pay), for the cost per leader retained
    cost_amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2), nullable=True))
    cost_currency: str | None = Field(default=None, max_length=3)  # ISO 4217, e.g. EUR
    # why a cancelled assignment ended early: one of engine.domain.inputs.EARLY_RETURN_REASONS (null: not an early
    # return)
    early_return_reason: str | None = None


class Stakeholder(SQLModel, table=True):
    assignment_id: int = Field(foreign_key="assignment.id", primary_key=True)
    role: str = Field(primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)


class Task(SQLModel, table=True):
    """A task instantiated from a stage's template when the stage is entered.

    `due_on` is the calendar day in the owner's time zone; `due_at` is the instant that day ends there, after which
    the task is overdue. `next_reminder_at` is when the daemon next has something to say about it (null: nothing).
    """

    __table_args__ = (
        UniqueConstraint("assignment_id", "key"),
        Index("ix_task_next_reminder_at", "next_reminder_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", index=True)
    key: str
    title: str
    description: str = ""
    stage: str
    owner_role: str
    owner_id: int = Field(foreign_key="person.id", index=True)
    due_on: date
    due_at: datetime
    status: str = TaskStatus.OPEN  # see TaskStatus
    completed_at: datetime | None = None
    completed_by: str | None = None
    note: str | None = None
    next_reminder_at: datetime | None = None
    # bumped when the task's owner or due date moves after it was made: each round's reminders have keys of their own,
    # so the new owner, or the owner of a new due date, hears the steps already sent in an earlier round
    reminder_round: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Goal(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", index=True)
    title: str
    measure: str
    target: str
    due: date
    plan_version: int  # the plan version this goal first appeared in
    created_at: datetime
    created_by: str
    baseline: str = Field(default="", sa_column_kwargs={"server_default": ""})
    competencies: list[str] = Field(default_factory=list, sa_column=Column(MutableList.as_mutable(JSON), nullable=False,
                                                                               server_default="[]"))
    alignment_level: str | None = None  # organisation, mobility_team or individual
    aligned_to: str = Field(default="", sa_column_kwargs={"server_default": ""})
    removed_at: datetime | None = None  # a removed goal stays for the record; plans from then on leave it out
    removed_reason: str | None = None


class Signoff(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("assignment_id", "role", "plan_version"),)
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", index=True)
    role: str
    person_id: int = Field(foreign_key="person.id")
    plan_version: int
    signed_at: datetime
    recorded_by: str  # who gave the sign-off: the holder, or an administrator on their behalf
    on_behalf: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Contact(SQLModel, table=True):
    """A logged contact (sponsor call, coaching session) that satisfies a cadence in its period."""

    __table_args__ = (Index("ix_contact_assignment_kind_on", "assignment_id", "kind", "on"),)
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id")
    kind: str
    with_person_id: int = Field(foreign_key="person.id")
    on: date
    notes: str = ""
    logged_by: str
    logged_at: datetime


class StageChange(SQLModel, table=True):
    """One step of an assignment's append-only stage history; the table keeps its older name, `transition`."""

    __tablename__: ClassVar[str] = "transition"
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", index=True)
    from_stage: str | None
    to_stage: str
    at: datetime
    actor: str
    reason: str | None = None
    workflow_version: int


class AuditEvent(SQLModel, table=True):
    """Append-only audit trail: each row is chained to its predecessor by a hash of its content.

    `seq` counts an assignment's events from 1; `details` is canonical JSON text, exactly the bytes that were hashed.
    Rows are only ever inserted, by `append_audit_chains`.
    """

    __tablename__: ClassVar[str] = "audit_event"
    __table_args__ = (UniqueConstraint("assignment_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id")
    seq: int
    at: datetime
    actor: str
    action: str
    details: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str | None = None
    hash: str
    # how the strings of actor and details were committed (engine.program.audit): the random secret their salts derive
    # from; after an erasure, `erased` holds the remaining salts and the frozen digests instead. Both null: hashed in
    # clear
    secret: str | None = None
    erased: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class CadenceState(SQLModel, table=True):
    """Where an assignment's recurring contact stands: the next instant the daemon must look at it."""

    __table_args__ = (Index("ix_cadencestate_next_check_at", "next_check_at"),)
    assignment_id: int = Field(foreign_key="assignment.id", primary_key=True)
    kind: str = Field(primary_key=True)
    next_check_at: datetime | None = None


class Outbox(SQLModel, table=True):
    """Notifications waiting to be delivered, written in the transaction of the change that causes them.

    `key` is the idempotency key: planning the same notification twice inserts nothing. `delivered_to` lists the
    notifiers that already accepted it, so a retry does not repeat them.
    """

    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_claimed_until", "claimed_until"),  # freeing a dead daemon's claims reads only claimed rows
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    kind: str
    assignment_id: int = Field(foreign_key="assignment.id", index=True)
    task_id: int | None = Field(default=None, foreign_key="task.id")
    recipient: str
    role: str
    subject: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
    deliver_at: datetime  # not before this instant (a local hour in the recipient's time zone)
    status: str = NoticeStatus.PENDING  # see NoticeStatus
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str | None = None
    sent_at: datetime | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    delivered_to: list[str] = Field(default_factory=list, sa_column=Column(MutableList.as_mutable(JSON)))
    calendar: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # iCalendar text to attach
    digest_key: str | None = Field(default=None, index=True)  # the digest this notice was gathered into
    # What the notice is about, beside its key, for choosing its link: the cadence of a contact, check-in or pulse
    # notice, the plan version a plan change names, the pulse an alert is about (None where the kind has none).
    cadence: str | None = None
    plan_version: int | None = None
    pulse_id: int | None = None


class DaemonLease(SQLModel, table=True):
    """Heartbeats of running daemons; on SQLite the single `dispatcher` row is the lease to dispatch.

    `process_start` tells the holder apart from a later process with the same pid on its host (see
    `engine.delivery.leases.process_start_of`); None where the platform does not say.
    """

    name: str = Field(primary_key=True)
    holder: str
    pid: int
    host: str
    process_start: str | None = None
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime


class Checkin(SQLModel, table=True):
    """A check-in on goals by the assignee or the host manager, with feedback about the other side.

    `role` says whose view it is: the assignee's feedback is on the host manager and the program, the host
    manager's on the assignee. It satisfies a `checkin` cadence in the period its instant falls in.
    """

    __table_args__ = (Index("ix_checkin_assignment_at", "assignment_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id")
    person_id: int = Field(foreign_key="person.id")
    role: str
    at: datetime
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    feedback: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class GoalProgress(SQLModel, table=True):
    """How far one goal had come at one check-in, in percent."""

    __tablename__: ClassVar[str] = "goal_progress"
    __table_args__ = (UniqueConstraint("checkin_id", "goal_id"),)
    id: int | None = Field(default=None, primary_key=True)
    checkin_id: int = Field(foreign_key="checkin.id")
    goal_id: int = Field(foreign_key="goal.id", index=True)
    percent: int


class Pulse(SQLModel, table=True):
    """The assignee's expectancy, instrumentality and valence (1-5 each) at one instant; `alert` when it warned."""

    __table_args__ = (Index("ix_pulse_assignment_at", "assignment_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id")
    person_id: int = Field(foreign_key="person.id")
    at: datetime
    expectancy: int
    instrumentality: int
    valence: int
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    alert: bool = False
    alert_reason: str | None = None
    resolved_at: datetime | None = None


class Outcome(SQLModel, table=True):
    """What became of an assignee 12 or 24 months after return: retention, promotion and business impact."""

    __table_args__ = (UniqueConstraint("assignment_id", "months"),)
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id")
    months: int  # 12 or 24
    retained: bool
    left_on: date | None = None
    left_reason: str | None = None
    considered_for_promotion: bool = False
    promoted_to: str | None = None
    impact: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recorded_at: datetime
    recorded_by: str


class OutcomeCompetency(SQLModel, table=True):
    """One competency of an outcome, rated before the assignment (typed, or its baseline) and after it, 1 to 5."""

    __tablename__: ClassVar[str] = "outcome_competency"
    __table_args__ = (UniqueConstraint("outcome_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    outcome_id: int = Field(foreign_key="outcome.id", index=True)
    name: str
    before: int | None  # None: rated after the assignment only, with no baseline to grow from
    after: int


class CompetencyBaseline(SQLModel, table=True):
    """A competency's rating (1 to 5) when the plan is agreed; a later row for the same name corrects it."""

    __tablename__: ClassVar[str] = "competency_baseline"
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", index=True)
    name: str
    level: int
    recorded_at: datetime
    recorded_by: str


class LinkRevocation(SQLModel, table=True):
    """`sojourn links revoke`: every link of the person issued before `revoked_before` is refused."""

    __tablename__: ClassVar[str] = "link_revocation"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    revoked_before: datetime


class LinkUse(SQLModel, table=True):
    """A signed link that has been acted on; the unique token id makes a second click write nothing."""

    __tablename__: ClassVar[str] = "link_use"
    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(unique=True)
    used_at: datetime
    person_id: int = Field(foreign_key="person.id")
    action: str


class Activity(SQLModel, table=True):
    """A learning activity of a goal: how the assignee works towards it (reflection, mentoring, ...)."""

    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(foreign_key="goal.id", index=True)
    kind: str  # reflection, mentoring, project, training or network
    description: str
    due_on: date | None = None
    plan_version: int  # the plan version this activity first appeared in
    created_at: datetime


class PlanChange(SQLModel, table=True):
    """One change of a development plan: the version it made, what the plan then was, and who acknowledged it.

    `snapshot` is the plan of that version (goals and activities as JSON), so any earlier version can be shown.
    `acknowledge_task_id` is the task that asks for acknowledgement; null when the change needed none (made
    before the plan was agreed, or under a workflow without an acknowledging role).
    """

    __tablename__: ClassVar[str] = "plan_change"
    __table_args__ = (UniqueConstraint("assignment_id", "plan_version"),)
    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", index=True)
    plan_version: int
    summary: str
    changed_at: datetime
    changed_by: str
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    acknowledge_task_id: int | None = Field(default=None, foreign_key="task.id")


class PersonErasure(SQLModel, table=True):
    """`sojourn person erase`: who erased a person, when and why; the person row now holds the pseudonym."""

    __tablename__: ClassVar[str] = "person_erasure"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    erased_at: datetime
    erased_by: str
    reason: str = Field(sa_column=Column(Text, nullable=False))


class CadenceStart(SQLModel, table=True):
    """A cadence that began while the assignment was already in its stages, because a workflow migration brought it:
    its periods count from `started_at` (or a later entry into its stages), so none is due before it existed."""

    __tablename__: ClassVar[str] = "cadence_start"
    assignment_id: int = Field(foreign_key="assignment.id", primary_key=True)
    kind: str = Field(primary_key=True)
    started_at: datetime


class Objective(SQLModel, table=True):
    """An organisation or mobility-team objective that goals are aligned to (the individual level is the goal).

    Objectives belong to the program, not to one assignment, so they form a hash chain of their own: `hash` covers
    the row's content and the previous objective's hash (`prev_hash`), and `audit verify` recomputes it.
    """

    id: int | None = Field(default=None, primary_key=True)
    level: str  # organisation or mobility_team
    title: str
    owner_id: int | None = Field(default=None, foreign_key="person.id")
    year: int | None = None
    created_at: datetime
    created_by: str
    prev_hash: str | None = None
    hash: str


class GoalObjective(SQLModel, table=True):
    """A goal aligned to an objective; a goal may serve several. Each set of links is recorded by the goal's
    `plan_changed` audit event, against which `audit verify` holds it."""

    __tablename__: ClassVar[str] = "goal_objective"
    goal_id: int = Field(foreign_key="goal.id", primary_key=True)
    objective_id: int = Field(foreign_key="objective.id", primary_key=True, index=True)
