"""Signed action links: who may do what to which object, until when; minted from a secret and a clock, no Flask.

A link is `PUBLIC_URL/a/ACTION/TOKEN`. The token is an itsdangerous `URLSafeTimedSerializer` document, salted per
action (a token minted for one action never verifies for another), naming the person (`p`, an email), the action
(`a`), the object (`o`), a random token id (`j`) that one-time use is recorded against and, for a link minted
from another one, the instant it must expire by (`x`, seconds since the epoch), so that links opened from links
never outlive the first one. The timestamp itsdangerous signs in is the issue instant, which expiry and
`links revoke` are measured from.

A calendar feed is `PUBLIC_URL/calendar/TOKEN.ics`, read for months by calendar clients, so it has no lifetime and
no use count. Its token (an itsdangerous `URLSafeSerializer` document with a salt of its own) names the person by
id, never by email (calendar services store the URL), and the person's revocation mark when it was issued: the
instant of their last `links revoke` (or erasure), 0 if none. A feed answers only while that mark is still the
person's, so revoking ends it for good, and the same person and mark always give the same URL.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from engine.domain.errors import BadInput
from engine.domain.link_rules import LinkAction

if TYPE_CHECKING:
    from engine.delivery.config import ServeSettings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_LINK_DAYS = 14
SALT_PREFIX = "sojourn.link."
FEED_SALT = "sojourn.feed.calendar"
FEED_PATH = "calendar"
FEED_SUFFIX = ".ics"  # calendar clients, and webcal:// handlers, recognise a feed by it


class Refusal(IntEnum):
    """Why a link is refused, as the HTTP status its page is served with."""

    MALFORMED = 400  # not a token, or its signature does not match (tampered)
    OTHER_PERSON = 403  # the object is not this person's to act on, or the form carries another link
    UNKNOWN_OBJECT = 404
    ALREADY_DONE = 409  # used up, done another way, or stale (the plan changed since)
    EXPIRED = 410  # past its lifetime, or revoked


class LinkRefused(Exception):
    """A link that must not be acted on; `message` is for the person, never contains the token."""

    def __init__(self, refusal: Refusal, message: str, *, claims: LinkClaims | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message
        self.claims = claims
        # what the log says: the status's name, unless one status covers several causes (410: expired or revoked)
        self.reason = reason or refusal.name.lower()


class FeedRefused(LinkRefused):
    """A calendar feed that answers no calendar; `person_id` says whose it was, once its signature held (the log
    names it, never the token)."""

    def __init__(self, refusal: Refusal, message: str, *, reason: str, person_id: int | None = None) -> None:
        super().__init__(refusal, message, reason=reason)
        self.person_id = person_id


@dataclass(frozen=True)
class LinkClaims:
    """What a verified token says, and when it was issued."""

    person: str
    action: LinkAction
    object: dict[str, Any]
    token_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class FeedClaims:
    """What a verified calendar feed token says: whose calendar, and their revocation mark when it was issued."""

    person_id: int
    revocation_mark: int


def revocation_mark(revoked_before: datetime | None) -> int:
    """A person's revocation instant as whole microseconds since the epoch (0: never revoked), as feed tokens
    carry it; each revocation moves the instant forward, so each gives a new mark."""
    if revoked_before is None:
        return 0
    instant = revoked_before if revoked_before.tzinfo else revoked_before.replace(tzinfo=UTC)
    return (instant - EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class LinkSigner:
    """Mints and reads the tokens of one deployment: its secret, its public base URL and the links' lifetime."""

    secret: str
    public_url: str
    lifetime: timedelta = timedelta(days=DEFAULT_LINK_DAYS)

    def mint(self, person: str, action: LinkAction, obj: dict[str, Any], *, now: datetime,
             token_id: str | None = None, until: datetime | None = None) -> str:
        """A token for `person` to do `action` on `obj`, issued at `now`; its id is random unless given. With
        `until` (the expiry of the link it is minted from) it expires then at the latest."""
        payload: dict[str, Any] = {"p": person, "a": str(action), "o": obj, "j": token_id or secrets.token_urlsafe(12)}
        if until is not None:
            payload["x"] = int(until.timestamp())
        return _serializer(self.secret, action, now).dumps(payload)

    def url(self, person: str, action: LinkAction, obj: dict[str, Any], *, now: datetime,
            token_id: str | None = None, until: datetime | None = None) -> str:
        return link_url(self.public_url, action, self.mint(person, action, obj, now=now, token_id=token_id,
                                                           until=until))

    def feed_token(self, person_id: int, revoked_before: datetime | None) -> str:
        """The calendar feed token of a person whose links were last revoked at `revoked_before` (None: never)."""
        return URLSafeSerializer(self.secret, salt=FEED_SALT).dumps({"p": person_id,
                                                                     "r": revocation_mark(revoked_before)})

    def feed_url(self, person_id: int, revoked_before: datetime | None) -> str:
        return f"{self.public_url.rstrip('/')}/{FEED_PATH}/{self.feed_token(person_id, revoked_before)}{FEED_SUFFIX}"

    def read_feed(self, token: str) -> FeedClaims:
        """The claims of a feed token; a changed or foreign one is refused as an unknown address (404), which tells
        a guesser nothing about which feeds exist."""
        try:
            payload = URLSafeSerializer(self.secret, salt=FEED_SALT).loads(token)
        except BadSignature:
            raise FeedRefused(Refusal.UNKNOWN_OBJECT, "There is no calendar at this address. Ask the mobility team "
                                                      "for your calendar's address.", reason="malformed") from None
        if not (isinstance(payload, dict) and _is_count(payload.get("p")) and _is_count(payload.get("r"))):
            raise FeedRefused(Refusal.UNKNOWN_OBJECT, "There is no calendar at this address.", reason="malformed")
        return FeedClaims(person_id=payload["p"], revocation_mark=payload["r"])

    def read(self, action_name: str, token: str, *, now: datetime) -> LinkClaims:
        """The claims of a token for the action named in its URL; refused when malformed, tampered or expired."""
        try:
            action = LinkAction(action_name)
        except ValueError:
            raise LinkRefused(Refusal.MALFORMED, "This link is not one Sojourn sent: its action is unknown.") from None
        serializer = _serializer(self.secret, action, now)
        try:
            payload, signed_at = serializer.loads(token, max_age=int(self.lifetime.total_seconds()),
                                                  return_timestamp=True)
        except SignatureExpired:
            raise LinkRefused(Refusal.EXPIRED, "This link has expired. Use a newer message, or ask the mobility "
                                               "team to send it again.") from None
        except BadSignature:
            raise LinkRefused(Refusal.MALFORMED, "This link is damaged or was changed, so it cannot be used. "
                                                 "Open it again from the message, in full.") from None
        claims = _claims(payload, action, signed_at, self.lifetime)
        if now > claims.expires_at:  # minted from a link that has expired since
            raise LinkRefused(Refusal.EXPIRED, "This link has expired. Use a newer message, or ask the mobility "
                                               "team to send it again.")
        return claims


