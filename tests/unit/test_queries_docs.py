"""The named statements of engine.store: each one's docstring opens with its own name."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from engine.store import lookups, queries


@pytest.mark.parametrize("module", [queries, lookups], ids=lambda m: m.__name__)
def test_every_named_statement_docstring_starts_with_its_name_when_listed(module: ModuleType) -> None:
    """Each public function of a query module documents itself as `name: what it does`, under its real name."""
    statements = {name: function for name, function in vars(module).items()
                  if inspect.isfunction(function) and function.__module__ == module.__name__
                  and not name.startswith("_")}
    assert len(statements) > 10
    wrong = sorted(name for name, function in statements.items()
                   if not (function.__doc__ or "").startswith(f"{name}: "))
    assert wrong == []
