"""`sojourn report` on a seeded program: the same known figures in table, CSV, JSON and HTML, on each backend."""

from __future__ import annotations

import csv
import errno
import io
import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine

from engine.program import advance, assignments, contacts, plans, tasks
from integration.conftest import Sojourn, snapshot
from tests.support.browser import visit

ACTOR = "mo.mobility@example.com"
SEEDED_AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # noon UTC: the same calendar day in every zone of the cast
A3_CANCELLED_AFTER = 5  # days after creation
A1_INTERVIEWS_DAYS, A2_INTERVIEWS_DAYS, A1_PLAN_DAYS = 10, 20, 20
A1_ORIENTATION_AT = SEEDED_AT + timedelta(days=A1_INTERVIEWS_DAYS + A1_PLAN_DAYS)
REPORTED_AT = SEEDED_AT + timedelta(days=100)  # 2026-04-15
CANCEL_REASON = "the assignee declined the move"
SPONSOR_CONTACTS = [date(2026, 2, 20), date(2026, 4, 10)]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _at(days: int) -> datetime:
    return SEEDED_AT + timedelta(days=days)


def _finish_stage_tasks(db: Engine, view: dict[str, Any], at: datetime) -> None:
    for task in view["tasks"]:
        if task["stage"] == view["stage"] and task["status"] == "open":
            tasks.complete_task(db, task["id"], note=None, actor=ACTOR, now=at)


def _advance(db: Engine, assignment_id: int, at: datetime, **options: Any) -> None:
    with freeze_time(at):
        view = assignments.show_assignment(db, assignment_id, now=at).view()
        if options.get("to") is None:
            _finish_stage_tasks(db, view, at)
        advance.advance(db, assignment_id, to=options.get("to"), reason=options.get("reason"), actor=ACTOR, now=at)


def seed_program(db: Engine, spec: assignments.AssignmentSpec) -> dict[str, int]:
    """Four assignments with a known history (dates in days after SEEDED_AT, 2026-01-05):

    a1  DE, 2026-03-01 to 2027-08-31: interviews 10 days, plan_agreed 20 days, in orientation since day 30;
        sponsor contacts logged on 2026-02-20 and 2026-04-10
    a2  DE, 2026-03-01 to 2026-09-30: interviews 20 days, in plan_agreed since day 20
    a3  DE, 2026-06-01 to 2026-12-31: cancelled from interviews on day 5
    a4  US, 2027-01-04 to 2027-12-31: in interviews since day 0
    """
    specs = {"a1": spec, "a2": replace(spec, end="2026-09-30"),
             "a3": replace(spec, start="2026-06-01", end="2026-12-31"),
             "a4": replace(spec, host="US", start="2027-01-04", end="2027-12-31")}
    ids = {}
    with freeze_time(SEEDED_AT):
        for name, each in specs.items():
            ids[name] = assignments.create_assignment(db, each, actor=ACTOR, now=SEEDED_AT).id
    _advance(db, ids["a3"], _at(A3_CANCELLED_AFTER), to="cancelled", reason=CANCEL_REASON)
    _advance(db, ids["a1"], _at(A1_INTERVIEWS_DAYS))
    _advance(db, ids["a2"], _at(A2_INTERVIEWS_DAYS))
    with freeze_time(A1_ORIENTATION_AT):
        plans.add_goal(db, ids["a1"], title="Lead the DACH sales team", measure="quarterly revenue", target="+10%",
                       due="2027-06-30", actor=ACTOR, now=A1_ORIENTATION_AT)
        for role in ("assignee", "sending_manager", "host_manager", "talent", "mobility"):
            plans.sign_plan(db, ids["a1"], role=role, by=None, actor=ACTOR, now=A1_ORIENTATION_AT)
    _advance(db, ids["a1"], A1_ORIENTATION_AT)
    with freeze_time(REPORTED_AT):
        for day in SPONSOR_CONTACTS:
            contacts.log_contact(db, ids["a1"], kind="sponsor_contact", with_email=spec.stakeholders["sponsor"],
                                 on=day.isoformat(), notes=None, actor=ACTOR, now=REPORTED_AT)
    return ids


