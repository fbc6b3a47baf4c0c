"""The audit trail: history events chained by hashes, so a row edited, deleted or moved behind Sojourn's back shows.

Each event's hash is SHA-256 over a canonical JSON encoding of (assignment_id, seq, at, actor, action, details,
prev_hash); `prev_hash` is the hash of the assignment's previous event (null for its first). The assignment row keeps
the chain's head (its newest seq and hash), so deleting the newest event is detected too. The chain proves that rows
were not changed by someone who did not also recompute every later hash and the head; an export kept outside the
database (`export_audit`, then `verify_audit` with its lines) anchors the chain against that too.

Personal values are committed, not hashed in clear (`docs/privacy.md`). Every string an event holds (its actor and
each string in its details) enters the hash as a salted digest; each string's salt is derived from a random secret
kept beside the event (`leaf_salt`). Erasing a person replaces their strings in clear, freezes those digests and
drops the secret (`erase_strings`), so the hash still verifies while nothing left in the database leads back to
what was erased. Events written before this scheme (no secret) hash their strings in clear, as they always did.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cached_property
from itertools import groupby
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from engine.domain.errors import AuditChainBroken, BadInput, ConcurrentChange, NotFound
from engine.domain.views import Result
from engine.program.transactions import use_case_transaction
from engine.store.audit_events import (
    audit_event_rows,
    audit_hashes,
    audit_heads,
    lock_audit_head,
    read_one_snapshot,
)
from engine.store.moves import append_audit_chains

if TYPE_CHECKING:
    from engine.program.objectives import ObjectiveCheck
    from engine.program.records import AssignmentRecord

# What the use cases append; a new use case that changes history adds its own action name.
ASSIGNMENT_CREATED = "assignment_created"
STAGE_CHANGED = "stage_changed"  # cancelling is a stage change too
PLAN_CHANGED = "plan_changed"
SIGNED_OFF = "signed_off"
PLAN_ACKNOWLEDGED = "plan_acknowledged"
TASK_COMPLETED = "task_completed"
CONTACT_LOGGED = "contact_logged"
STAKEHOLDER_CHANGED = "stakeholder_changed"  # a role passed to another person mid-assignment
END_EXTENDED = "end_extended"  # the assignment's end date moved later
WORKFLOW_MIGRATED = "workflow_migrated"  # the assignment moved to another version of its workflow
CHECKIN_RECORDED = "checkin_recorded"
PULSE_RECORDED = "pulse_recorded"
PULSE_ALERT_RESOLVED = "pulse_alert_resolved"  # the coach or talent team followed a weak pulse up
EARLY_RETURN_RECORDED = "early_return_recorded"  # the reason category of a cancellation
COST_SET = "cost_set"
OUTCOME_RECORDED = "outcome_recorded"
BASELINE_RECORDED = "competency_baseline_recorded"  # a competency rated when the plan is agreed
PERSON_ERASED = "person_erased"  # a person's strings in this chain were erased; `events` lists the seqs it changed

SECRET_BYTES = 16
ERASED_DOMAIN = "erased.invalid"  # pseudonymous emails end with it; an erased string is one of those or ""
ERASED_NAME_PREFIX = "Erased person "

Head = tuple[int, str | None]  # (newest seq, newest hash) as kept on the assignment row; (0, None) for no events


@dataclass(frozen=True)
class ChainEvent:
    """One audit event as stored; `details` is the canonical JSON text that was hashed."""

    assignment_id: int
    seq: int
    at: datetime
    actor: str
    action: str
    details: str
    prev_hash: str | None
    hash: str
    id: int | None = None
    secret: str | None = None  # hex; each string's salt derives from it (None: hashed in clear, or erased)
    erased: str | None = None  # JSON text of `Erasure.view()`, once a person's strings in it were erased
    committed: str | None = None  # canonical [actor, details] as hashed, read from an export (no secret there)

    def export_view(self) -> dict[str, Any]:
        """The event as one JSON-lines record of an export, details as an object; `committed` is the form that was
        hashed (digests in place of strings), so a reader can recompute the hash from the line alone."""
        committed = None
        if not self.in_clear() and self.hashable():
            try:
                actor, details = self.committed_form()
                committed = {"actor": actor, "details": details}
            except (KeyError, ValueError):  # edited behind Sojourn's back: exported as it is, `verify` names it
                committed = None
        return {"id": self.id, "assignment_id": self.assignment_id, "seq": self.seq, "at": _instant(self.at),
                "actor": self.actor, "action": self.action, "details": json.loads(self.details),
                "prev_hash": self.prev_hash, "hash": self.hash, "committed": committed}

    def in_clear(self) -> bool:
        """Written before personal values were committed: the hash covers actor and details as they are."""
        return self.secret is None and self.erased is None and self.committed is None

    def hashable(self) -> bool:
        """Whether the hash can be recomputed: not an event from before commitments whose strings were erased."""
        return self.in_clear() or self.committed is not None or self.secret is not None or \
            not Erasure.read(self.erased).clear_before

    def committed_form(self) -> list[Any]:
        """[actor, details] with every string replaced by its commitment (raises KeyError when a string has no salt
        nor frozen digest: it was added behind Sojourn's back)."""
        if self.committed is not None:
            committed: list[Any] = json.loads(self.committed)
            return committed
        salts = Erasure.read(self.erased) if self.secret is None else None
        return _commit_tree(self.actor, self.parsed_details, self.secret, salts)

    @cached_property
    def parsed_details(self) -> Any:
        """`details` read once: hashing and the checks of other tables' rows both need it."""
        return json.loads(self.details)


@dataclass(frozen=True)
class ChainProblem(Result):
    """The first thing wrong with one assignment's chain; `event_id` is None when the row is gone."""

    assignment_id: int
    seq: int
    event_id: int | None
    kind: str  # content_edited, row_missing, out_of_order, chain_broken, head_mismatch; row_edited, row_unrecorded
    reason: str
    row: str | None = None  # a row of another table that no longer matches its event ("transition row 12")

    @property
    def message(self) -> str:
        where = (self.row if self.row is not None and self.event_id is None else
                 f"{self.row}, seq {self.seq} (event id {self.event_id})" if self.row is not None else
                 f"seq {self.seq} (event id {self.event_id})" if self.event_id is not None else
                 f"seq {self.seq} (row gone)")
        return f"assignment {self.assignment_id}, {where}: {self.kind.replace('_', ' ')}: {self.reason}"

    def view(self) -> dict[str, Any]:
        # readers of the JSON get the sentence too, not only the fields it is made of
        return {**super().view(), "message": self.message}


# --- hashing --------------------------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, UTF-8 as is; dates and instants as ISO 8601."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def event_hash(assignment_id: int, seq: int, at: datetime, actor: str, action: str, details: str,
               prev_hash: str | None) -> str:
    """SHA-256 (hex) of the canonical encoding of an event's content and its predecessor's hash."""
    content = canonical_json([assignment_id, seq, _instant(at), actor, action, details, prev_hash])
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def committed_hash(assignment_id: int, seq: int, at: datetime, committed: list[Any], action: str,
                   prev_hash: str | None) -> str:
    """SHA-256 (hex) of an event whose strings are committed: `committed` is [actor, details] with each string
    replaced by its digest. The leading "c1" keeps the two encodings from ever meeting."""
    content = canonical_json(["c1", assignment_id, seq, _instant(at), committed, action, prev_hash])
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def leaf_salt(secret: str, path: str) -> bytes:
    """The salt of the string at `path` ("actor", "details/notes", "details/stakeholders/coach", ...).

    Derived (HMAC-SHA256) from the event's secret, so an event stores one secret however many strings it holds;
    a salt kept after an erasure tells nothing about the secret or the other salts.
    """
    return _derived_salt(bytes.fromhex(secret), path)


