"""The named statements of engine.store.queries: each one's docstring opens with its own name."""

from __future__ import annotations

import inspect

from engine.store import queries


def test_every_named_statement_docstring_starts_with_its_name_when_listed() -> None:
    """Each public function of queries documents itself as `name: what it does`, under its real name."""
    statements = {name: function for name, function in vars(queries).items()
                  if inspect.isfunction(function) and function.__module__ == queries.__name__
                  and not name.startswith("_")}
    assert len(statements) > 10
    wrong = sorted(name for name, function in statements.items()
                   if not (function.__doc__ or "").startswith(f"{name}: "))
    assert wrong == []
