"""Renders a program report (the `ProgramReport` `engine.reporting.figures.compute_report` builds) as a table, CSV,
JSON or HTML.

The HTML page is one self-contained file a program owner can email: styles inline, charts inline as SVG drawn by
matplotlib (imported only for HTML), no script and nothing fetched from the network.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from engine.domain.escape import csv_cell, html_environment, literal_chart_text
from engine.reporting.figures import ContactCompliance, OverdueOwner, ProgramReport, StageCount, StageDuration

if TYPE_CHECKING:
    from markupsafe import Markup
    from matplotlib.axes import Axes

Section = tuple[str, str, list[str], list[list[Any]]]  # (key, title, column headers, rows)


def render(report: ProgramReport, fmt: str) -> str:
    """The report in `fmt` (table, csv, json or html), ending with a newline."""
    renderers: dict[str, Callable[[ProgramReport], str]] = {
        "table": render_table, "csv": render_csv, "json": render_json, "html": render_html}
    return renderers[fmt](report)


def render_json(report: ProgramReport) -> str:
    return json.dumps(report.view(), indent=2, ensure_ascii=False) + "\n"


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def sections(report: ProgramReport) -> list[Section]:
    """The report's tables, in reading order; every format shows the same rows (dates as ISO 8601 text)."""
    outcome = report.outcomes
    return [
        ("pipeline", "Assignments per stage", ["workflow", "stage", "assignments"],
         [[p.workflow, p.stage, p.assignments] for p in report.pipeline]),
        ("stage_durations", "Days spent in each stage (stays that ended)",
         ["workflow", "stage", "stays", "median_days", "p90_days"],
         [[d.workflow, d.stage, d.stays, d.median_days, d.p90_days] for d in report.stage_durations]),
        ("overdue", "Overdue tasks by owner and role", ["owner", "name", "role", "tasks", "assignments",
                                                       "oldest_due_on"],
         [[o.owner, o.name, o.role, o.tasks, o.assignments, o.oldest_due_on.isoformat()] for o in report.overdue]),
        ("contact_compliance", "Contact compliance (periods held of periods due)",
         ["assignment_id", "assignee", "kind", "periods_held", "periods_due", "rate"],
         [[c.assignment_id, c.assignee, c.kind, c.periods_held, c.periods_due, c.rate]
          for c in report.contact_compliance]),
        ("upcoming_repatriations", "Upcoming repatriations (end within 180 days)",
         ["assignment_id", "assignee", "home", "host", "stage", "end", "days_left"],
         [[r.assignment_id, r.assignee, r.home, r.host, r.stage, r.end.isoformat(), r.days_left]
          for r in report.upcoming_repatriations]),
        ("outcomes", "Outcomes", ["measure", "value"],
         [["completed", outcome.completed], ["cancelled", outcome.cancelled],
          ["outcomes recorded after return", len(outcome.recorded)],
          *[[f"retained at {r.months} months", f"{r.retained} of {r.recorded} recorded"]
            for r in outcome.retention],
          ["considered for promotion", outcome.considered_for_promotion],
          ["promoted", outcome.promoted],
          ["impact statements", outcome.competency_growth.impact_statements]]),
        ("competency_growth", "Competency growth (latest rating after return minus the baseline)",
         ["competency", "assignments", "with_baseline", "no_baseline", "mean_growth"],
         [[c.name, c.assignments, c.with_baseline, c.no_baseline, c.mean_growth]
          for c in outcome.competency_growth.competencies]),
        ("recorded_outcomes", "Outcomes recorded after return",
         ["assignment_id", "assignee", "months", "retained", "considered_for_promotion", "promoted_to"],
         [[o.assignment_id, o.assignee, o.months, "yes" if o.retained else "no",
           "yes" if o.considered_for_promotion else "no", o.promoted_to] for o in outcome.recorded]),
        ("cancellations", "Cancellations", ["assignment_id", "assignee", "from_stage", "on", "reason"],
         [[c.assignment_id, c.assignee, c.from_stage, None if c.on is None else c.on.isoformat(), c.reason]
          for c in outcome.cancellations]),
        ("objectives", "Goals, progress and outcomes per objective",
         ["objective_id", "level", "title", "goals", "assignments", "mean_progress", "outcomes_recorded",
          "considered_for_promotion", "promoted", "retained"],
         [[o.id, o.level, o.title, o.goals, o.assignments, o.progress.mean_percent, o.outcomes.recorded,
           o.outcomes.considered_for_promotion, o.outcomes.promoted, o.outcomes.retained] for o in report.objectives]),
    ]


