"""Typed results and their one plain form: engine code reads fields, the CLI, JSON and web edges call `view()`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, ClassVar


class Result:
    """Base of a use case's result (a frozen dataclass): `view()` is its JSON shape.

    Each field becomes a key of the same name; a name with a trailing underscore (`from_`, `with_`) stands for the
    keyword it avoids, as PEP 8 suggests, and is shown as that keyword. Dates and instants become ISO 8601 text,
    enums their value, nested results their own view. A result whose JSON shape differs from its fields overrides
    `view()` and says why.
    """

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def view(self) -> dict[str, Any]:
        return {f.name.removesuffix("_"): plain(getattr(self, f.name)) for f in fields(self)}


def plain(value: Any) -> Any:
    """`value` as JSON-ready data: the one conversion every typed result's view goes through."""
    if isinstance(value, Result):
        return value.view()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [plain(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    return value


def views(results: Any) -> list[dict[str, Any]]:
    """The views of a sequence of results, for commands that list."""
    return [result.view() for result in results]
