"""Hashing and checking audit chains on in-memory events: every edit, deletion or move is found and named."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from engine.program.audit import (
    ERASED_DOMAIN,
    PERSON_ERASED,
    ChainEvent,
    canonical_json,
    check_chain,
    check_chains,
    erase_strings,
    event_from_export,
    event_hash,
    seal,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def chain(assignment_id: int = 7, length: int = 5, first_id: int = 100) -> list[ChainEvent]:
    """A chain sealed the way Sojourn seals it, with ids growing like a table's."""
    events: list[ChainEvent] = []
    for seq in range(1, length + 1):
        prev = events[-1].hash if events else None
        event = seal(assignment_id, seq, T0 + timedelta(minutes=seq), f"actor{seq}@example.com", "stage_changed",
                     {"to": f"stage{seq}", "reason": None}, prev)
        events.append(replace(event, id=first_id + seq))
    return events


def head_of(events: list[ChainEvent]) -> tuple[int, str | None]:
    return (events[-1].seq, events[-1].hash) if events else (0, None)


def test_canonical_json_does_not_depend_on_key_order() -> None:
    """Two mappings with the same content give one text, so the same details always hash the same."""
    assert canonical_json({"b": 1, "a": "é"}) == canonical_json({"a": "é", "b": 1}) == '{"a":"é","b":1}'
    assert canonical_json({"due": date(2027, 3, 31)}) == '{"due":"2027-03-31"}'


def test_hash_covers_every_field_and_the_predecessor() -> None:
    """Changing any one input of the hash changes the hash."""
    base = (7, 3, T0, "ana@example.com", "signed_off", '{"role":"talent"}', "ab" * 32)
    variants = [(8, *base[1:]), (base[0], 4, *base[2:]), (*base[:2], T0 + timedelta(microseconds=1), *base[3:]),
                (*base[:3], "eve@example.com", *base[4:]), (*base[:4], "plan_changed", *base[5:]),
                (*base[:5], '{"role":"mobility"}', base[6]), (*base[:6], None)]
    hashes = {event_hash(*v) for v in [base, *variants]}
    assert len(hashes) == len(variants) + 1


def test_instants_hash_the_same_in_any_time_zone() -> None:
    """An instant read back in another offset is the same instant, so its hash is unchanged."""
    elsewhere = T0.astimezone(datetime.fromisoformat("2026-03-02T15:30:00+05:30").tzinfo)
    assert event_hash(1, 1, T0, "a", "x", "{}", None) == event_hash(1, 1, elsewhere, "a", "x", "{}", None)


def test_untouched_chain_is_intact() -> None:
    """A chain as sealed, with its head, has no problem."""
    events = chain()
    assert check_chain(7, events, head_of(events)) is None


def test_empty_chain_with_empty_head_is_intact() -> None:
    """An assignment created before the audit trail existed has no events and head seq 0."""
    assert check_chain(7, [], (0, None)) is None


@pytest.mark.parametrize("field", ["actor", "action", "details", "at", "prev_hash", "hash"])
def test_edited_row_is_named(field: str) -> None:
    """Editing any stored field of one row names that row as edited."""
    events = chain()
    edited = {"actor": "eve@example.com", "action": "signed_off", "details": '{"to":"completed"}',
              "at": T0 - timedelta(days=1), "prev_hash": "0" * 64, "hash": "f" * 64}[field]
    tampered = [*events[:2], replace(events[2], **{field: edited}), *events[3:]]
    problem = check_chain(7, tampered, head_of(events))
    assert problem is not None
    assert (problem.kind, problem.seq, problem.event_id) == ("content_edited", 3, events[2].id)


def test_deleted_middle_row_is_named_by_its_seq() -> None:
    """A row deleted from the middle is reported missing at its seq."""
    events = chain()
    problem = check_chain(7, [*events[:1], *events[2:]], head_of(events))
    assert problem is not None
    assert (problem.kind, problem.seq, problem.event_id) == ("row_missing", 2, None)
    assert f"event id {events[2].id}" in problem.message


def test_deleted_first_row_is_named() -> None:
    """Deleting seq 1 is found: the chain must start at 1."""
    events = chain()
    problem = check_chain(7, events[1:], head_of(events))
    assert problem is not None
    assert (problem.kind, problem.seq) == ("row_missing", 1)


def test_deleted_newest_row_is_found_through_the_head() -> None:
    """The newest row leaves no gap behind it; the head on the assignment still names it."""
    events = chain()
    problem = check_chain(7, events[:-1], head_of(events))
    assert problem is not None
    assert (problem.kind, problem.seq) == ("row_missing", 5)


def test_every_row_deleted_is_found_through_the_head() -> None:
    """An assignment whose head says it has events but has none reports the first as missing."""
    problem = check_chain(7, [], head_of(chain()))
    assert problem is not None
    assert (problem.kind, problem.seq) == ("row_missing", 1)


def test_rows_with_swapped_seqs_are_out_of_order() -> None:
    """Swapping two rows' seq values names the first of them as out of order."""
    events = chain()
    second, third = events[1], events[2]
    moved = [events[0], replace(third, seq=2), replace(second, seq=3), *events[3:]]
    problem = check_chain(7, moved, head_of(events))
    assert problem is not None
    assert (problem.kind, problem.seq, problem.event_id) == ("out_of_order", 2, third.id)


