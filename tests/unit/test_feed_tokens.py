"""Calendar feed tokens: what they name, that revoking changes them, and how a changed or foreign one is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.delivery.links import (
    FeedRefused,
    LinkAction,
    LinkRefused,
    LinkSigner,
    Refusal,
    revocation_mark,
    webcal_url,
)

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
SIGNER = LinkSigner("a secret of the deployment, 32 bytes or more", "https://sojourn.example.com/")


def _refusal(token: str, signer: LinkSigner = SIGNER) -> FeedRefused:
    with pytest.raises(FeedRefused) as caught:
        signer.read_feed(token)
    assert token not in caught.value.message
    return caught.value


def test_a_feed_token_names_the_person_and_their_revocation_mark() -> None:
    """Reading a feed token gives back the person's id and the mark of their last revocation (0: none)."""
    claims = SIGNER.read_feed(SIGNER.feed_token(7, NOW))
    assert (claims.person_id, claims.revocation_mark) == (7, revocation_mark(NOW))
    assert SIGNER.read_feed(SIGNER.feed_token(7, None)).revocation_mark == 0


def test_the_same_person_and_mark_give_the_same_address_and_a_revocation_a_new_one() -> None:
    """A feed's address is stable until revoked: it depends only on the person and the revocation instant, to the
    microsecond."""
    assert SIGNER.feed_url(7, NOW) == SIGNER.feed_url(7, NOW)
    assert SIGNER.feed_url(7, NOW) != SIGNER.feed_url(7, NOW + timedelta(microseconds=1))
    assert SIGNER.feed_url(7, None) != SIGNER.feed_url(7, NOW)
    assert SIGNER.feed_url(7, NOW) != SIGNER.feed_url(8, NOW)


def test_a_feed_url_is_public_url_calendar_token_ics() -> None:
    """`PUBLIC_URL/calendar/TOKEN.ics` (one slash after the base, however it ends); webcal:// swaps the scheme."""
    url = SIGNER.feed_url(7, None)
    assert url == f"https://sojourn.example.com/calendar/{SIGNER.feed_token(7, None)}.ics"
    assert webcal_url(url) == f"webcal://sojourn.example.com/calendar/{SIGNER.feed_token(7, None)}.ics"
    assert webcal_url("http://127.0.0.1:8080/calendar/x.ics") == "webcal://127.0.0.1:8080/calendar/x.ics"


def test_a_changed_feed_token_is_refused_as_unknown() -> None:
    """Editing the payload or the signature breaks it: 404, said as "no calendar at this address"."""
    token = SIGNER.feed_token(7, None)
    for at in (2, len(token) - 3):
        changed = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]
        refused = _refusal(changed)
        assert refused.refusal == Refusal.UNKNOWN_OBJECT
        assert refused.person_id is None


def test_a_feed_token_of_another_deployment_or_an_action_token_is_refused() -> None:
    """Another secret does not verify, and an action link's token (salted per action) is no feed token: 404."""
    other = LinkSigner("another deployment's secret, 32 bytes or more", "https://sojourn.example.com")
    assert _refusal(other.feed_token(7, None)).refusal == Refusal.UNKNOWN_OBJECT
    action = SIGNER.mint("ana@example.com", LinkAction.MY_PAGE, {}, now=NOW)
    assert _refusal(action).refusal == Refusal.UNKNOWN_OBJECT


def test_a_feed_token_opens_no_action_and_no_page() -> None:
    """The feed's salt is its own, so its long-lived token never stands in for an action link or the page link."""
    token = SIGNER.feed_token(7, None)
    for action in LinkAction:
        with pytest.raises(LinkRefused) as caught:
            SIGNER.read(str(action), token, now=NOW)
        assert caught.value.refusal == Refusal.MALFORMED


def test_a_feed_token_has_no_lifetime() -> None:
    """Unlike an action link, a feed token carries no issue instant: it reads the same however old it is."""
    assert SIGNER.feed_token(7, None) == LinkSigner(SIGNER.secret, SIGNER.public_url,
                                                    timedelta(days=1)).feed_token(7, None)


def test_revocation_marks_count_microseconds_since_the_epoch() -> None:
    """A revocation instant becomes whole microseconds, read as UTC when the database hands it back naive."""
    assert revocation_mark(None) == 0
    assert revocation_mark(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005
    assert revocation_mark(NOW.replace(tzinfo=None)) == revocation_mark(NOW)