def expected_figures(ids: dict[str, int], people: dict[str, str]) -> dict[str, Any]:
    """The figures worked out by hand from the seed, as of REPORTED_AT (2026-04-15)."""
    interviews_stays = sorted([A3_CANCELLED_AFTER, A1_INTERVIEWS_DAYS, A2_INTERVIEWS_DAYS])  # 5, 10, 20
    # The leadership-development task offsets: interviews 14 days (coach, two tasks); plan_agreed 14 days (coach)
    # and 21 days (talent); orientation 14 and 21 days (mobility).
    coach_oldest = SEEDED_AT.date() + timedelta(days=14)  # a4's interviews, never done
    talent_due = _at(A2_INTERVIEWS_DAYS).date() + timedelta(days=21)  # a2's plan_agreed share task
    mobility_oldest = A1_ORIENTATION_AT.date() + timedelta(days=14)  # a1's orientation tasks
    # a1 entered orientation (2026-02-04) before its start (2026-03-01), so sponsor contact is anchored on the start:
    # period 03-01..03-31 has ended with its 7 grace days (checked 04-08) by 04-15; 04-01..04-30 has not.
    # 2026-02-20 precedes every period, so it holds none; 2026-04-10 falls in the second, not due yet.
    return {
        "assignments": 4,
        "pipeline": {"interviews": 1, "plan_agreed": 1, "orientation": 1, "manager_briefing": 0,
                     "alignment_meetings": 0, "coaching": 0, "repatriation": 0, "completed": 0, "cancelled": 1},
        "stage_durations": {"interviews": (3, float(interviews_stays[1]), float(interviews_stays[2])),
                            "plan_agreed": (1, float(A1_PLAN_DAYS), float(A1_PLAN_DAYS))},
        "overdue": [(people["coach"], "coach", 3, 2, coach_oldest.isoformat()),
                    (people["mobility"], "mobility", 2, 1, mobility_oldest.isoformat()),
                    (people["talent"], "talent", 1, 1, talent_due.isoformat())],
        "contact_compliance": [(ids["a1"], "sponsor_contact", 0, 1)],
        "upcoming_repatriations": [(ids["a2"], "2026-09-30", (date(2026, 9, 30) - REPORTED_AT.date()).days)],
        "cancellations": [(ids["a3"], "interviews", _at(A3_CANCELLED_AFTER).date().isoformat(), CANCEL_REASON)],
    }


