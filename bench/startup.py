"""CLI start-up wall time against the import floor of the libraries it cannot avoid, measured in the same run.

Runs each command N times as a subprocess (interleaved, rotating the order each round) and compares medians:

- `sojourn --help`                        against  `python -c "import click"`                 goal: within 2x
- `sojourn --db ... assignment show 1`    against  `python -c "import sqlmodel"`              goal: within 1.3x

plus two reference rows that are not goals: `python -c pass` (the interpreter alone) and
`import cli, engine.program.assignments` (what `show` imports before it does any work). The floors use the same
interpreter as `sojourn` (the venv's).

`show` runs on a database prepared with the CLI in a temporary directory: `init`, the 7 people of the test suite's
cast, one leadership-development assignment. When `show` misses its goal (or with --importtime) the script also breaks
the cost down: `python -X importtime` for the modules `show` loads beyond its floor, and a cProfile of the work done
after the imports.

    .venv/bin/python bench/startup.py              # 15 runs per command, about a minute
    .venv/bin/python bench/startup.py --runs 5     # quick check
    .venv/bin/python bench/startup.py --json       # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import ASSIGNMENT, CAST, WORKFLOW, machine, median, stakeholders, table, verdict

GOAL_HELP = 2.0
GOAL_SHOW = 1.3
PYTHON = sys.executable
SOJOURN = str(Path(PYTHON).parent / "sojourn")
PROJECT_PACKAGES = ("cli", "engine", "workflows", "notifiers")


def clean_env() -> dict[str, str]:
    """The caller's environment without Sojourn settings, so only the options given here count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SOJOURN_") and k != "PYTHONPROFILEIMPORTTIME"}


def sh(args: list[str], cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=clean_env(), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stdout}{done.stderr}")
    return done


def prepare(workdir: Path) -> str:
    """A database with the schema, 7 people and assignment 1, made through the CLI; returns its URL."""
    url = f"sqlite:///{workdir / 'sojourn.db'}"
    base = [SOJOURN, "--db", url]
    sh([*base, "init"], workdir)
    for email, name, tz in CAST.values():
        sh([*base, "person", "add", email, "--name", name, "--tz", tz], workdir)
    create = [*base, "assignment", "create", "--workflow", WORKFLOW, "--assignee", CAST["assignee"][0],
              "--home", ASSIGNMENT["home"], "--host", ASSIGNMENT["host"], "--start", ASSIGNMENT["start"],
              "--end", ASSIGNMENT["end"]]
    for role, email in stakeholders().items():
        create += ["--stakeholder", f"{role}={email}"]
    created = json.loads(sh([*create, "--json"], workdir).stdout)
    if created["id"] != 1:
        raise SystemExit(f"expected assignment 1 in a fresh database, got {created['id']}")
    shown = sh([*base, "assignment", "show", "1"], workdir)
    if "assignment 1" not in shown.stdout:
        raise SystemExit(f"`assignment show 1` printed something unexpected:\n{shown.stdout}")
    return url


def commands(url: str) -> dict[str, list[str]]:
    return {
        "help": [SOJOURN, "--help"],
        "floor_click": [PYTHON, "-c", "import click"],
        "show": [SOJOURN, "--db", url, "assignment", "show", "1"],
        "floor_sqlmodel": [PYTHON, "-c", "import sqlmodel"],
        "python": [PYTHON, "-c", "pass"],
        "imports_show": [PYTHON, "-c", "import cli, engine.program.assignments"],
        # what-if rows: the same work with the interpreter's final garbage collection skipped (gc.freeze() at exit)
        "show_frozen": [PYTHON, "-c", FROZEN_SHOW, "--db", url, "assignment", "show", "1"],
        "floor_sqlmodel_frozen": [PYTHON, "-c", f"{FREEZE_AT_EXIT}; import sqlmodel"],
    }


FREEZE_AT_EXIT = "import atexit, gc; atexit.register(gc.freeze)"
FROZEN_SHOW = f"{FREEZE_AT_EXIT}; import sys; sys.argv[0] = 'sojourn'; from cli import main; main()"


