"""The one plain form of typed results: what the CLI's --json and the web pages receive."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from engine.domain.views import Result, plain, views


class Colour(enum.StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Inner(Result):
    on: date


@dataclass(frozen=True)
class Outer(Result):
    name: str
    at: datetime
    colour: Colour
    inner: Inner
    items: tuple[Inner, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


def test_view_turns_every_field_into_json_ready_data() -> None:
    """Fields keep their names; dates, instants, enums and nested results become plain values."""
    outer = Outer("Ana", datetime(2027, 1, 2, 3, 4, tzinfo=UTC), Colour.RED, Inner(date(2027, 5, 6)),
                  (Inner(date(2027, 7, 8)),), {"a": 1})
    assert outer.view() == {"name": "Ana", "at": "2027-01-02T03:04:00+00:00", "colour": "red",
                            "inner": {"on": "2027-05-06"}, "items": [{"on": "2027-07-08"}], "counts": {"a": 1}}


def test_views_and_plain_accept_sequences() -> None:
    """A list of results becomes a list of views; plain data passes through unchanged."""
    assert views([Inner(date(2027, 1, 1))]) == [{"on": "2027-01-01"}]
    assert plain({"x": [1, "a", None]}) == {"x": [1, "a", None]}


@dataclass(frozen=True)
class Contact(Result):
    from_: str
    with_: str


def test_a_trailing_underscore_stands_for_the_keyword_it_avoids() -> None:
    """`from_` and `with_` are shown as `from` and `with`, the keys the JSON has always used."""
    assert Contact("a", "b").view() == {"from": "a", "with": "b"}