@pytest.fixture
def seeded(db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> dict[str, Any]:
    return expected_figures(seed_program(db, spec), people)


def report(on_db: Sojourn, *args: str) -> str:
    with freeze_time(REPORTED_AT):
        outcome = on_db("report", *args)
    assert outcome.code == 0, outcome
    return outcome.stdout


# --- JSON -------------------------------------------------------------------------------------------------------


def test_json_report_gives_the_seeded_figures(on_db: Sojourn, seeded: dict[str, Any]) -> None:
    """--format json counts stages, stage stays, overdue work, contact periods, repatriations and cancellations."""
    figures = json.loads(report(on_db, "--format", "json"))
    assert figures["assignments"] == seeded["assignments"]
    assert {p["stage"]: p["assignments"] for p in figures["pipeline"]} == seeded["pipeline"]
    durations = {d["stage"]: (d["stays"], d["median_days"], d["p90_days"]) for d in figures["stage_durations"]}
    assert {stage: durations[stage] for stage in seeded["stage_durations"]} == seeded["stage_durations"]
    assert all(durations[s] == (0, None, None) for s in durations if s not in seeded["stage_durations"])
    assert [(o["owner"], o["role"], o["tasks"], o["assignments"], o["oldest_due_on"])
            for o in figures["overdue"]] == seeded["overdue"]
    assert [(c["assignment_id"], c["kind"], c["periods_held"], c["periods_due"])
            for c in figures["contact_compliance"]] == seeded["contact_compliance"]
    assert figures["contact_compliance"][0]["rate"] == 0.0
    assert [(r["assignment_id"], r["end"], r["days_left"])
            for r in figures["upcoming_repatriations"]] == seeded["upcoming_repatriations"]
    outcome = figures["outcomes"]
    assert (outcome["completed"], outcome["cancelled"], outcome["recorded"]) == (0, 1, [])
    assert [(c["assignment_id"], c["from_stage"], c["on"], c["reason"])
            for c in outcome["cancellations"]] == seeded["cancellations"]


def test_json_flag_is_format_json_and_output_writes_the_file(on_db: Sojourn, seeded: dict[str, Any],
                                                             tmp_path: Path) -> None:
    """--json prints the same document as --format json; --output writes it to a file and prints nothing on stdout."""
    printed = report(on_db, "--json")
    assert printed == report(on_db, "--format", "json")
    target = tmp_path / "report.json"
    assert report(on_db, "--format", "json", "--output", str(target)) == ""
    assert target.read_text(encoding="utf-8") == printed
    assert json.loads(printed)["assignments"] == seeded["assignments"]


def test_filters_select_assignments_by_host_start_year_and_workflow(on_db: Sojourn, seeded: dict[str, Any],
                                                                    people: dict[str, str]) -> None:
    """--host, --start-year and --workflow narrow every figure to the assignments they select."""
    hosted_in_us = json.loads(report(on_db, "--json", "--host", "us"))
    assert hosted_in_us["filters"]["host"] == "US"
    assert hosted_in_us["assignments"] == 1
    assert [(o["owner"], o["tasks"]) for o in hosted_in_us["overdue"]] == [(people["coach"], 2)]
    started_2026 = json.loads(report(on_db, "--json", "--start-year", "2026"))
    assert started_2026["assignments"] == seeded["assignments"] - 1
    assert sum(p["assignments"] for p in started_2026["pipeline"] if p["stage"] == "interviews") == 0
    other = json.loads(report(on_db, "--json", "--workflow", "short-term-project"))
    assert other["assignments"] == 0
    assert {p["workflow"] for p in other["pipeline"]} == {"short-term-project"}
    assert all(p["assignments"] == 0 for p in other["pipeline"])


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--host", "Germany", "two-letter"),
    ("--start-year", "1800", "between 1950 and 2200"),
    ("--start-year", "last", "not a valid integer"),
    ("--format", "pdf", "pdf"),
])
def test_bad_filter_values_exit_2_and_change_nothing(on_db: Sojourn, db_url: str, option: str, value: str,
                                                     message: str) -> None:
    """A malformed or unknown filter value is an `Error:` line with exit 2, no traceback, and no write."""
    before = snapshot(db_url)
    with freeze_time(REPORTED_AT):
        outcome = on_db("report", option, value)
    assert outcome.code == 2
    assert outcome.stdout == ""
    assert outcome.stderr.startswith("Error:")
    assert message in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert snapshot(db_url) == before


def test_unwritable_output_exits_2_and_keeps_an_earlier_file(on_db: Sojourn, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """--output in a folder that does not exist is an `Error:` line with exit 2; an earlier FILE stays whole when a
    later write cannot finish, because the report is written beside it and renamed over it only when complete."""
    with freeze_time(REPORTED_AT):
        missing = on_db("report", "--output", str(tmp_path / "no-such-folder" / "report.txt"))
    assert (missing.code, missing.stdout) == (2, "")
    assert missing.stderr.startswith("Error: --output: cannot write")
    assert "Traceback" not in missing.stderr
    target = tmp_path / "report.txt"
    target.write_text("the report of last week", encoding="utf-8")

    def disk_full(self: Path, other: Path) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "replace", disk_full)
    with freeze_time(REPORTED_AT):
        blocked = on_db("report", "--output", str(target))
    assert blocked.code == 2
    assert blocked.stderr.startswith("Error: --output: cannot write")
    assert target.read_text(encoding="utf-8") == "the report of last week"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report.txt")] == []  # nothing left behind


# --- table and CSV ----------------------------------------------------------------------------------------------


def table_sections(text: str) -> dict[str, list[dict[str, str]]]:
    """The printed tables by title: each row as {HEADER: cell}, columns split on runs of two or more spaces."""
    found = {}
    for block in text.strip().split("\n\n")[1:]:
        title, header, *rows = block.splitlines()
        if header == "(none)":
            found[title] = []
            continue
        names = re.split(r"\s{2,}", header)
        found[title] = [dict(zip(names, re.split(r"\s{2,}", row), strict=True)) for row in rows]
    return found