LABELS = {
    "help": "sojourn --help",
    "floor_click": 'python -c "import click"',
    "show": "sojourn assignment show 1",
    "floor_sqlmodel": 'python -c "import sqlmodel"',
    "python": 'python -c "pass"',
    "imports_show": 'python -c "import cli, engine.program.assignments"',
    "show_frozen": "what if: show with gc.freeze() at exit",
    "floor_sqlmodel_frozen": "what if: sqlmodel floor, gc.freeze() at exit",
}


def measure(cmds: dict[str, list[str]], cwd: Path, runs: int, warmup: int) -> dict[str, list[float]]:
    env = clean_env()
    names = list(cmds)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(warmup + runs):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            done = subprocess.run(cmds[name], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(cmds[name])} exited with {done.returncode}")
            if round_number >= warmup:
                times[name].append(elapsed)
    return times


# --- where `show` spends its time ---------------------------------------------------------------------------------


def importtime(args: list[str], cwd: Path, repeat: int) -> dict[str, dict[str, Any]]:
    """Module -> {self_ms, cumulative_ms, parent, level}; the per-module minimum over `repeat` runs."""
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        done = subprocess.run([PYTHON, "-X", "importtime", *args], cwd=cwd, env=clean_env(), capture_output=True,
                              text=True)
        entries = []
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cumulative, raw = _split(line)
            level = (len(raw) - len(raw.lstrip(" "))) // 2
            entries.append((raw.strip(), int(own), int(cumulative), level))
        parents: dict[str, str | None] = {}
        stack: list[tuple[int, str]] = []
        for name, _, _, level in reversed(entries):  # a module is printed after everything it imported
            while stack and stack[-1][0] >= level:
                stack.pop()
            parents[name] = stack[-1][1] if stack else None
            stack.append((level, name))
        for name, own_us, cumulative_us, level in entries:
            known = best.get(name)
            if known is None or cumulative_us < known["cumulative_ms"] * 1000:
                best[name] = {"self_ms": own_us / 1000, "cumulative_ms": cumulative_us / 1000,
                              "parent": parents[name], "level": level}
    return best


def _split(line: str) -> tuple[str, str, str]:
    """`import time:   123 |   456 |   name` -> self, cumulative, name with its nesting indentation."""
    own, cumulative, raw = line.split(":", 1)[1].split("|")
    return own.strip(), cumulative.strip(), raw[1:] if raw.startswith(" ") else raw


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def import_breakdown(show_args: list[str], floor_code: str, cwd: Path, repeat: int = 3) -> dict[str, Any]:
    shown = importtime(show_args, cwd, repeat)
    floor = importtime(["-c", floor_code], cwd, repeat)
    extra = {name: e for name, e in shown.items() if name not in floor}
    by_package: dict[str, float] = defaultdict(float)
    entry_points: dict[str, tuple[float, str]] = {}  # package -> (cumulative, the outside module that imported it)
    for name, e in extra.items():
        package = _top(name)
        by_package[package] += e["self_ms"]
        parent = e["parent"]
        heaviest = entry_points.get(package, (-1.0, ""))[0]
        if parent is not None and _top(parent) != package and e["cumulative_ms"] > heaviest:
            entry_points[package] = (e["cumulative_ms"], f"{parent} -> {name}")
    # the imports that pull in the extra third-party code: extra modules whose importer is project code or the floor
    roots = [
        {"module": name, "cumulative_ms": e["cumulative_ms"], "imported_by": e["parent"]}
        for name, e in extra.items()
        if _top(name) not in PROJECT_PACKAGES and (e["parent"] is None or e["parent"] in floor
                                                   or _top(e["parent"]) in PROJECT_PACKAGES)
    ]
    project = [{"module": name, "self_ms": e["self_ms"], "cumulative_ms": e["cumulative_ms"]}
               for name, e in extra.items() if _top(name) in PROJECT_PACKAGES]
    return {
        "show_total_ms": sum(e["self_ms"] for e in shown.values()),
        "floor_total_ms": sum(e["self_ms"] for e in floor.values()),
        "extra_total_ms": sum(e["self_ms"] for e in extra.values()),
        "extra_by_package": [{"package": k, "self_ms": v, "pulled_in_by": entry_points.get(k, (0.0, "-"))[1]}
                             for k, v in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]],
        "extra_roots": sorted(roots, key=lambda r: -r["cumulative_ms"])[:12],
        "project_modules": sorted(project, key=lambda r: -r["self_ms"])[:8],
    }


