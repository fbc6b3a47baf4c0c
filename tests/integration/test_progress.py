"""Long commands tell a progress callback how far they are, and the CLI draws no bar when stderr is not a terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from engine.planning.forecast import ForecastOptions, forecast_new
from engine.program import assignments, imports
from engine.reporting.figures import program_report
from integration.conftest import Sojourn

ROLES = ("sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility")


class Steps:
    """A progress callback that keeps every (done, total) it is told."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.seen.append((done, total))

    def climbs_to_the_end(self) -> bool:
        done = [d for d, _ in self.seen]
        return bool(self.seen) and done == sorted(done) and self.seen[-1][0] == self.seen[-1][1] > 0


def _csv(tmp_path: Path, people: dict[str, str], lines: int) -> Path:
    row = ",".join(["leadership-development", people["assignee"], "BR", "DE", "2026-03-01", "2027-08-31",
                    *(people[r] for r in ROLES)])
    path = tmp_path / "cohort.csv"
    path.write_text("\n".join(["workflow,assignee,home,host,start,end," + ",".join(ROLES), *[row] * lines]) + "\n",
                    encoding="utf-8")
    return path


def test_forecast_reports_the_days_replayed_up_to_the_end_date(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """The replay tells `progress` the days done out of the days to the latest end date, ending at the total."""
    steps = Steps()
    forecast_new(db, spec, options=ForecastOptions(), progress=steps)
    assert steps.climbs_to_the_end()
    start, end = datetime.fromisoformat(str(spec.start)), datetime.fromisoformat(str(spec.end))
    assert steps.seen[-1][1] == (end - start).days - 1  # it starts at the local hour of the start day
    assert len(steps.seen) > 10


def test_import_reports_each_line_checked_then_the_write(db: Engine, people: dict[str, str],
                                                         tmp_path: Path) -> None:
    """Three lines: three steps while checking (of six), then six when written."""
    steps = Steps()
    imports.import_assignments(db, _csv(tmp_path, people, 3).read_text(encoding="utf-8"), source="cohort.csv",
                               actor="admin", now=datetime.now(UTC), progress=steps)
    assert steps.seen == [(1, 6), (2, 6), (3, 6), (6, 6)]


def test_report_reports_reading_then_computing(db: Engine) -> None:
    """The report's two halves: the rows read, then the figures computed."""
    steps = Steps()
    program_report(db, now=datetime.now(UTC), progress=steps)
    assert steps.seen == [(1, 2), (2, 2)]


def test_no_progress_bar_is_drawn_when_stderr_is_not_a_terminal(on_db: Sojourn, people: dict[str, str],
                                                                tmp_path: Path) -> None:
    """Forecast, import and report write nothing on a stderr that is a pipe or a file: no bar, no label."""
    imported = on_db("assignment", "import", str(_csv(tmp_path, people, 2)), "--allow-overlap")
    assert (imported.code, imported.stderr) == (0, "")
    forecast = on_db("forecast", "1", "2", "--until", "2027-03-31")
    assert (forecast.code, forecast.stderr) == (0, "")
    assert "task_due" in forecast.stdout
    report = on_db("report")
    assert (report.code, report.stderr) == (0, "")