def _summary(report: ProgramReport) -> str:
    chosen = [f"{f.name.replace('_', ' ')} {value}" for f in fields(report.filters)
              if (value := getattr(report.filters, f.name)) is not None]
    return (f"{report.as_of.isoformat()}: {report.assignments} assignment(s)"
            + (f" ({', '.join(chosen)})" if chosen else ""))


def render_table(report: ProgramReport) -> str:
    lines = [f"Sojourn program report as of {_summary(report)}"]
    for key, title, header, rows in sections(report):
        shown = [[_cell(key, column, value) for column, value in zip(header, row, strict=True)] for row in rows]
        lines += ["", title, *_aligned(shown, [h.upper() for h in header])]
    return "\n".join(lines) + "\n"


def _cell(key: str, column: str, value: Any) -> str:
    if (key, column) == ("competency_growth", "mean_growth") and value is not None:
        return f"{value:+.2f}"
    return _rate(value) if (key, column) == ("contact_compliance", "rate") else _text(value)


def _aligned(rows: list[list[str]], header: list[str]) -> list[str]:
    if not rows:
        return ["(none)"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def render_csv(report: ProgramReport) -> str:
    """One block per section, separated by a blank line; each block has its own header row, and every row starts
    with the section's key, so the rows of one section can be picked out with a filter on the first column. Text
    that a spreadsheet would run as a formula is neutralised by `csv_cell`; numbers are written as numbers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for number, (key, _, header, rows) in enumerate(sections(report)):
        if number:
            out.write("\n")
        writer.writerow(["section", *header])
        writer.writerows([[key, *(csv_cell(v) for v in row)] for row in rows])
    return out.getvalue()


# --- HTML -------------------------------------------------------------------------------------------------------

_BLUE, _ORANGE, _GREEN, _GREY = "#2f6db5", "#e07b39", "#3f9c5a", "#c4cdd5"


def render_html(report: ProgramReport) -> str:
    """A self-contained page: pipeline, overdue work, stage durations and contact compliance, charts and tables.

    The page is the template `engine/reporting/templates/report.html`, which HTML-escapes every value; only the charts'
    SVG, which matplotlib writes with its text escaped, goes in as markup.
    """
    tables = {key: (title, header, rows) for key, title, header, rows in sections(report)}
    charts: list[tuple[str, Callable[[], str | None]]] = [
        ("pipeline", lambda: _pipeline_chart(report.pipeline)),
        ("overdue", lambda: _overdue_chart(report.overdue)),
        ("stage_durations", lambda: _durations_chart(report.stage_durations)),
        ("contact_compliance", lambda: _compliance_chart(report.contact_compliance)),
        ("upcoming_repatriations", lambda: None), ("outcomes", lambda: None), ("competency_growth", lambda: None),
        ("recorded_outcomes", lambda: None), ("cancellations", lambda: None), ("objectives", lambda: None)]
    shown = []
    for number, (key, chart) in enumerate(charts):
        title, header, rows = tables[key]
        svg = chart()
        shown.append({"key": key, "title": title, "header": [h.replace("_", " ") for h in header],
                      "chart": None if svg is None else _trusted_svg(_isolated(svg, f"c{number}-")),
                      "rows": [_html_row(key, header, row) for row in rows]})
    template = html_environment("engine.reporting").get_template("report.html")
    return template.render(as_of=report.as_of.isoformat(), summary=_summary(report), sections=shown)


def _trusted_svg(svg: str) -> Markup:
    from markupsafe import Markup

    # matplotlib writes the SVG and escapes every text it puts in it (titles, labels, comments).
    return Markup(svg)  # noqa: S704


@dataclass(frozen=True)
class _Cell:
    """A table cell of the page: the text shown, and whether it is a number (set right-aligned)."""

    text: str
    numeric: bool


def _html_row(key: str, header: list[str], row: list[Any]) -> list[_Cell]:
    return [_Cell(_cell(key, column, value), _is_number(value)) for column, value in zip(header, row, strict=True)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(href="#|url\(#)([^")]+)')


def _isolated(svg: str, prefix: str) -> str:
    """An SVG ready to inline: no XML prolog, and its ids prefixed so that charts on one page never share an id."""
    svg = svg[svg.index("<svg"):]
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    return _REFERENCE.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)


def _svg(draw: Callable[[Axes], None], height: float) -> str:
    """A chart drawn by `draw` on one axes, as SVG text with its glyphs as paths (no font needed to view it)."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "sojourn", "font.size": 9,
                                "axes.spines.top": False, "axes.spines.right": False}), literal_chart_text():
        figure = Figure(figsize=(8, height), layout="constrained")
        draw(figure.add_subplot())
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _whole_numbers(axes: Axes) -> None:
    """Ticks on whole numbers only: the axis counts assignments, tasks or periods."""
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _labels(values: Iterable[str]) -> list[str]:
    return [v if len(v) <= 40 else v[:39] + "…" for v in values]