PHASES = r"""
import cProfile, json, pstats, sys, time
t0 = time.perf_counter()
import cli
from engine.program import assignments
t1 = time.perf_counter()
sys.argv = ["sojourn", *sys.argv[1:]]
profiler = cProfile.Profile()
profiler.enable()
try:
    cli.main()
except SystemExit as exc:
    if exc.code not in (None, 0):
        raise
profiler.disable()
t2 = time.perf_counter()
stats = pstats.Stats(profiler).stats
rows = [{"where": f"{f}:{n}({fn})", "calls": c, "cumulative_ms": ct * 1000}
        for (f, n, fn), (_, c, _, ct, _) in stats.items()]
rows.sort(key=lambda r: -r["cumulative_ms"])
with open(OUT, "w") as out:
    json.dump({"imports_ms": (t1 - t0) * 1000, "work_ms": (t2 - t1) * 1000, "top": rows[:60]}, out)
"""


def work_breakdown(show_argv: list[str], cwd: Path, repeat: int = 3) -> dict[str, Any]:
    """Imports of `cli` + `engine.program.assignments` against the work of one `show` (under cProfile), the fastest of
    `repeat`."""
    out = cwd / "phases.json"
    code = PHASES.replace("OUT", repr(str(out)))
    best: dict[str, Any] | None = None
    for _ in range(repeat):
        sh([PYTHON, "-c", code, *show_argv], cwd)
        data = json.loads(out.read_text())
        if best is None or data["imports_ms"] + data["work_ms"] < best["imports_ms"] + best["work_ms"]:
            best = data
    assert best is not None
    root = str(Path(__file__).resolve().parent.parent) + "/"
    marker = "site-packages/"
    for row in best["top"]:
        where = row["where"]
        row["where"] = where.split(marker, 1)[1] if marker in where else where.replace(root, "")
    # project functions, plus the outermost call into each library (its inner frames would only repeat it)
    interesting, libraries = [], set()
    for row in best["top"]:
        where = row["where"]
        if where.startswith(("engine/", "workflows/", "notifiers/")):
            interesting.append(row)
        elif "/" in where and not where.startswith(("<", "/", "click/", "cli.py")):
            library = where.split("/", 1)[0]
            if library not in libraries:
                libraries.add(library)
                interesting.append(row)
    return {"imports_ms": best["imports_ms"], "work_ms": best["work_ms"], "top": interesting[:18]}


# --- reporting ----------------------------------------------------------------------------------------------------


