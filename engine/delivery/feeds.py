"""Calendar feeds: a person's `sojourn calendar` at a long-lived signed URL that calendar clients subscribe to.

A feed differs from an action link: it only reads, so it has no lifetime and is never used up (a subscription is
polled for months), and its URL is the same every time it is asked for until the person's links are revoked
(`links revoke`, or `person erase`). Revoking ends it for good: the token carries the person's revocation mark,
which every revocation moves forward. Nothing is stored for a feed; the secret and the revocation mark make it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from engine.delivery.config import ServeSettings
from engine.delivery.links import FeedRefused, LinkSigner, Refusal, revocation_mark, signer_from
from engine.domain import inputs
from engine.domain.errors import BadInput, NotFound
from engine.domain.views import Result
from engine.planning.agenda import PersonCalendar, calendar_of
from engine.program.transactions import use_case_transaction
from engine.store import link_queries, lookups
from engine.store.models import Person, pk


@dataclass(frozen=True)
class FeedAddress(Result):
    """Whose calendar feed is at `url`."""

    person: str
    url: str


def feed_url(db: Engine, settings: ServeSettings, email: str) -> FeedAddress:
    """The address of the person's calendar feed (`sojourn calendar --url`); BadInput without `[serve]`, which
    both signs the feed and serves it."""
    signer = signer_from(settings)
    if signer is None:
        raise BadInput("config [serve]: public_url and secret_env (naming a set environment variable) are needed "
                       "for a calendar feed: `sojourn serve` publishes it at public_url",
                       details=["set them as for `sojourn serve`, e.g. public_url = \"https://sojourn.example.com\", "
                                "secret_env = \"SOJOURN_LINK_SECRET\", and export the secret (at least 32 bytes)"])
    address = inputs.email(email, "--person")
    with use_case_transaction(db, read_only=True) as session:
        person = lookups.person_by_email(session, address)
        if person is None:
            raise NotFound(f"--person: no person with email {address}", details=["`sojourn person list` shows them"])
        return FeedAddress(person.email, calendar_url(session, signer, person))


def calendar_url(session: Session, signer: LinkSigner, person: Person) -> str:
    """The person's current feed address, as their page links to it."""
    return signer.feed_url(pk(person), link_queries.revoked_before(session, pk(person)))


def feed_calendar(db: Engine, signer: LinkSigner, token: str, *, now: datetime) -> PersonCalendar:
    """The calendar a feed token opens, as `sojourn calendar` writes it at `now`; refused 404 when the token is
    not one this deployment signed (or its person is gone), 410 once the person's links were revoked."""
    claims = signer.read_feed(token)
    with use_case_transaction(db, read_only=True) as session:
        person = session.get(Person, claims.person_id)
        if person is None:
            raise FeedRefused(Refusal.UNKNOWN_OBJECT, "There is no calendar at this address.",
                              reason="unknown_person", person_id=claims.person_id)
        if revocation_mark(link_queries.revoked_before(session, pk(person))) != claims.revocation_mark:
            raise FeedRefused(Refusal.EXPIRED, "This calendar feed was revoked. Ask the mobility team for a new "
                                               "address and subscribe to it instead.", reason="revoked",
                              person_id=claims.person_id)
        return calendar_of(session, person, now=now)
