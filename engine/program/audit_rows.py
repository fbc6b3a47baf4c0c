"""What `history`, `plan show`, task lists, contacts, check-ins, pulses, outcomes and the objectives of goals show,
checked against the events.

Those commands read their own tables, which the hash chain does not cover. `audit verify` therefore holds every row
they show against the event that recorded it: a stage change against its `stage_changed`, a completed task against
its `task_completed` (or `plan_acknowledged`), and so on. A row edited, deleted or added behind Sojourn's back no
longer matches, and is named. Rows of an assignment whose chain began after it was created (a database upgraded
from before the audit trail) are checked only from the chain's first event on: nobody vouched for the earlier ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from engine.domain.notices import PLAN_ACK_TASK
from engine.domain.tasks import TaskStatus
from engine.program.audit import (
    ASSIGNMENT_CREATED,
    BASELINE_RECORDED,
    CHECKIN_RECORDED,
    CONTACT_LOGGED,
    OUTCOME_RECORDED,
    PLAN_ACKNOWLEDGED,
    PLAN_CHANGED,
    PULSE_ALERT_RESOLVED,
    PULSE_RECORDED,
    SIGNED_OFF,
    STAGE_CHANGED,
    TASK_COMPLETED,
    ChainEvent,
    ChainProblem,
    is_erased_form,
)
from engine.store.audit_events import (
    CHECKED_ROWS,
    checkin_progress,
    outcome_competencies,
    person_emails,
    recorded_rows,
)
from engine.store.objective_queries import goal_objective_links

Row = dict[str, Any]


@dataclass(frozen=True)
class RecordedRows:
    """The checked rows of every assignment (or one), read in one snapshot with the events."""

    tables: Mapping[str, Mapping[int, list[Row]]]
    progress: Mapping[int, dict[str, int]]
    competencies: Mapping[int, dict[str, list[int | None]]]
    emails: Mapping[int, str]
    objective_links: Mapping[int, dict[int, list[int]]]  # assignment id -> goal id -> its objectives' ids

    def of(self, table: str, assignment_id: int) -> list[Row]:
        return self.tables[table].get(assignment_id, [])


def load_recorded_rows(session: Session, assignment_id: int | None = None) -> RecordedRows:
    return RecordedRows({t: recorded_rows(session, t, assignment_id) for t in CHECKED_ROWS},
                        checkin_progress(session, assignment_id), outcome_competencies(session, assignment_id),
                        person_emails(session), goal_objective_links(session, assignment_id))


def check_rows(assignment_id: int, events: Sequence[ChainEvent], rows: RecordedRows) -> ChainProblem | None:
    """The first row of one assignment that its (intact) chain does not vouch for, or None."""
    if not events:
        return None  # an assignment from before the audit trail whose chain has not started
    checks: list[Callable[[_Chain, RecordedRows], ChainProblem | None]] = [
        _check_transitions, _check_tasks, _check_signoffs, _check_contacts, _check_checkins, _check_pulses,
        _check_outcomes, _check_objective_links, _check_baselines]
    chain = _Chain(assignment_id, events)
    return next((p for check in checks if (p := check(chain, rows)) is not None), None)


@dataclass
class _Chain:
    assignment_id: int
    events: Sequence[ChainEvent]

    @property
    def complete(self) -> bool:
        """The chain began with the assignment, so every row of it must have its event."""
        return self.events[0].action == ASSIGNMENT_CREATED

    def vouches_for(self, at: datetime | None) -> bool:
        """Whether a row written at `at` falls in the time the chain covers."""
        return self.complete or at is None or at >= self.events[0].at

    def of(self, action: str) -> list[tuple[ChainEvent, dict[str, Any]]]:
        return [(e, e.parsed_details) for e in self.events if e.action == action]

    def edited(self, table: str, row: Row, event: ChainEvent, fields: Iterable[str]) -> ChainProblem:
        return ChainProblem(self.assignment_id, event.seq, event.id, "row_edited",
                            f"{', '.join(fields)} not as its {event.action} event recorded",
                            row=f"{table} row {row['id']}")

    def missing(self, table: str, event: ChainEvent) -> ChainProblem:
        return ChainProblem(self.assignment_id, event.seq, event.id, "row_missing",
                            f"the {table} row it recorded is gone")

    def unrecorded(self, table: str, row: Row, what: str) -> ChainProblem:
        return ChainProblem(self.assignment_id, 0, None, "row_unrecorded", f"no event records {what}",
                            row=f"{table} row {row['id']}")


def _same(a: Any, b: Any) -> bool:
    """Equal as Sojourn writes both sides: blank text and null alike, instants as instants, dates as ISO text."""
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b
    if isinstance(a, date):
        a = a.isoformat()
    if isinstance(b, date):
        b = b.isoformat()
    return (a if a != "" else None) == (b if b != "" else None)


def _differing(pairs: Mapping[str, tuple[Any, Any]]) -> list[str]:
    return [name for name, (a, b) in pairs.items() if not _same(a, b)]


def _by_id(rows: Sequence[Row]) -> dict[int, Row]:
    return {row["id"]: row for row in rows}


def _check_keyed(chain: _Chain, table: str, rows: Sequence[Row], action: str, key: str,
                 compare: Callable[[Row, ChainEvent, dict[str, Any]], dict[str, tuple[Any, Any]]],
                 at_column: str, what: str) -> ChainProblem | None:
    """Rows recorded by events that name their id in `details[key]`: each event's row must match it, and each row
    in the chain's time must have such an event."""
    by_id = _by_id(rows)
    recorded = set()
    for event, details in chain.of(action):
        row = by_id.get(details[key]) if isinstance(details.get(key), int) else None
        if row is None:
            return chain.missing(table, event)
        recorded.add(row["id"])
        if fields := _differing(compare(row, event, details)):
            return chain.edited(table, row, event, fields)
    for row in rows:
        if row["id"] not in recorded and chain.vouches_for(row[at_column]):
            return chain.unrecorded(table, row, what)
    return None