def test_table_report_gives_the_seeded_figures(on_db: Sojourn, seeded: dict[str, Any]) -> None:
    """The default table format shows the same figures, one titled table per section."""
    text = report(on_db)
    assert text.startswith(f"Sojourn program report as of {REPORTED_AT.isoformat()}: 4 assignment(s)")
    tables = table_sections(text)
    assert {r["STAGE"]: int(r["ASSIGNMENTS"]) for r in tables["Assignments per stage"]} == seeded["pipeline"]
    durations = {r["STAGE"]: r for r in tables["Days spent in each stage (stays that ended)"]}
    for stage, (stays, median, p90) in seeded["stage_durations"].items():
        assert (durations[stage]["STAYS"], durations[stage]["MEDIAN_DAYS"], durations[stage]["P90_DAYS"]) == (
            str(stays), f"{median:.1f}", f"{p90:.1f}")
    assert durations["coaching"]["MEDIAN_DAYS"] == "-"
    assert [(r["OWNER"], r["ROLE"], int(r["TASKS"]), int(r["ASSIGNMENTS"]), r["OLDEST_DUE_ON"])
            for r in tables["Overdue tasks by owner and role"]] == seeded["overdue"]
    compliance = tables["Contact compliance (periods held of periods due)"]
    assert [(int(r["ASSIGNMENT_ID"]), r["KIND"], int(r["PERIODS_HELD"]), int(r["PERIODS_DUE"]))
            for r in compliance] == seeded["contact_compliance"]
    assert compliance[0]["RATE"] == "0%"
    assert [(int(r["ASSIGNMENT_ID"]), r["END"], int(r["DAYS_LEFT"]))
            for r in tables["Upcoming repatriations (end within 180 days)"]] == seeded["upcoming_repatriations"]
    assert {r["MEASURE"]: r["VALUE"] for r in tables["Outcomes"]} == {
        "completed": "0", "cancelled": "1", "outcomes recorded after return": "0",
        "retained at 12 months": "0 of 0 recorded", "retained at 24 months": "0 of 0 recorded",
        "considered for promotion": "0", "promoted": "0", "impact statements": "0"}
    assert [(int(r["ASSIGNMENT_ID"]), r["FROM_STAGE"], r["ON"], r["REASON"])
            for r in tables["Cancellations"]] == seeded["cancellations"]


def csv_sections(text: str) -> dict[str, list[dict[str, str]]]:
    """The CSV's blocks (separated by blank lines), each read with its own header row, by section key."""
    found = {}
    for block in text.strip("\n").split("\n\n"):
        rows = list(csv.DictReader(io.StringIO(block)))
        assert len({r["section"] for r in rows}) <= 1
        if rows:
            found[rows[0]["section"]] = rows
    return found


def test_csv_report_gives_the_seeded_figures(on_db: Sojourn, seeded: dict[str, Any]) -> None:
    """--format csv writes one block per section, every row keyed by its section in the first column."""
    sections = csv_sections(report(on_db, "--format", "csv"))
    assert {r["stage"]: int(r["assignments"]) for r in sections["pipeline"]} == seeded["pipeline"]
    durations = {r["stage"]: (int(r["stays"]), r["median_days"], r["p90_days"]) for r in sections["stage_durations"]}
    assert {s: (n, float(m), float(p)) for s, (n, m, p) in durations.items() if n} == seeded["stage_durations"]
    assert durations["coaching"] == (0, "", "")
    assert [(r["owner"], r["role"], int(r["tasks"]), int(r["assignments"]), r["oldest_due_on"])
            for r in sections["overdue"]] == seeded["overdue"]
    assert [(int(r["assignment_id"]), r["kind"], int(r["periods_held"]), int(r["periods_due"]))
            for r in sections["contact_compliance"]] == seeded["contact_compliance"]
    assert float(sections["contact_compliance"][0]["rate"]) == 0.0
    assert [(int(r["assignment_id"]), r["end"], int(r["days_left"]))
            for r in sections["upcoming_repatriations"]] == seeded["upcoming_repatriations"]
    assert [(int(r["assignment_id"]), r["from_stage"], r["on"], r["reason"])
            for r in sections["cancellations"]] == seeded["cancellations"]


