"""The engine's packages import downward only and form no cycle, so the tree shows the design."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"

# Bottom first. A package may import itself and packages of a lower rank; packages of equal rank may not import
# each other.
RANK = {
    "domain": 0,
    "store": 1,
    "program": 2,
    "planning": 3,
    "reporting": 3,
    "delivery": 4,
    "web": 5,
}

def _module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _engine_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ENGINE.rglob("*.py")) if "versions" not in p.parts}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every engine module `name` imports, at any depth of the file (TYPE_CHECKING and function bodies included)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return {m for m in found if m == "engine" or m.startswith("engine.")}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _edges() -> set[tuple[str, str]]:
    modules = _engine_modules()
    return {(name, target) for name, path in modules.items() for target in _imports(name, path, set(modules))
            if _package(target) is not None and _package(target) != _package(name)}


def _upward(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in edges if RANK[_package(b) or ""] >= RANK[_package(a) or ""]}


def test_every_engine_module_lives_in_a_declared_package() -> None:
    """No module sits loose in engine/ or in a package the order does not name."""
    loose = [name for name in _engine_modules() if name != "engine" and _package(name) not in RANK]
    assert loose == []


def test_no_package_imports_one_above_it() -> None:
    """An import from a package of the same or a higher rank fails, type-only imports included."""
    assert sorted(_upward(_edges())) == []


def test_engine_reaches_notifiers_only_through_delivery_and_never_the_command_line() -> None:
    """Only `engine.delivery` imports `notifiers`; no engine module imports `cli` or click."""
    wrong = []
    for name, path in _engine_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for target in targets:
                top = target.split(".")[0]
                if top in ("cli", "click") or (top == "notifiers" and _package(name) != "delivery"):
                    wrong.append((name, target))
    assert wrong == []


def test_packages_form_no_import_cycle() -> None:
    """Between packages the imports form no cycle."""
    graph: dict[str, set[str]] = {}
    for a, b in _edges():
        graph.setdefault(_package(a) or "", set()).add(_package(b) or "")
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def _private_names_used(path: Path) -> list[str]:
    """Each `_name` the file takes from another module: `from m import _name`, or `m._name` on an imported module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found += [f"{node.module}.{a.name}" for a in node.names if _is_private(a.name)]
            imported.update(alias.asname or alias.name for alias in node.names)
    found += [f"{node.value.id}.{node.attr}" for node in ast.walk(tree)
              if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported
              and _is_private(node.attr)]
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_uses_another_modules_private_names() -> None:
    """A `_name` stays inside its module: a rule two modules share is public, or lives where both can reach it."""
    root = ENGINE.parent
    paths = [*_engine_modules().values(), *sorted((root / "notifiers").rglob("*.py")), root / "cli.py"]
    used = {str(path.relative_to(root)): names for path in paths if (names := _private_names_used(path))}
    assert used == {}