def run(runs: int, warmup: int, force_breakdown: bool) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="sojourn-bench-startup-"))
    try:
        url = prepare(workdir)
        cmds = commands(url)
        times = measure(cmds, workdir, runs, warmup)
        medians = {name: median(values) for name, values in times.items()}
        help_ratio = medians["help"] / medians["floor_click"]
        show_ratio = medians["show"] / medians["floor_sqlmodel"]
        data: dict[str, Any] = {
            "benchmark": "startup", "machine": machine(), "params": {"runs": runs, "warmup": warmup},
            "results": {name: {"command": LABELS[name], "median_ms": medians[name] * 1000,
                               "min_ms": min(times[name]) * 1000, "max_ms": max(times[name]) * 1000}
                        for name in cmds},
            "goals": {
                "help": {"goal": GOAL_HELP, "ratio": help_ratio, "met": help_ratio <= GOAL_HELP,
                         "against": "floor_click"},
                "show": {"goal": GOAL_SHOW, "ratio": show_ratio, "met": show_ratio <= GOAL_SHOW,
                         "against": "floor_sqlmodel"},
            },
            "what_if": {
                "show_frozen_vs_floor": medians["show_frozen"] / medians["floor_sqlmodel"],
                "show_frozen_vs_floor_frozen": medians["show_frozen"] / medians["floor_sqlmodel_frozen"],
                "teardown_ms_show": (medians["show"] - medians["show_frozen"]) * 1000,
                "teardown_ms_floor": (medians["floor_sqlmodel"] - medians["floor_sqlmodel_frozen"]) * 1000,
            },
            "breakdown": None,
        }
        if force_breakdown or show_ratio > GOAL_SHOW:
            show_argv = cmds["show"][1:]
            data["breakdown"] = {
                "imports": import_breakdown([SOJOURN, *show_argv], "import sqlmodel", workdir),
                "phases": work_breakdown(show_argv, workdir),
            }
        return data
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(data: dict[str, Any]) -> str:
    r, m, g = data["results"], data["machine"], data["goals"]
    lines = [f"CLI start-up: median of {data['params']['runs']} runs each (after {data['params']['warmup']} warm-up); "
             f"{m['cpus']} CPUs, Python {m['python']}, load average {m['load_average_1m'] or 0:.2f} at the end", ""]
    floors = {"help": "floor_click", "show": "floor_sqlmodel", "imports_show": "floor_sqlmodel",
              "floor_click": "python", "floor_sqlmodel": "python", "show_frozen": "floor_sqlmodel",
              "floor_sqlmodel_frozen": "python"}
    rows = []
    for name in ("help", "floor_click", "show", "floor_sqlmodel", "imports_show", "python", "show_frozen",
                 "floor_sqlmodel_frozen"):
        v = r[name]
        against = floors.get(name)
        ratio = f"{v['median_ms'] / r[against]['median_ms']:.2f}x {against}" if against else ""
        rows.append([v["command"], f"{v['median_ms']:.0f}", f"{v['min_ms']:.0f}", f"{v['max_ms']:.0f}", ratio])
    lines.append(table(rows, ["command", "median ms", "min ms", "max ms", "ratio to"]))
    lines += ["",
              f"goal --help within {GOAL_HELP:g}x of import click: {g['help']['ratio']:.2f}x -> "
              f"{verdict(g['help']['met'])}",
              f"goal show within {GOAL_SHOW:g}x of import sqlmodel: {g['show']['ratio']:.2f}x -> "
              f"{verdict(g['show']['met'])}",
              f"what if show froze the heap at exit (not a goal): {data['what_if']['show_frozen_vs_floor']:.2f}x the "
              f"floor as defined, {data['what_if']['show_frozen_vs_floor_frozen']:.2f}x a floor that also skips its "
              "final collection"]
    b = data["breakdown"]
    if b:
        imp, ph = b["imports"], b["phases"]
        lines += ["", f"where `show` goes beyond its floor (python -X importtime, best of 3; importtime inflates "
                      f"times): {imp['show_total_ms']:.0f} ms of imports against the floor's "
                      f"{imp['floor_total_ms']:.0f} ms, {imp['extra_total_ms']:.0f} ms in modules the floor does "
                      "not load"]
        lines.append(table([[e["package"], f"{e['self_ms']:.1f}", e["pulled_in_by"]] for e in imp["extra_by_package"]],
                           ["package (modules beyond the floor)", "self ms", "heaviest way in"]))
        lines += [""]
        lines.append(table([[e["module"], e["imported_by"] or "-", f"{e['cumulative_ms']:.1f}"]
                            for e in imp["extra_roots"]], ["import beyond the floor", "imported by", "cumulative ms"]))
        lines += ["", f"one `show` in-process: {ph['imports_ms']:.0f} ms importing cli + engine.program.assignments, "
                      f"{ph['work_ms']:.0f} ms running the command (under cProfile); the work by cumulative time:"]
        lines.append(table([[e["where"], str(e["calls"]), f"{e['cumulative_ms']:.1f}"] for e in ph["top"]],
                           ["function", "calls", "cumulative ms"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--importtime", action="store_true", help="break `show` down even when it meets its goal")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    if not Path(SOJOURN).exists():
        parser.error(f"no sojourn script next to {PYTHON}; run this with the venv's python")
    data = run(args.runs, args.warmup, args.importtime)
    print(json.dumps(data, indent=2) if args.json else report(data))


if __name__ == "__main__":
    main()