# --- HTML -------------------------------------------------------------------------------------------------------


class ReportPage(HTMLParser):
    """Reads the report page: each section's table rows (cell texts) and how many charts and scripts it has."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.charts: dict[str, int] = {}
        self.fetching_attributes: list[tuple[str, str]] = []
        self.scripts = 0
        self._section: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.fetching_attributes += [(name, value or "") for name, value in attrs
                                     if name in ("src", "href", "xlink:href") and not (value or "").startswith("#")]
        self.scripts += tag == "script"
        if tag == "section":
            self._section = named["id"]
            self.tables[self._section], self.charts[self._section] = [], 0
        elif tag == "svg" and self._section:
            self.charts[self._section] += 1
        elif tag == "tr" and self._section:
            self.tables[self._section].append([])
        elif tag == "td":
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._section:
            self.tables[self._section][-1].append("".join(self._cell))
            self._cell = None


def test_html_report_gives_the_seeded_figures_with_four_inline_charts(on_db: Sojourn, seeded: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    """--format html is one page with the figures in tables and SVG charts of pipeline, overdue work, stage
    durations and contact compliance, with no script and nothing to fetch."""
    target = tmp_path / "report.html"
    report(on_db, "--format", "html", "--output", str(target))
    page = ReportPage()
    page.feed(target.read_text(encoding="utf-8"))
    assert page.scripts == 0
    assert page.fetching_attributes == []
    assert {key: count for key, count in page.charts.items() if count} == {
        "pipeline": 1, "overdue": 1, "stage_durations": 1, "contact_compliance": 1}
    rows = {key: [r for r in table if r] for key, table in page.tables.items()}
    assert {r[1]: int(r[2]) for r in rows["pipeline"]} == seeded["pipeline"]
    assert {r[1]: (int(r[2]), float(r[3]), float(r[4])) for r in rows["stage_durations"] if r[2] != "0"} == \
        seeded["stage_durations"]
    assert [(r[0], r[2], int(r[3]), int(r[4]), r[5]) for r in rows["overdue"]] == seeded["overdue"]
    assert [(int(r[0]), r[2], int(r[3]), int(r[4])) for r in rows["contact_compliance"]] == \
        seeded["contact_compliance"]
    assert [(int(r[0]), r[5], int(r[6])) for r in rows["upcoming_repatriations"]] == seeded["upcoming_repatriations"]
    assert [(int(r[0]), r[2], r[3], r[4]) for r in rows["cancellations"]] == seeded["cancellations"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("seeded")
def test_html_report_opens_in_chromium_without_errors_or_network_requests(on_db: Sojourn, tmp_path: Path) -> None:
    """Headless Chromium shows the page with no console message and no request but the file itself; the
    screenshot is kept under tests/artifacts/ to look at."""
    target = tmp_path / "report.html"
    report(on_db, "--format", "html", "--output", str(target))
    shown = visit(target.as_uri())
    screenshot = tmp_path / "report.png"
    screenshot.write_bytes(shown.screenshot_png)
    ARTIFACTS.mkdir(exist_ok=True)
    kept = shutil.copyfile(screenshot, ARTIFACTS / "report.png")
    print(f"report screenshot: {kept}")
    assert shown.console == []
    assert shown.requested_urls == [target.as_uri()]
    assert shown.screenshot_png.startswith(b"\x89PNG")


def test_browser_helper_reports_requests_and_console_errors_of_a_page_that_fetches(tmp_path: Path) -> None:
    """The helper would catch a page that fetches: its request and the console error of the failed load show up."""
    page = tmp_path / "fetching.html"
    missing = "http://127.0.0.1:9/missing.png"  # the discard port: nothing answers
    page.write_text(f'<!DOCTYPE html><html><body><img src="{missing}"></body></html>', encoding="utf-8")
    shown = visit(page.as_uri())
    assert shown.requested_urls == [page.as_uri(), missing]
    assert shown.console_errors != []
