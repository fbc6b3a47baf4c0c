"""The people assignments name: adding them and finding them by email."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.errors import NotFound, SojournError
from engine.domain.schedule import zone
from engine.domain.views import Result
from engine.program.transactions import use_case_transaction as _transaction
from engine.store import lookups
from engine.store.models import Person, pk


def add_person(db: Engine, email: str, *, name: str, tz: str = "UTC") -> PersonView:
    address = inputs.email(email)
    person = Person(email=address, name=inputs.text(name, "--name"), tz=zone(tz).key)
    with _transaction(db) as session:
        if find_person(session, address) is not None:
            raise SojournError(f"a person with email {address} already exists")
        session.add(person)
        session.flush()
        return person_view(person)


def list_people(db: Engine) -> tuple[PersonView, ...]:
    with _transaction(db) as session:
        return tuple(person_view(p) for p in lookups.people(session))


def show_person(db: Engine, email: str) -> PersonView:
    """One person: email, name, time zone and digest choice; NotFound for someone never added."""
    with _transaction(db) as session:
        return person_view(require_person(session, inputs.email(email)))


@dataclass(frozen=True)
class PersonView(Result):
    """A person as the CLI and JSON show them."""

    id: int
    email: str
    name: str
    tz: str
    digest: str  # see DigestChoice


def person_view(person: Person) -> PersonView:
    return PersonView(pk(person), person.email, person.name, person.tz, person.digest)


def find_person(session: Session, email: str) -> Person | None:
    """The person with this email, whatever its case or surrounding spaces; None when there is none."""
    return lookups.person_by_email(session, email.strip().lower())


def require_person(session: Session, email: str, what: str = "person") -> Person:
    person = find_person(session, email)
    if person is None:
        raise NotFound(f"{what}: no person with email {email}",
                       details=[f"add them first: sojourn person add {email} --name 'Full Name' --tz Area/City"])
    return person
