"""What the benchmarks share: the repository on the import path, the test cast, machine facts and table printing.

`python bench/NAME.py` puts only `bench/` on `sys.path`. Importing this module first adds the repository root, so a
benchmark imports the engine and the test suite's helpers (`tests.support`: scratch databases, the cast, scenario
builders, the webhook receiver) by their full names.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from tests.support.cast import ASSIGNMENT, CAST, WORKFLOW, stakeholders  # noqa: E402  (needs the path above)

__all__ = ["ASSIGNMENT", "CAST", "REPOSITORY", "WORKFLOW", "machine", "median", "percentile", "short_path",
           "stakeholders", "table", "verdict"]


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
