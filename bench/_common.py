"""What the benchmarks share: the repository on the import path, the test cast, machine facts and table printing.

`python bench/NAME.py` puts only `bench/` on `sys.path`. Importing this module first adds the repository root, so a
benchmark imports the engine and the test suite's helpers (`tests.support`: scratch databases, the cast, scenario
builders, the webhook receiver) by their full names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from tests.support.cast import ASSIGNMENT, CAST, WORKFLOW, stakeholders  # noqa: E402  (needs the path above)

__all__ = ["ASSIGNMENT", "CAST", "REPOSITORY", "WORKFLOW", "Contender", "interleaved_rounds", "machine", "median",
           "percentile", "race_lines", "race_result", "seal_event", "short_path", "stakeholders", "table", "verdict"]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
        # other work on the machine skews absolute figures; the same-run ratios are what to compare
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def short_path(file: str) -> str:
    """A profiled function's file, relative to site-packages or to the repository, for reports."""
    marker = "site-packages/"
    if marker in file:
        return file.split(marker, 1)[1]
    root = str(REPOSITORY) + "/"
    return file[len(root):] if file.startswith(root) else file


# --- audit events as a hand-written script seals them ------------------------------------------------------------

SECRET_BYTES = 16  # as `engine.program.audit.SECRET_BYTES`


def seal_event(assignment_id: int, seq: int, at: datetime, actor: str, action: str, details: dict[str, Any],
               prev_hash: str | None) -> tuple[str, str, str]:
    """(details as canonical JSON, secret, hash) of a new audit event, sealed as `engine.program.audit.seal` does,
    written out with hashlib and hmac as a plain script would: every string (the actor, each string in the details,
    found by its path) enters the hash as SHA-256 over a salt and its UTF-8 bytes, each salt an HMAC-SHA256 of its path
    under a fresh random secret kept beside the event (docs/privacy.md). `details` holds JSON values only."""
    text = _canonical(details)
    secret = secrets.token_hex(SECRET_BYTES)
    key = bytes.fromhex(secret)

    def commit(path: str, value: str) -> str:
        salt = hmac.digest(key, path.encode("utf-8"), "sha256")[:SECRET_BYTES]
        return hashlib.sha256(salt + value.encode("utf-8")).hexdigest()

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return commit(path, value)
        if isinstance(value, dict):
            return {k: walk(item, f"{path}/{k.replace('~', '~0').replace('/', '~1')}") for k, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{path}/{index}") for index, item in enumerate(value)]
        return value

    committed = [commit("actor", actor), walk(details, "details")]
    content = _canonical(["c1", assignment_id, seq, at.astimezone(UTC).isoformat(), committed, action, prev_hash])
    return text, secret, hashlib.sha256(content.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> str:
    """The engine's canonical JSON: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --- two contenders computing the same figures, timed in turns ---------------------------------------------------


class Contender(Protocol):
    name: str

    def __call__(self) -> dict[str, Any]: ...


def interleaved_rounds(contenders: Sequence[Contender], rounds: int) -> tuple[dict[str, list[float]],
                                                                               dict[str, dict[str, Any]]]:
    """Run each contender once untimed (caches, parsed workflows, database pages), then `rounds` timed runs each,
    the order flipping every round so machine noise falls on both alike. Returns the times and last results."""
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    results = {c.name: c() for c in contenders}
    for number in range(rounds):
        for contender in contenders if number % 2 == 0 else contenders[::-1]:
            started = time.perf_counter()
            results[contender.name] = contender()
            times[contender.name].append(time.perf_counter() - started)
    return times, results


def race_result(times: dict[str, list[float]], engine_name: str, plain_name: str, goal_ratio: float,
                figures: dict[str, Any], same_figures: Callable[[dict[str, Any], dict[str, Any]], list[str]],
                results: dict[str, dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of a race: the engine's time as a ratio of the plain SQL's, once both computed the same
    figures (the run stops naming the figures that differ)."""
    differences = same_figures(results[engine_name], results[plain_name])
    if differences:
        sys.exit(f"the two computed different figures: {', '.join(differences)}")
    ratio = median(times[engine_name]) / median(times[plain_name])
    return {"params": params, "machine": machine(), "figures": figures,
            "results": {name: {"median_s": median(values), "min_s": min(values), "max_s": max(values)}
                        for name, values in times.items()},
            "ratio": ratio, "goal_ratio": goal_ratio, "met": ratio <= goal_ratio}


def race_lines(what: str, data: dict[str, Any]) -> list[str]:
    """A race's report: what was timed, on which machine, the table of times and the ratio against its goal."""
    p, m = data["params"], data["machine"]
    rows = [[name, f"{r['median_s'] * 1000:.0f}", f"{r['min_s'] * 1000:.0f}", f"{r['max_s'] * 1000:.0f}"]
            for name, r in data["results"].items()]
    return [f"{what} over {p['n']} assignments ({p['rows']}), {p['rounds']} interleaved rounds; "
            f"{m['cpus']} CPUs, Python {m['python']}, load {m['load_average_1m']:.2f}",
            table(rows, ["contender", "median ms", "min ms", "max ms"]),
            f"ratio {data['ratio']:.2f}x (goal within {data['goal_ratio']:.0f}x: {verdict(data['met'])}); "
            f"both computed the same figures ({data['figures']})"]