def test_rows_with_swapped_contents_are_out_of_order() -> None:
    """Moving contents between two rows, ids and seqs kept, names the first as written at another seq."""
    events = chain()
    second, third = events[1], events[2]
    moved = [events[0], replace(third, seq=2, id=second.id), replace(second, seq=3, id=third.id), *events[3:]]
    problem = check_chain(7, moved, head_of(events))
    assert problem is not None
    assert (problem.kind, problem.seq, problem.event_id) == ("out_of_order", 2, second.id)
    assert "written as seq 3" in problem.reason


def test_rewritten_row_with_recomputed_hash_breaks_the_link_after_it() -> None:
    """A row replaced with a freshly sealed one is caught at the next row, whose prev_hash no longer matches."""
    events = chain()
    forged = replace(seal(7, 2, events[1].at, "eve@example.com", "stage_changed", {"to": "completed"},
                          events[0].hash), id=events[1].id)
    problem = check_chain(7, [events[0], forged, *events[2:]], head_of(events))
    assert problem is not None
    assert (problem.kind, problem.seq, problem.event_id) == ("chain_broken", 3, events[2].id)


def test_row_beyond_the_head_is_a_head_mismatch() -> None:
    """A row added after the head (or a head moved back) is named."""
    events = chain()
    problem = check_chain(7, events, (4, events[3].hash))
    assert problem is not None
    assert (problem.kind, problem.seq, problem.event_id) == ("head_mismatch", 5, events[4].id)


def test_edited_head_hash_is_a_head_mismatch() -> None:
    """A head whose hash is not the newest row's is reported at the newest row."""
    events = chain()
    problem = check_chain(7, events, (5, "0" * 64))
    assert problem is not None
    assert (problem.kind, problem.seq) == ("head_mismatch", 5)


def test_events_of_a_missing_assignment_are_reported() -> None:
    """Events whose assignment row is gone cannot be checked against a head."""
    problem = check_chain(7, chain(), None)
    assert problem is not None
    assert problem.kind == "head_mismatch"


def test_check_chains_reports_one_problem_per_broken_assignment_in_order() -> None:
    """Across assignments, each broken chain is named once, intact ones not at all, in assignment order."""
    first, second, third = chain(1, 3, 0), chain(2, 3, 10), chain(3, 2, 20)
    heads = {1: head_of(first), 2: head_of(second), 3: head_of(third), 4: (2, "a" * 64)}
    events = [*first, second[0], replace(second[1], actor="eve"), second[2], *third]
    count, problems = check_chains(events, heads)
    assert count == 8
    assert [(p.assignment_id, p.kind, p.seq) for p in problems] == [(2, "content_edited", 2), (4, "row_missing", 1)]


def test_exported_event_reads_back_identical() -> None:
    """An event written as an export line and read back equals the stored event but for its secret, which an export
    never holds, and verifies offline from its committed form."""
    events = chain()
    lines = [json.dumps(e.export_view(), ensure_ascii=False) for e in events]
    assert all("secret" not in line for line in lines)
    read_back = [event_from_export(json.loads(line)) for line in lines]
    assert [replace(e, committed=None, secret=None) for e in read_back] == [replace(e, secret=None) for e in events]
    assert check_chain(7, read_back, head_of(events)) is None


def test_committed_event_hides_its_strings_from_the_hash() -> None:
    """A sealed event's strings enter the hash only as salted digests: the committed form holds none of them."""
    event = seal(7, 1, T0, "ana@example.com", "contact_logged", {"notes": "met Ana Lima", "on": "2026-03-01"}, None)
    committed = event.export_view()["committed"]
    assert "ana" not in json.dumps(committed).lower()
    assert committed["details"]["on"] != "2026-03-01"  # every string is committed, not only known personal ones


def test_erased_strings_keep_the_hash_and_need_a_recorded_erasure() -> None:
    """Erasing strings keeps the event's hash; the chain verifies once a person_erased event lists the seq, and
    an erased-looking string without that record, or edited after the erasure, is named."""
    events = chain(length=2)
    erased = erase_strings(events[1], {"actor": f"erased-1@{ERASED_DOMAIN}"})
    assert (erased.hash, erased.secret, erased.actor) == (events[1].hash, None, f"erased-1@{ERASED_DOMAIN}")
    record = replace(seal(7, 3, T0, "admin", PERSON_ERASED, {"events": [2], "reason": "asked"}, events[1].hash),
                     id=200)
    assert check_chain(7, [events[0], erased, record], head_of([record])) is None
    problem = check_chain(7, [events[0], erased], head_of(events))
    assert problem is not None
    assert (problem.seq, problem.kind) == (2, "content_edited")
    claimed = replace(erased, erased='{"clear_before":true,"digests":{},"salts":{}}', actor="eve@example.com")
    problem = check_chain(7, [events[0], claimed, record], head_of([record]))
    assert problem is not None
    assert "hashed in clear" in problem.reason
    edited = replace(erased, actor="eve@example.com")
    problem = check_chain(7, [events[0], edited, record], head_of([record]))
    assert problem is not None
    assert (problem.seq, problem.kind) == (2, "content_edited")