def _derived_salt(key: bytes, path: str) -> bytes:
    return hmac.digest(key, path.encode("utf-8"), "sha256")[:SECRET_BYTES]


def commitment(salt: bytes, value: str) -> str:
    """The digest that stands for one string in the hash: SHA-256 over its salt and its UTF-8 bytes."""
    return hashlib.sha256(salt + value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Erasure(Result):
    """How an erased event's strings are committed once its secret is gone: the salts of the strings still in clear,
    and the frozen digests of those erased. `clear_before`: the event was hashed in clear, so after an erasure
    only its place in the chain can be checked."""

    salts: Mapping[str, str]
    digests: Mapping[str, str]
    clear_before: bool = False

    @classmethod
    def read(cls, text: str | None) -> Erasure:
        data = json.loads(text or "{}")
        return cls(data.get("salts", {}), data.get("digests", {}), bool(data.get("clear_before", False)))


def string_leaves(actor: str, details: Any) -> Iterator[tuple[str, str]]:
    """(path, value) of every string an event holds: its actor, then each string in its details."""
    yield "actor", actor
    yield from _leaves(details, "details")


def path_key(key: str) -> str:
    """A mapping key as one step of a path, escaped as in a JSON pointer (RFC 6901)."""
    if "/" not in key and "~" not in key:
        return key
    return key.replace("~", "~0").replace("/", "~1")


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(value[key], f"{path}/{path_key(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}/{index}")


def _commit_tree(actor: str, details: Any, secret: str | None, erasure: Erasure | None) -> list[Any]:
    """[actor, details] with each string replaced by its commitment: under the event's secret, or after an erasure
    from the salts and frozen digests kept."""
    if secret is not None:
        secret_key = bytes.fromhex(secret)

        def commit(path: str, value: str) -> str:  # `commitment(leaf_salt(secret, path), value)`, inlined: hot
            salt = hmac.digest(secret_key, path.encode("utf-8"), "sha256")[:SECRET_BYTES]
            return hashlib.sha256(salt + value.encode("utf-8")).hexdigest()
    else:
        assert erasure is not None

        def commit(path: str, value: str) -> str:
            if path in erasure.digests:
                if not is_erased_form(value):
                    raise KeyError(path)
                return erasure.digests[path]
            return commitment(bytes.fromhex(erasure.salts[path]), value)

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return commit(path, value)
        if isinstance(value, dict):
            return {k: walk(item, f"{path}/{path_key(k)}") for k, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{path}/{index}") for index, item in enumerate(value)]
        return value

    return [commit("actor", actor), walk(details, "details")]


def is_erased_form(value: str) -> bool:
    """What an erased string may read: blank, or a pseudonym."""
    return value == "" or value.endswith(f"@{ERASED_DOMAIN}") or value.startswith(ERASED_NAME_PREFIX)


def erase_strings(event: ChainEvent, replacements: Mapping[str, str]) -> ChainEvent:
    """The event with the strings at `replacements`' paths replaced (by "" or a pseudonym), their digests frozen and
    its secret dropped; its hash is unchanged. An event hashed in clear keeps its hash, which can no longer be
    recomputed (`Erasure.clear_before`)."""
    details = json.loads(event.details)
    actor = replacements.get("actor", event.actor)
    for path, value in replacements.items():
        if path != "actor":
            details = _replaced(details, path.split("/")[1:], value)
    if event.in_clear() or (event.erased is not None and Erasure.read(event.erased).clear_before):
        erasure = Erasure({}, {}, clear_before=True)
    else:
        before = Erasure.read(event.erased) if event.secret is None else None
        salts = {path: (leaf_salt(event.secret, path).hex() if event.secret is not None else
                        before.salts.get(path, "") if before is not None else "")
                 for path, _ in string_leaves(event.actor, json.loads(event.details))}
        digests = dict(before.digests) if before is not None else {}
        for path, value in string_leaves(event.actor, json.loads(event.details)):
            if path in replacements and path not in digests:
                digests[path] = commitment(bytes.fromhex(salts[path]), value)
        erasure = Erasure({p: v for p, v in salts.items() if p not in digests}, digests)
    return replace(event, actor=actor, details=canonical_json(details), secret=None,
                   erased=canonical_json(erasure.view()))


def _replaced(value: Any, keys: list[str], new: str) -> Any:
    if not keys:
        return new
    key, rest = keys[0].replace("~1", "/").replace("~0", "~"), keys[1:]
    if isinstance(value, list):
        copy = list(value)
        copy[int(key)] = _replaced(copy[int(key)], rest, new)
        return copy
    return {**value, key: _replaced(value[key], rest, new)}


def seal(assignment_id: int, seq: int, at: datetime, actor: str, action: str, details: Mapping[str, Any],
         prev_hash: str | None) -> ChainEvent:
    """A new event with its hash, following the event whose hash is `prev_hash`; its strings are committed under a
    fresh random secret."""
    text = canonical_json(details)
    secret = secrets.token_hex(SECRET_BYTES)
    committed = _commit_tree(actor, json.loads(text), secret, None)  # the stored text's strings: dates as ISO
    return ChainEvent(assignment_id, seq, at, actor, action, text, prev_hash,
                      committed_hash(assignment_id, seq, at, committed, action, prev_hash), secret=secret)


def _hash_as(event: ChainEvent, seq: int) -> str:
    """The hash the event would have at `seq`; its stored hash when it cannot be recomputed (see `hashable`)."""
    if event.in_clear():
        return event_hash(event.assignment_id, seq, event.at, event.actor, event.action, event.details,
                          event.prev_hash)
    if not event.hashable():
        return event.hash
    try:
        committed = event.committed_form()
    except (KeyError, ValueError):  # a string without a salt, or an erased one that reads like someone
        return ""
    return committed_hash(event.assignment_id, seq, event.at, committed, event.action, event.prev_hash)


# --- checking -------------------------------------------------------------------------------------------------


def check_chain(assignment_id: int, events: Sequence[ChainEvent], head: Head | None) -> ChainProblem | None:
    """The first problem of one assignment's chain (`events` ordered by seq), or None when it is intact.

    `head` is what the assignment row says (None: there is no such assignment).
    """
    if head is None:
        return ChainProblem(assignment_id, events[0].seq, events[0].id, "head_mismatch",
                            "its assignment does not exist")
    previous: ChainEvent | None = None
    recorded, in_clear = _recorded_erasures(events)
    for index, event in enumerate(events):
        following = events[index + 1] if index + 1 < len(events) else None
        problem = _check_event(event, previous, following, events)
        if problem is None and event.erased is not None:
            problem = _check_erasure(event, recorded, in_clear)
        if problem is not None:
            return problem
        previous = event
    return _check_head(assignment_id, events, head)


def _recorded_erasures(events: Sequence[ChainEvent]) -> tuple[set[int], set[int]]:
    """The seqs that the chain's person_erased events say they erased, and those of them that were hashed in clear
    (whose content can no longer be recomputed)."""
    seqs: set[int] = set()
    in_clear: set[int] = set()
    for event in events:
        if event.action == PERSON_ERASED:
            details = event.parsed_details
            seqs.update(s for s in details.get("events", []) if isinstance(s, int) and s < event.seq)
            in_clear.update(s for s in details.get("hashed_in_clear", []) if isinstance(s, int) and s < event.seq)
    return seqs, in_clear


def _check_erasure(event: ChainEvent, recorded: set[int], in_clear: set[int]) -> ChainProblem | None:
    """An erased event must be listed by a later person_erased event, and may skip the check of its content only
    if that event says it was hashed in clear."""
    if event.seq not in recorded:
        return _problem(event, "content_edited", "its strings read as erased, but no person_erased event records "
                                                 "that erasure")
    if Erasure.read(event.erased).clear_before and event.seq not in in_clear:
        return _problem(event, "content_edited", "it claims to have been hashed in clear before its erasure, which "
                                                 "its person_erased event does not record")
    return None


def _check_event(event: ChainEvent, previous: ChainEvent | None, following: ChainEvent | None,
                 chain: Sequence[ChainEvent]) -> ChainProblem | None:
    expected_seq = previous.seq + 1 if previous else 1
    if event.seq > expected_seq:
        after = f"seq {previous.seq}" if previous else "the start"
        return ChainProblem(event.assignment_id, expected_seq, None, "row_missing",
                            f"the chain jumps from {after} to seq {event.seq} (event id {event.id})")
    if event.seq < expected_seq:
        return _problem(event, "out_of_order", f"seq {event.seq} is before the first seq, 1")
    if following is not None and _written_after(event, following):
        return _problem(event, "out_of_order", f"it was written after event id {following.id}, which now follows "
                                               f"it as seq {following.seq}")
    if _hash_as(event, event.seq) != event.hash:
        return _edited(event, chain)
    if event.prev_hash != (previous.hash if previous else None):
        before = f"seq {previous.seq}" if previous else "the start of the chain"
        return _problem(event, "chain_broken", f"it does not follow {before}: the rows before it were replaced and "
                                               "their hashes recomputed")
    return None


def _written_after(event: ChainEvent, other: ChainEvent) -> bool:
    """Ids grow in the order rows are inserted, and so do seqs within a chain."""
    return event.id is not None and other.id is not None and event.id > other.id


def _edited(event: ChainEvent, chain: Sequence[ChainEvent]) -> ChainProblem:
    """A row whose hash does not match: moved, if it was sealed at another position of the chain; else edited."""
    sealed_as = next((other.seq for other in chain if other.seq != event.seq and _hash_as(event, other.seq)
                      == event.hash), None)
    if sealed_as is not None:
        return _problem(event, "out_of_order", f"it was written as seq {sealed_as}")
    return _problem(event, "content_edited", "the row no longer matches its hash")


def _check_head(assignment_id: int, events: Sequence[ChainEvent], head: Head) -> ChainProblem | None:
    head_seq, head_hash = head
    last = events[-1] if events else None
    last_seq = last.seq if last else 0
    if head_seq > last_seq:
        return ChainProblem(assignment_id, last_seq + 1, None, "row_missing",
                            f"the newest event(s), seq {last_seq + 1} to {head_seq}, are gone; the chain ends at "
                            f"seq {last_seq}")
    if head_seq < last_seq:
        beyond = next(e for e in events if e.seq > head_seq)
        return _problem(beyond, "head_mismatch", f"it lies beyond the assignment's head (seq {head_seq}): added "
                                                 "behind Sojourn's back, or the head was edited")
    if last is not None and head_hash != last.hash:
        return _problem(last, "head_mismatch", "the assignment's head hash is not this newest event's hash")
    return None


def _problem(event: ChainEvent, kind: str, reason: str) -> ChainProblem:
    return ChainProblem(event.assignment_id, event.seq, event.id, kind, reason)


RowCheck = Callable[[int, Sequence[ChainEvent]], "ChainProblem | None"]


def check_chains(events: Iterable[ChainEvent], heads: Mapping[int, Head],
                 check_rows: RowCheck | None = None) -> tuple[int, list[ChainProblem]]:
    """Check every chain: `events` ordered by assignment then seq. Returns the events read and one problem per
    broken chain, in assignment order. `check_rows` then holds the other tables' rows of each intact chain against
    its events (`engine.program.audit_rows`)."""
    problems: list[ChainProblem] = []
    count = 0
    seen: set[int] = set()
    for assignment_id, group in groupby(events, key=lambda e: e.assignment_id):
        chain = list(group)
        count += len(chain)
        seen.add(assignment_id)
        problem = check_chain(assignment_id, chain, heads.get(assignment_id))
        if problem is None and check_rows is not None:
            problem = check_rows(assignment_id, chain)
        if problem is not None:
            problems.append(problem)
    for assignment_id, head in heads.items():
        if assignment_id not in seen and (problem := check_chain(assignment_id, [], head)) is not None:
            problems.append(problem)
    return count, sorted(problems, key=lambda p: p.assignment_id)


# --- appending (inside a use case's transaction) ----------------------------------------------------------------


def append_event(session: Session, assignment_id: int, action: str, details: Mapping[str, Any], *, actor: str,
                 at: datetime) -> ChainEvent:
    """Chain one event to an assignment's history in the caller's transaction; a rollback takes it back too."""
    head = lock_audit_head(session, assignment_id)
    assert head is not None, "events are appended to assignments the use case has loaded"
    seq, prev_hash = head
    event = seal(assignment_id, seq + 1, at, actor, action, details, prev_hash)
    append_sealed(session.connection(), [event])
    return event


def append_sealed(connection: Connection, events: Sequence[ChainEvent]) -> None:
    """Write sealed events and advance their chains' heads in the caller's transaction; refused, with nothing
    written, when a head moved from the one the events were sealed on."""
    if not append_audit_chains(connection, [stored_row(event) for event in events]):
        moved = ", ".join(str(a) for a in sorted({event.assignment_id for event in events}))
        raise ConcurrentChange(f"someone else changed assignment {moved}'s history at the same time; "
                               "nothing was written", details=["retry"])


def chained(assignment_id: int, head: Head, entries: Sequence[tuple[str, Mapping[str, Any]]], *, actor: str,
            at: datetime) -> list[ChainEvent]:
    """Events (action, details) sealed one after another on `head`, for a use case that writes them in bulk
    (`append_sealed`) on a head it holds."""
    seq, prev_hash = head
    events = []
    for action, details in entries:
        seq += 1
        events.append(seal(assignment_id, seq, at, actor, action, details, prev_hash))
        prev_hash = events[-1].hash
    return events


def stored_row(event: ChainEvent) -> dict[str, Any]:
    """An event as the columns of its new row (the id comes on insert)."""
    return {"assignment_id": event.assignment_id, "seq": event.seq, "at": event.at, "actor": event.actor,
            "action": event.action, "details": event.details, "prev_hash": event.prev_hash, "hash": event.hash,
            "secret": event.secret, "erased": event.erased}


def creation(record: AssignmentRecord) -> dict[str, Any]:
    """What an assignment was created with: its workflow version, assignee, route, dates and stakeholders."""
    a = record.assignment
    return {"workflow": record.workflow.name, "workflow_version": record.workflow.version,
            "assignee": record.assignee.email, "home": a.home, "host": a.host, "start": a.start, "end": a.end,
            "stakeholders": {role: person.email for role, person in sorted(record.stakeholders.items())}}


# --- use cases --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedEvent:
    """What an `audit export` line anchors: the hash an event had when it was exported."""

    assignment_id: int
    seq: int
    hash: str


@dataclass(frozen=True)
class ExportComparison(Result):
    """The events of an earlier export that were compared, and the first one of each chain no longer as exported."""

    events: int
    differences: tuple[ChainProblem, ...]


@dataclass(frozen=True)
class AuditReport(Result):
    """What `verify_audit` found; `objectives` only when every chain was checked, `against` only with an export."""

    intact: bool
    assignments: int
    events: int
    problems: tuple[ChainProblem, ...]
    objectives: ObjectiveCheck | None = None
    against: ExportComparison | None = None

    def view(self) -> dict[str, Any]:
        # the JSON holds the parts that were checked, and no null for those that were not
        view = super().view()
        for optional in ("objectives", "against"):
            if view[optional] is None:
                del view[optional]
        return view

    def require_intact(self) -> None:
        """Raise AuditChainBroken naming the first bad row, and the first event not as exported, when any."""
        lines = [f"broken at {p.message}" for p in self.problems]
        lines += [f"broken at {p.message}" for p in (self.objectives.problems if self.objectives else ())]
        if self.against is not None:
            lines += [f"differs from the export at {d.message}" for d in self.against.differences]
        if not lines:
            return
        hint = [] if self.against is not None else [
            "compare with an export kept outside the database (sojourn audit export)"]
        raise AuditChainBroken(f"audit trail {lines[0]}", details=[f"also {line}" for line in lines[1:]] + hint)


def verify_audit(db: Engine, *, assignment_id: int | None = None, export: Iterable[str] | None = None,
                 export_source: str = "the export") -> AuditReport:
    """Check every chain (or one assignment's) against its rows and head, and what the other tables show against
    the events; with `export` (the lines of an earlier `audit export`, read from `export_source`), also that every
    exported event still has the hash it had then. Says what is wrong rather than raising (`require_intact` raises);
    an export that is not one is BadInput, naming each bad line."""
    from engine.program import audit_rows, objectives  # they build on this module's events and problems

    against = None if export is None else _read_export(export, source=export_source)
    with use_case_transaction(db) as session:
        read_one_snapshot(session)
        heads = _heads(session, assignment_id)
        rows = audit_rows.load_recorded_rows(session, assignment_id)
        count, problems = check_chains(_stored_events(session, assignment_id), heads,
                                       lambda a, chain: audit_rows.check_rows(a, chain, rows))
        intact = not problems
        objectives_checked = None
        if assignment_id is None:  # objectives belong to the program, not to one assignment
            objectives_checked = objectives.verify_objectives(session)
            intact = intact and not objectives_checked.problems
        comparison = None
        if against is not None:
            exported = [e for e in against if assignment_id is None or e.assignment_id == assignment_id]
            differences = _differences(exported, audit_hashes(session, assignment_id))
            comparison = ExportComparison(len(exported), tuple(differences))
            intact = intact and not differences
    return AuditReport(intact, len(heads), count, tuple(problems), objectives_checked, comparison)


def _differences(exported: Sequence[ExportedEvent],
                 stored: Mapping[tuple[int, int], tuple[int, str]]) -> list[ChainProblem]:
    """The first exported event of each assignment whose hash the database no longer has."""
    found: dict[int, ChainProblem] = {}
    for line in exported:
        a, seq = line.assignment_id, line.seq
        if a in found:
            continue
        if (a, seq) not in stored:
            found[a] = ChainProblem(a, seq, None, "not_as_exported", "the export holds this event; the database "
                                                                      "no longer does")
        elif stored[(a, seq)][1] != line.hash:
            found[a] = ChainProblem(a, seq, stored[(a, seq)][0], "not_as_exported",
                                    "its hash is not the exported one: the chain was rewritten after the export")
    return sorted(found.values(), key=lambda p: p.assignment_id)


def _read_export(lines: Iterable[str], *, source: str) -> list[ExportedEvent]:
    """The events of an `audit export` file (assignment_id, seq, hash of each line); every malformed line is
    reported at once, by line number."""
    events: list[ExportedEvent] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            assignment_id, seq, hash_ = record["assignment_id"], record["seq"], record["hash"]
            if not (isinstance(assignment_id, int) and isinstance(seq, int) and isinstance(hash_, str)):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            problems.append(f"{source} line {number}: not an event of `sojourn audit export` (a JSON object with "
                            "assignment_id, seq and hash)")
            continue
        events.append(ExportedEvent(assignment_id, seq, hash_))
    if problems:
        raise BadInput(f"--against: {source} is not an audit export", details=problems)
    return events


@dataclass(frozen=True)
class AuditExported(Result):
    """How much `export_audit` wrote."""

    assignments: int
    events: int


def export_audit(db: Engine, out: TextIO, *, assignment_id: int | None = None) -> AuditExported:
    """Write every event (or one assignment's) as JSON lines, oldest first per assignment, hashes included."""
    written = 0
    with use_case_transaction(db) as session:
        read_one_snapshot(session)
        heads = _heads(session, assignment_id)
        for event in _stored_events(session, assignment_id):
            out.write(json.dumps(event.export_view(), ensure_ascii=False) + "\n")
            written += 1
    return AuditExported(len(heads), written)


def event_from_export(record: Mapping[str, Any]) -> ChainEvent:
    """An event read back from one exported line, ready for `check_chain`."""
    committed = record.get("committed")
    return ChainEvent(int(record["assignment_id"]), int(record["seq"]), datetime.fromisoformat(record["at"]),
                      record["actor"], record["action"], canonical_json(record["details"]), record["prev_hash"],
                      record["hash"], record["id"],
                      committed=None if committed is None else canonical_json([committed["actor"],
                                                                               committed["details"]]))


def _heads(session: Session, assignment_id: int | None) -> dict[int, Head]:
    heads = audit_heads(session, assignment_id)
    if assignment_id is not None and not heads:
        raise NotFound(f"no assignment {assignment_id}", details=["`sojourn assignment list` shows them"])
    return heads


def _stored_events(session: Session, assignment_id: int | None) -> Iterable[ChainEvent]:
    for row in audit_event_rows(session, assignment_id):
        yield ChainEvent(**row._mapping)

