"""The valid part of a document that failed its schema, so the checks of meaning can run in the same pass.

A user who fixes the schema errors a validator reports should not then meet a second batch of problems that were
there all along. So the elements that failed the schema are taken out (the list element nearest to each error, or
the one key a schema does not allow), the rest is validated again, and the checks of meaning run on that. Paths in
what they report are mapped back to the document as written, and problems that only follow from taking an element
out (a name it declared now unknown, a stage now unreachable) are left out.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Loc = tuple[int | str, ...]
# The names a removed element declares, which later problems may quote: a stage's key, a transition's ends, ...
_DECLARING_KEYS = ("key", "from", "to", "kind", "guard")
_LEADING_PATH = re.compile(r"^[a-z_]+(?:\[\d+\]|\.[a-z_]+)*")
_PATH_PART = re.compile(r"\[(\d+)\]|\.?([a-z_]+)")


@dataclass
class Pruned:
    """A document with its invalid elements taken out, and what is needed to report on it as if they were there."""

    document: dict[str, Any]
    removed: dict[Loc, list[int]] = field(default_factory=dict)  # list path (as written) -> indices taken out
    names: set[str] = field(default_factory=set)  # names the removed elements declared
    lists: set[Loc] = field(default_factory=set)  # paths of the lists that lost an element

    def original_path(self, problem: str) -> str:
        """`problem` with the path it starts with (e.g. `stages[1].tasks[0].owner`) as in the document written."""
        found = _LEADING_PATH.match(problem)
        if not found or not self.removed:
            return problem
        return self._map(found.group()) + problem[found.end():]

    def _map(self, path: str) -> str:
        written: list[int | str] = []
        text = ""
        for index, name in _PATH_PART.findall(path):
            if name:
                written.append(name)
                text += f".{name}" if text else name
                continue
            kept = int(index)
            for gone in sorted(self.removed.get(tuple(written), [])):
                if gone <= kept:
                    kept += 1
            written.append(kept)
            text += f"[{kept}]"
        return text

    def concerns_removed(self, problem: str) -> bool:
        """Whether `problem` may only follow from an element taken out: it quotes a name that element declared."""
        return any(f"'{name}'" in problem for name in self.names)


def prune(document: Mapping[str, Any], errors: Iterable[tuple[Loc, str]],
          placeholders: Mapping[str, Any]) -> Pruned | None:
    """`document` without the parts each schema error `(loc, type)` points into; a top-level field outside any list
    takes its value from `placeholders`. None when an error concerns a field with no placeholder (a required one),
    so there is no valid part to check."""
    pruned = Pruned(copy.deepcopy(dict(document)))
    for loc, kind in errors:
        parent = _node(pruned.document, loc[:-1])
        target = _nearest_list_element(pruned.document, loc)
        if kind == "extra_forbidden" and isinstance(parent, dict):
            parent.pop(loc[-1], None)
        elif target is not None:
            pruned.removed.setdefault(target[:-1], []).append(int(target[-1]))
        elif loc and loc[0] in placeholders:
            pruned.document[str(loc[0])] = copy.deepcopy(placeholders[str(loc[0])])
        else:
            return None
    for path, indices in sorted(pruned.removed.items(), key=lambda item: -len(item[0])):
        items = _node(pruned.document, path)
        if not isinstance(items, list):
            continue
        for index in sorted(set(indices), reverse=True):
            pruned.names |= _declared_names(items[index])
            del items[index]
        pruned.lists.add(path)
    return pruned


def _nearest_list_element(document: Any, loc: Loc) -> Loc | None:
    """The path of the innermost list element on the way to `loc`."""
    node, best = document, None
    for depth, part in enumerate(loc):
        if not _has(node, part):
            break
        if isinstance(node, list):
            best = loc[:depth + 1]
        node = node[part]
    return best


def _node(document: Any, path: Sequence[int | str]) -> Any:
    node = document
    for part in path:
        if not _has(node, part):
            return None
        node = node[part]
    return node if isinstance(node, (dict, list)) else None


def _has(node: Any, part: int | str) -> bool:
    if isinstance(node, list):
        return isinstance(part, int) and 0 <= part < len(node)
    return isinstance(node, dict) and part in node


def _declared_names(element: Any) -> set[str]:
    if isinstance(element, str):
        return {element}
    if not isinstance(element, dict):
        return set()
    return {value for key in _DECLARING_KEYS if isinstance(value := element.get(key), str)}
