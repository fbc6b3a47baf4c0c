"""What both benchmarks share: the cast of a leadership-development assignment, machine facts and table printing."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WORKFLOW = "leadership-development"

# One person per role of leadership-development, in several time zones (the same cast as the test suite):
# role -> (email, name, time zone)
CAST: dict[str, tuple[str, str, str]] = {
    "assignee": ("ana.lima@example.com", "Ana Lima", "America/Sao_Paulo"),
    "sending_manager": ("sam.home@example.com", "Sam Home", "America/Sao_Paulo"),
    "host_manager": ("hanna.host@example.com", "Hanna Host", "Europe/Berlin"),
    "coach": ("cole.coach@example.com", "Cole Coach", "Europe/Berlin"),
    "sponsor": ("sara.sponsor@example.com", "Sara Sponsor", "America/Sao_Paulo"),
    "talent": ("tess.talent@example.com", "Tess Talent", "UTC"),
    "mobility": ("mo.mobility@example.com", "Mo Mobility", "Asia/Kolkata"),
}
ASSIGNMENT = {"home": "BR", "host": "DE", "start": "2026-03-01", "end": "2027-08-31"}


def stakeholders() -> dict[str, str]:
    """Every role but the assignee, role -> email."""
    return {role: email for role, (email, _, _) in CAST.items() if role != "assignee"}


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
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return file[len(root):] if file.startswith(root) else file
