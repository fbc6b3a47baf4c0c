"""Signed action links: what a token names, and how a changed, expired or misdirected one is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.delivery.links import LinkRefused, LinkSigner, Refusal, link_url
from engine.domain.link_rules import LinkAction, NoticeFacts, notice_action
from engine.domain.notices import NoticeKind

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
SIGNER = LinkSigner("a secret of the deployment", "https://sojourn.example.com/", timedelta(days=14))


def test_a_token_names_person_action_object_and_issue_instant() -> None:
    """Reading a fresh token gives back who may do what to which object, and when it was issued."""
    token = SIGNER.mint("ana@example.com", LinkAction.TASK_DONE, {"task": 7}, now=NOW)
    claims = SIGNER.read("task_done", token, now=NOW + timedelta(days=1))
    assert (claims.person, claims.action, claims.object, claims.issued_at) == (
        "ana@example.com", LinkAction.TASK_DONE, {"task": 7}, NOW)


def test_each_token_has_its_own_id() -> None:
    """Two links for the same person, action and object are used up separately."""
    first = SIGNER.read("task_done", SIGNER.mint("a@example.com", LinkAction.TASK_DONE, {"task": 1}, now=NOW), now=NOW)
    second = SIGNER.read("task_done", SIGNER.mint("a@example.com", LinkAction.TASK_DONE, {"task": 1}, now=NOW), now=NOW)
    assert first.token_id != second.token_id


def _refusal(action: str, token: str, now: datetime = NOW, signer: LinkSigner = SIGNER) -> Refusal:
    with pytest.raises(LinkRefused) as caught:
        signer.read(action, token, now=now)
    assert token not in caught.value.message
    return caught.value.refusal


def test_a_changed_payload_is_refused_as_tampered() -> None:
    """Editing any character of the token breaks its signature: 400."""
    token = SIGNER.mint("ana@example.com", LinkAction.TASK_DONE, {"task": 7}, now=NOW)
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    assert _refusal("task_done", flipped) == Refusal.MALFORMED


def test_a_token_of_another_deployment_is_refused() -> None:
    """A token signed with another secret does not verify: 400."""
    other = LinkSigner("another secret", "https://sojourn.example.com")
    assert _refusal("task_done", other.mint("a@example.com", LinkAction.TASK_DONE, {"task": 1}, now=NOW)) == \
        Refusal.MALFORMED


def test_a_token_does_not_verify_for_another_action() -> None:
    """The salt differs per action, so a task link cannot be replayed as a sign-off."""
    token = SIGNER.mint("ana@example.com", LinkAction.TASK_DONE, {"task": 7}, now=NOW)
    assert _refusal("plan_signoff", token) == Refusal.MALFORMED
    assert _refusal("no_such_action", token) == Refusal.MALFORMED


def test_a_token_past_its_lifetime_is_refused_as_expired() -> None:
    """Fourteen days and a second after issue the link is gone: 410."""
    token = SIGNER.mint("ana@example.com", LinkAction.TASK_DONE, {"task": 7}, now=NOW)
    SIGNER.read("task_done", token, now=NOW + timedelta(days=14))
    assert _refusal("task_done", token, now=NOW + timedelta(days=14, seconds=1)) == Refusal.EXPIRED


def test_a_link_minted_until_an_earlier_expiry_expires_then() -> None:
    """A link minted from another one (`until` its expiry) is refused once that expiry has passed."""
    parent = SIGNER.read("me", SIGNER.mint("ana@example.com", LinkAction.MY_PAGE, {}, now=NOW), now=NOW)
    later = NOW + timedelta(days=13)
    child = SIGNER.mint("ana@example.com", LinkAction.TASK_DONE, {"task": 7}, now=later, until=parent.expires_at)
    assert SIGNER.read("task_done", child, now=NOW + timedelta(days=14)).expires_at == parent.expires_at
    assert _refusal("task_done", child, now=NOW + timedelta(days=14, seconds=1)) == Refusal.EXPIRED


def test_action_links_and_the_person_page_have_their_own_paths() -> None:
    """Actions open a confirm page under /a/, the person's page under /me/, below the public URL."""
    assert link_url("https://s.example.com/", LinkAction.TASK_DONE, "T") == "https://s.example.com/a/task_done/T"
    assert link_url("https://s.example.com", LinkAction.MY_PAGE, "T") == "https://s.example.com/me/me/T"