def _check_transitions(chain: _Chain, rows: RecordedRows) -> ChainProblem | None:
    """Stage changes pair with `stage_changed` events in order; a chain begun later pairs with the newest rows."""
    events = chain.of(STAGE_CHANGED)
    transitions = rows.of("transition", chain.assignment_id)
    if not chain.complete and len(transitions) > len(events):
        transitions = transitions[len(transitions) - len(events):]
    for index, (event, details) in enumerate(events):
        if index >= len(transitions):
            return chain.missing("transition", event)
        row = transitions[index]
        fields = _differing({"from_stage": (row["from_stage"], details.get("from")),
                             "to_stage": (row["to_stage"], details.get("to")),
                             "reason": (row["reason"], details.get("reason")), "actor": (row["actor"], event.actor),
                             "at": (row["at"], event.at)})
        if fields:  # with rows short of events, the first that does not match is where one went
            return (chain.missing("transition", event) if len(transitions) < len(events) else
                    chain.edited("transition", row, event, fields))
    if len(transitions) > len(events):
        return chain.unrecorded("transition", transitions[len(events)], "this stage change")
    return None


def _check_tasks(chain: _Chain, rows: RecordedRows) -> ChainProblem | None:
    """Completed tasks against `task_completed`; acknowledgement tasks against `plan_acknowledged`."""
    tasks = rows.of("task", chain.assignment_id)
    acknowledgements = [(e, d) for e, d in chain.of(PLAN_ACKNOWLEDGED)]

    def compare(row: Row, event: ChainEvent, details: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        return {"status": (row["status"], TaskStatus.DONE), "completed_by": (row["completed_by"], event.actor),
                "completed_at": (row["completed_at"], event.at), "note": (row["note"], details.get("note"))}

    ordinary = [t for t in tasks if not str(t["key"]).startswith(PLAN_ACK_TASK)]
    problem = _check_keyed(chain, "task", ordinary, TASK_COMPLETED, "task", compare, "completed_at",
                           "this task's completion")
    if problem is not None:
        return problem
    for row in tasks:
        if str(row["key"]).startswith(PLAN_ACK_TASK) and chain.vouches_for(row["completed_at"]) and not any(
                _acknowledged_by(row, event, details) for event, details in acknowledgements):
            return chain.unrecorded("task", row, "this acknowledgement as the row now reads")
    return None


def _acknowledged_by(row: Row, event: ChainEvent, details: dict[str, Any]) -> bool:
    """Whether an acknowledgement task reads as the event recorded it; the note, which names the acknowledger, is
    blank once they were erased."""
    by = str(details.get("by"))
    note_as_recorded = _same(row["note"], f"acknowledged by {by}") or (is_erased_form(by) and not row["note"])
    return note_as_recorded and not _differing({"status": (row["status"], TaskStatus.DONE),
                                                "completed_by": (row["completed_by"], event.actor),
                                                "completed_at": (row["completed_at"], event.at)})


def _check_signoffs(chain: _Chain, rows: RecordedRows) -> ChainProblem | None:
    signoffs = {(r["role"], r["plan_version"]): r for r in rows.of("signoff", chain.assignment_id)}
    recorded = set()
    for event, details in chain.of(SIGNED_OFF):
        key = (details.get("role"), details.get("plan_version"))
        row = signoffs.get(key)
        if row is None:
            return chain.missing("signoff", event)
        recorded.add(key)
        fields = _differing({"person": (rows.emails.get(row["person_id"]), details.get("by")),
                             "recorded_by": (row["recorded_by"], event.actor),
                             "signed_at": (row["signed_at"], event.at),
                             "on_behalf": (row["on_behalf"], _on_behalf(event, details))})
        if fields:
            return chain.edited("signoff", row, event, fields)
    for key, row in signoffs.items():
        if key not in recorded and chain.vouches_for(row["signed_at"]):
            return chain.unrecorded("signoff", row, "this sign-off")
    return None


def _on_behalf(event: ChainEvent, details: dict[str, Any]) -> bool:
    """As the event says; an event from before sign-offs said so was on the holder's behalf when its actor was not
    the holder (as the upgrade recorded it)."""
    if "on_behalf" in details:
        return bool(details["on_behalf"])
    return event.actor.lower() != str(details.get("by", "")).lower()


def _check_baselines(chain: _Chain, rows: RecordedRows) -> ChainProblem | None:
    def compare(row: Row, event: ChainEvent, details: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        return {"name": (row["name"], details.get("name")), "level": (row["level"], details.get("level")),
                "recorded_by": (row["recorded_by"], event.actor), "recorded_at": (row["recorded_at"], event.at)}

    return _check_keyed(chain, "competency_baseline", rows.of("competency_baseline", chain.assignment_id),
                        BASELINE_RECORDED, "baseline", compare, "recorded_at", "this competency baseline")


def _check_contacts(chain: _Chain, rows: RecordedRows) -> ChainProblem | None:
    def compare(row: Row, event: ChainEvent, details: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        return {"kind": (row["kind"], details.get("kind")), "with": (rows.emails.get(row["with_person_id"]),
                                                                    details.get("with")),
                "on": (row["on"], details.get("on")), "notes": (row["notes"], details.get("notes")),
                "logged_by": (row["logged_by"], event.actor), "logged_at": (row["logged_at"], event.at)}

    return _check_keyed(chain, "contact", rows.of("contact", chain.assignment_id), CONTACT_LOGGED, "contact",
                        compare, "logged_at", "this contact")


def _check_checkins(chain: _Chain, rows: RecordedRows) -> ChainProblem | None:
    def compare(row: Row, event: ChainEvent, details: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        return {"by": (rows.emails.get(row["person_id"]), details.get("by")),
                "role": (row["role"], details.get("role")),
                "at": (row["at"], event.at), "note": (row["note"], details.get("note")),
                "feedback": (row["feedback"], details.get("feedback")),
                "progress": (rows.progress.get(row["id"], {}), details.get("progress", {}))}

    return _check_keyed(chain, "checkin", rows.of("checkin", chain.assignment_id), CHECKIN_RECORDED, "checkin",
                        compare, "at", "this check-in")


def _check_pulses(chain: _Chain, rows: RecordedRows) -> ChainProblem | None:
    resolved = {d.get("pulse"): e for e, d in chain.of(PULSE_ALERT_RESOLVED)}

    def compare(row: Row, event: ChainEvent, details: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        resolution = resolved.get(row["id"])
        return {"by": (rows.emails.get(row["person_id"]), details.get("by")), "at": (row["at"], event.at),
                **{q: (row[q], details.get(q)) for q in ("expectancy", "instrumentality", "valence")},
                "note": (row["note"], details.get("note")), "alert_reason": (row["alert_reason"],
                                                                             details.get("alert_reason")),
                "resolved_at": (row["resolved_at"], resolution.at if resolution is not None else None)}

    return _check_keyed(chain, "pulse", rows.of("pulse", chain.assignment_id), PULSE_RECORDED, "pulse", compare,
                        "at", "this pulse")


OUTCOME_FIELDS = ("months", "retained", "left_on", "left_reason", "considered_for_promotion", "promoted_to", "impact")


def _check_outcomes(chain: _Chain, rows: RecordedRows) -> ChainProblem | None:
    def compare(row: Row, event: ChainEvent, details: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        return {**{f: (row[f], details.get(f)) for f in OUTCOME_FIELDS},
                "competencies": (rows.competencies.get(row["id"], {}), details.get("competencies", {})),
                "recorded_by": (row["recorded_by"], event.actor), "recorded_at": (row["recorded_at"], event.at)}

    return _check_keyed(chain, "outcome", rows.of("outcome", chain.assignment_id), OUTCOME_RECORDED, "outcome",
                        compare, "recorded_at", "this outcome")


def _check_objective_links(chain: _Chain, rows: RecordedRows) -> ChainProblem | None:
    """Each goal's objectives against the `plan_changed` event that last set them (when the goal was added, or an
    edit changed them); a goal with objectives that no event gave it is named too."""
    recorded: dict[int, tuple[ChainEvent, list[Any]]] = {}
    for event, details in chain.of(PLAN_CHANGED):
        goal = details.get("goal")
        given = (details.get("added") or {}).get("objectives", (details.get("after") or {}).get("objectives"))
        if isinstance(goal, int) and isinstance(given, list):
            recorded[goal] = (event, given)
    links = rows.objective_links.get(chain.assignment_id, {})
    for goal_id in sorted({*links, *recorded}):
        actual = sorted(links.get(goal_id, []))
        if goal_id not in recorded:
            return ChainProblem(chain.assignment_id, 0, None, "row_unrecorded",
                                f"no event records that goal {goal_id} is aligned to objective(s) "
                                f"{', '.join(map(str, actual))}", row=f"goal_objective rows of goal {goal_id}")
        event, given = recorded[goal_id]
        if actual != sorted(given):
            return ChainProblem(chain.assignment_id, event.seq, event.id, "row_edited",
                                f"the goal is aligned to objective(s) {', '.join(map(str, actual)) or 'none'}, "
                                f"not as its {event.action} event recorded ({', '.join(map(str, given)) or 'none'})",
                                row=f"goal_objective rows of goal {goal_id}")
    return None
