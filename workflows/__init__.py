"""The built-in workflow definitions, shipped as YAML package data and found with importlib.resources."""

from __future__ import annotations

from importlib.resources import files

__all__ = ["builtin_workflow_texts"]


def builtin_workflow_texts() -> dict[str, str]:
    """The YAML text of every built-in workflow, by file name."""
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in sorted(files(__name__).iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    }