def _about(kind: str, role: str = "coach", task_id: int | None = None, **parts: Any) -> NoticeFacts:
    return NoticeFacts(kind=kind, assignment_id=3, task_id=task_id, role=role, **parts)


def test_task_reminders_carry_a_task_done_link() -> None:
    """The owner's due-soon, due and overdue reminders link to marking their task done."""
    for kind in (NoticeKind.TASK_DUE_SOON, NoticeKind.TASK_DUE, NoticeKind.TASK_OVERDUE):
        assert notice_action(_about(kind, task_id=9)) == (LinkAction.TASK_DONE, {"task": 9})


def test_contact_notices_carry_a_contact_held_link_for_their_cadence() -> None:
    """contact_due and contact_missed link to logging the cadence their row names."""
    for kind in (NoticeKind.CONTACT_DUE, NoticeKind.CONTACT_MISSED):
        assert notice_action(_about(kind, "sponsor", cadence="sponsor_contact")) == (
            LinkAction.CONTACT_HELD, {"assignment": 3, "kind": "sponsor_contact"})


def test_other_notices_link_to_the_persons_page() -> None:
    """An escalation or a stage change asks for no single action: its link opens the person's page."""
    assert notice_action(_about(NoticeKind.ESCALATION, task_id=9)) == (LinkAction.MY_PAGE, {})
    assert notice_action(_about(NoticeKind.STAGE_CHANGED)) == (LinkAction.MY_PAGE, {})


def test_every_delivery_of_one_notice_shares_its_token_id() -> None:
    """A notice re-sent after a failure carries a new token with the same id, so using one uses up both."""
    from engine.domain.link_rules import notice_token_id

    first = SIGNER.mint("a@example.com", LinkAction.TASK_DONE, {"task": 1}, now=NOW,
                        token_id=notice_token_id("task_due/1"))
    retry = SIGNER.mint("a@example.com", LinkAction.TASK_DONE, {"task": 1}, now=NOW + timedelta(minutes=5),
                        token_id=notice_token_id("task_due/1"))
    assert first != retry
    later = NOW + timedelta(hours=1)
    assert SIGNER.read("task_done", first, now=later).token_id == SIGNER.read("task_done", retry, now=later).token_id
    assert notice_token_id("task_due/1") != notice_token_id("task_due_soon/1")


def test_checkin_notices_carry_a_checkin_link_for_who_may_check_in() -> None:
    """checkin_due and checkin_missed link the assignee and host manager to a check-in; the home side to their page."""
    for kind in (NoticeKind.CHECKIN_DUE, NoticeKind.CHECKIN_MISSED):
        for role in ("assignee", "host_manager"):
            assert notice_action(_about(kind, role, cadence="checkin")) == (LinkAction.CHECKIN, {"assignment": 3})
        assert notice_action(_about(kind, "sending_manager", cadence="checkin")) == (LinkAction.MY_PAGE, {})


def test_pulse_notices_carry_a_pulse_link_for_the_assignee() -> None:
    """pulse_due and a pulse cadence's checkin_missed link the assignee to the pulse; anyone else to their page."""
    for kind in (NoticeKind.PULSE_DUE, NoticeKind.CHECKIN_MISSED):
        assert notice_action(_about(kind, "assignee", cadence="pulse")) == (LinkAction.PULSE, {"assignment": 3})
        assert notice_action(_about(kind, "host_manager", cadence="pulse")) == (LinkAction.MY_PAGE, {})


def test_plan_change_notices_carry_an_acknowledgement_link() -> None:
    """plan_changed acknowledges the version its row names; plan_unacknowledged the change of its acknowledgement
    task."""
    assert notice_action(_about(NoticeKind.PLAN_CHANGED, "sending_manager", plan_version=4)) == (
        LinkAction.PLAN_ACK, {"assignment": 3, "plan_version": 4})
    assert notice_action(_about(NoticeKind.PLAN_UNACKNOWLEDGED, "mobility", task_id=9)) == (
        LinkAction.PLAN_ACK, {"assignment": 3, "task": 9})