def _pipeline_chart(rows: Sequence[StageCount]) -> str | None:
    if not rows:
        return None
    several = len({r.workflow for r in rows}) > 1
    labels = _labels(f"{r.workflow}: {r.stage}" if several else r.stage for r in rows)
    return _count_bars(labels, [r.assignments for r in rows], color=_BLUE, unit="assignments", row_height=0.28)


def _overdue_chart(rows: Sequence[OverdueOwner]) -> str | None:
    if not rows:
        return None
    labels = _labels(f"{r.name} ({r.role})" for r in rows)
    return _count_bars(labels, [r.tasks for r in rows], color=_ORANGE, unit="overdue tasks", row_height=0.3)


def _count_bars(labels: list[str], counts: list[int], *, color: str, unit: str, row_height: float) -> str:
    """Horizontal bars of whole counts, first row on top, each bar labelled with its count."""

    def draw(axes: Axes) -> None:
        bars = axes.barh(labels, counts, color=color)
        axes.bar_label(bars, padding=3)
        axes.invert_yaxis()
        axes.set_xlabel(unit)
        _whole_numbers(axes)

    return _svg(draw, 0.6 + row_height * len(labels))


def _durations_chart(rows: Sequence[StageDuration]) -> str | None:
    measured = [r for r in rows if r.stays]
    if not measured:
        return None
    several = len({r.workflow for r in measured}) > 1
    labels = _labels(f"{r.workflow}: {r.stage}" if several else r.stage for r in measured)
    positions = list(range(len(measured)))

    def draw(axes: Axes) -> None:
        axes.barh([p - 0.2 for p in positions], [r.median_days or 0.0 for r in measured], height=0.4, color=_BLUE,
                  label="median")
        axes.barh([p + 0.2 for p in positions], [r.p90_days or 0.0 for r in measured], height=0.4, color=_GREY,
                  label="90th percentile")
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()
        axes.set_xlabel("days in stage")
        axes.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, frameon=False)

    return _svg(draw, 0.8 + 0.35 * len(measured))


def _compliance_chart(rows: Sequence[ContactCompliance]) -> str | None:
    due = [r for r in rows if r.periods_due]
    if not due:
        return None
    shown = sorted(due, key=lambda r: (r.rate or 0.0, r.assignment_id))[:30]  # the 30 least compliant
    labels = _labels(f"#{r.assignment_id} {r.assignee} ({r.kind})" for r in shown)

    def draw(axes: Axes) -> None:
        axes.barh(labels, [r.periods_due for r in shown], color=_GREY, label="due")
        bars = axes.barh(labels, [r.periods_held for r in shown], color=_GREEN, label="held")
        axes.bar_label(bars, labels=[f"{r.periods_held} of {r.periods_due}" for r in shown], padding=3)
        axes.invert_yaxis()
        axes.set_xlabel("periods")
        _whole_numbers(axes)
        axes.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, frameon=False)

    return _svg(draw, 0.8 + 0.3 * len(shown))