def link_url(public_url: str, action: LinkAction, token: str) -> str:
    """Where a token is opened: the person's page for MY_PAGE, the action's confirm page otherwise."""
    page = "me" if action == LinkAction.MY_PAGE else "a"
    return f"{public_url.rstrip('/')}/{page}/{action}/{token}"


def webcal_url(feed_url: str) -> str:
    """A feed's address under webcal://, which opens a calendar app to subscribe (the app fetches it over http(s))."""
    return "webcal://" + feed_url.split("://", 1)[-1]


def signer_from(settings: ServeSettings) -> LinkSigner | None:
    """The deployment's link signer, or None when `[serve]` lacks public_url or the secret (notices then carry none)."""
    if not (settings.public_url and settings.secret):
        return None
    return LinkSigner(settings.secret, settings.public_url, timedelta(days=settings.link_days))


def required_signer_from(settings: ServeSettings) -> LinkSigner | None:
    """The signer for a daemon: None without `[serve]` public_url; BadInput when public_url is set but the secret is
    missing or empty, since the deployment expects links and notices would silently go out without them."""
    if settings.public_url and not settings.secret:
        where = (f"the environment variable {settings.secret_env} named by secret_env is not set or empty"
                 if settings.secret_env else "secret_env is not set")
        raise BadInput(f"config [serve]: public_url is set but {where}, so notices would carry no links",
                       details=["set the secret (at least 32 bytes) in the daemon's environment, or remove "
                                "public_url to send notices without links"])
    return signer_from(settings)


class _ClockedSigner(TimestampSigner):
    """itsdangerous reads the wall clock; Sojourn injects it, so expiry is testable and follows the server's clock."""

    def __init__(self, *args: Any, now_seconds: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now_seconds = now_seconds

    def get_timestamp(self) -> int:
        return self._now_seconds


def _serializer(secret: str, action: LinkAction, now: datetime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"{SALT_PREFIX}{action}", signer=_ClockedSigner,
                                  signer_kwargs={"now_seconds": int(now.timestamp())})


def _claims(payload: Any, action: LinkAction, signed_at: datetime, lifetime: timedelta) -> LinkClaims:
    if not (isinstance(payload, dict) and payload.get("a") == action and isinstance(payload.get("p"), str)
            and isinstance(payload.get("o"), dict) and isinstance(payload.get("j"), str)
            and _is_instant(payload.get("x", 0))):
        raise LinkRefused(Refusal.MALFORMED, "This link is not one Sojourn sent.")
    issued = signed_at if signed_at.tzinfo else signed_at.replace(tzinfo=UTC)
    expires = issued + lifetime
    if "x" in payload:
        expires = min(expires, datetime.fromtimestamp(payload["x"], UTC))
    return LinkClaims(person=payload["p"], action=action, object=payload["o"], token_id=payload["j"],
                      issued_at=issued, expires_at=expires)


def _is_instant(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**40


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
