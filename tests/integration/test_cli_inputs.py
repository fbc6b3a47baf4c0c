"""What users type and import: every problem of a file at once, readable headers and encodings, bounded reports,
located workflow errors, and text free of control characters; each refusal leaves the database as it was."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine

from engine.program import assignments
from integration.conftest import Sojourn, snapshot
from integration.test_cli_errors import CSV_HEADER, assert_fails, csv_row, mutated_workflow

README = Path(__file__).parents[2] / "README.md"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def error_lines(stderr: str) -> list[str]:
    return [line.removeprefix("Error: ") for line in stderr.splitlines()]


# --- every problem of a file at once ----------------------------------------------------------------------------


def test_person_import_reports_an_over_long_line_and_every_other_bad_line(on_db: Sojourn, db_url: str,
                                                                          tmp_path: Path) -> None:
    """A line with more fields than the header is one problem among the others, not the only one reported."""
    file = write(tmp_path / "people.csv", "email,name,tz\nana@example.com,Ana,UTC,extra\nbad-1,A,UTC\nbad-2,B,UTC\n"
                 "c@example.com,,UTC\nd@example.com,D,Mars/Base\ne@example.com,E\x07,UTC\nok@example.com,Ok,UTC\n")
    before = snapshot(db_url)
    outcome = on_db("person", "import", str(file))
    assert_fails(outcome, 2, f"{file}: nothing imported; 6 line(s) to fix",
                 "line 2: 4 fields, but the header names 3 columns")
    assert re.findall(r", line (\d+):", outcome.stderr) == ["2", "3", "4", "5", "6", "7"]
    assert snapshot(db_url) == before


def test_assignment_import_reports_every_problem_of_a_line(on_db: Sojourn, db_url: str, people: dict[str, str],
                                                           tmp_path: Path) -> None:
    """A line with a bad date, a bad country and an unknown assignee reports all three, each with its line."""
    bad = csv_row(people, start="2026-13-01", assignee="nobody@example.com").replace(",BR,", ",Brazil,")
    file = write(tmp_path / "hr.csv", "\n".join([CSV_HEADER, csv_row(people), bad]) + "\n")
    before = snapshot(db_url)
    outcome = on_db("assignment", "import", str(file))
    assert_fails(outcome, 2, "nothing imported; 1 line(s) to fix",
                 f"{file}, line 3: start: '2026-13-01' is not a real date",
                 f"{file}, line 3: home: 'Brazil' is not a two-letter",
                 f"{file}, line 3: assignee: no person with email nobody@example.com")
    assert snapshot(db_url) == before


def test_import_caps_the_problems_it_prints_and_counts_the_rest(on_db: Sojourn, db_url: str,
                                                                tmp_path: Path) -> None:
    """A file with 150 bad lines prints 100 problems and one line counting the other 50."""
    file = write(tmp_path / "people.csv", "email,name\n" + "".join(f"bad-{i},Name\n" for i in range(150)))
    before = snapshot(db_url)
    outcome = on_db("person", "import", str(file))
    assert_fails(outcome, 2, "nothing imported; 150 line(s) to fix")
    lines = error_lines(outcome.stderr)
    assert len(lines) == 102
    assert lines[-1] == "... and 50 more problems"
    assert snapshot(db_url) == before


# --- headers, encodings and delimiters --------------------------------------------------------------------------


def test_person_import_matches_header_in_any_case_with_spaces_and_a_bom(on_db: Sojourn, tmp_path: Path) -> None:
    """`Email , Name,TZ` after a UTF-8 byte-order mark names the columns email, name and tz."""
    file = write(tmp_path / "people.csv", "\ufeffEmail , Name,TZ\nana@example.com,Ana Lima,Europe/Berlin\n")
    outcome = on_db("person", "import", str(file), "--json")
    assert outcome.code == 0, outcome.stderr
    assert [(p["email"], p["name"], p["tz"]) for p in json.loads(outcome.stdout)] == [
        ("ana@example.com", "Ana Lima", "Europe/Berlin")]


def test_assignment_import_matches_header_in_any_case(on_db: Sojourn, people: dict[str, str],
                                                      tmp_path: Path) -> None:
    """An upper-case header with spaces around the names imports like the documented one."""
    header = ", ".join(name.upper() for name in CSV_HEADER.split(","))
    file = write(tmp_path / "hr.csv", f"{header}\n{csv_row(people)}\n")
    outcome = on_db("assignment", "import", str(file), "--json")
    assert outcome.code == 0, outcome.stderr
    assert len(json.loads(outcome.stdout)) == 1


@pytest.mark.parametrize(("encoding", "guess"), [
    ("latin-1", "it seems to be Latin-1 (ISO-8859-1)"),
    ("cp1252", "it seems to be Windows-1252"),
    ("utf-16", "the file is UTF-16 text, not UTF-8"),
])
def test_import_of_a_file_not_in_utf8_names_its_encoding(on_db: Sojourn, db_url: str, tmp_path: Path,
                                                         encoding: str, guess: str) -> None:
    """A person file saved in another encoding is refused with the encoding it seems to use and how to convert."""
    file = write(tmp_path / "people.csv", "email,name\njose@example.com,José “Pepe” Núñez\n"
                 if encoding == "cp1252" else "email,name\njose@example.com,José Núñez\n", encoding)
    before = snapshot(db_url)
    assert_fails(on_db("person", "import", str(file)), 2, guess, "iconv -f")
    assert snapshot(db_url) == before


@pytest.mark.parametrize(("delimiter", "named"), [(";", "semicolons (;)"), ("\t", "tabs")], ids=["semicolon", "tab"])
def test_import_of_a_file_not_comma_separated_names_its_delimiter(on_db: Sojourn, db_url: str,
                                                                  people: dict[str, str], tmp_path: Path,
                                                                  delimiter: str, named: str) -> None:
    """An assignment file separated by semicolons or tabs is refused with the delimiter it seems to use."""
    text = f"{CSV_HEADER}\n{csv_row(people)}\n".replace(",", delimiter)
    file = write(tmp_path / "hr.csv", text)
    before = snapshot(db_url)
    assert_fails(on_db("assignment", "import", str(file)), 2, f"the header has no commas but {named}")
    assert snapshot(db_url) == before


# --- limits -----------------------------------------------------------------------------------------------------


def test_import_summarises_ten_thousand_unknown_columns_on_one_line(on_db: Sojourn, db_url: str,
                                                                    tmp_path: Path) -> None:
    """10,000 unknown columns are one error line naming the first ten and counting the rest."""
    header = ",".join(["email", "name", *(f"extra{i}" for i in range(10_000))])
    file = write(tmp_path / "people.csv", f"{header}\nana@example.com,Ana\n")
    before = snapshot(db_url)
    outcome = on_db("person", "import", str(file))
    assert_fails(outcome, 2, "line 1: unknown columns 'extra0', 'extra1'", "and 9,990 more")
    assert len(outcome.stderr.splitlines()) == 3
    assert snapshot(db_url) == before


def test_import_checks_a_header_of_a_million_columns(on_db: Sojourn, tmp_path: Path) -> None:
    """A header of a million repeated columns is checked in one pass and summarised (it used to take hours)."""
    file = write(tmp_path / "people.csv", "email,name," + ",".join(["x"] * 1_000_000) + "\n")
    outcome = on_db("person", "import", str(file))
    assert_fails(outcome, 2, "line 1: unknown column 'x'", "line 1: column 'x' appears more than once")
    assert len(outcome.stderr.splitlines()) == 4


def test_import_reports_a_field_over_the_csv_limit_by_line(on_db: Sojourn, db_url: str, tmp_path: Path) -> None:
    """A value longer than 131,072 characters is an error of its line, with the other lines still checked."""
    file = write(tmp_path / "people.csv", f"email,name\nana@example.com,{'A' * 200_000}\nbad,Bo\n")
    before = snapshot(db_url)
    outcome = on_db("person", "import", str(file))
    assert_fails(outcome, 2, "nothing imported; 2 line(s) to fix",
                 f"{file}, line 2: a field is longer than 131,072 characters", f"{file}, line 3: email")
    assert snapshot(db_url) == before


# --- workflow files ---------------------------------------------------------------------------------------------


def _schema_and_meaning_problems(definition: dict[str, Any]) -> None:
    del definition["stages"][1]["tasks"][0]["owner"]  # schema: the task is left out of the checks of meaning
    definition["stages"][1]["tasks"][1]["owner"] = "nobody"  # meaning: reported at its index as written
    definition["colour"] = "blue"
    definition["transitions"][0]["guards"].append("moon_phase")


def _guard_params_nested_list(definition: dict[str, Any]) -> None:
    definition["transitions"][1]["guards"] = [{"guard": "plan_signed_off", "params": {"roles": [["talent"]]}}]


def _cadence_in_final_stage(definition: dict[str, Any]) -> None:
    definition["cadences"][0]["until_stage"] = "completed"


def _control_characters_in_titles(definition: dict[str, Any]) -> None:
    definition["stages"][0]["title"] = "Interviews\nclick here"
    definition["stages"][0]["tasks"][0]["title"] = "Interview\x1b[31m"


@pytest.mark.parametrize(("change", "fragments"), [
    (_schema_and_meaning_problems, ["4 problem(s)", "stages[1].tasks[0].owner: Field required",
                                    "colour: Extra inputs", "stages[1].tasks[1].owner: unknown role 'nobody'",
                                    "transitions[0].guards[1].guard: unknown guard 'moon_phase'"]),
    (_guard_params_nested_list, ["transitions[1].guards[0].params.roles[0]: Input should be a valid string"]),
    (_cadence_in_final_stage, ["cadences[0].until_stage: the cadence runs in the final stage 'completed'",
                               "would never stop"]),
    (_control_characters_in_titles, ["stages[0].title: contains the control character U+000A (newline)",
                                     "stages[0].tasks[0].title: contains the control character U+001B"]),
], ids=["schema-and-meaning", "guard-params", "cadence-never-stops", "control-characters"])
def test_workflow_validate_reports_all_problems_in_one_run(sojourn: Sojourn, tmp_path: Path,
                                                           change: Callable[[dict[str, Any]], None],
                                                           fragments: list[str]) -> None:
    """Schema errors, problems of meaning, guard parameters and titles are reported together, each by its path."""
    path = write(tmp_path / "workflow.yaml", mutated_workflow(change))
    outcome = sojourn("workflow", "validate", str(path))
    assert_fails(outcome, 2, *fragments)
    assert all(line.startswith(f"Error: {path}") for line in outcome.stderr.splitlines())


def test_workflow_install_refuses_a_cadence_that_never_stops(on_db: Sojourn, db_url: str, tmp_path: Path) -> None:
    """Installing a workflow with a cadence running in a final stage exits 2 and installs nothing."""
    path = write(tmp_path / "workflow.yaml", mutated_workflow(_cadence_in_final_stage))
    before = snapshot(db_url)
    assert_fails(on_db("workflow", "install", str(path)), 2, "would never stop")
    assert snapshot(db_url) == before


def test_readme_workflow_example_validates(sojourn: Sojourn, tmp_path: Path) -> None:
    """The README's "Writing a workflow" example is a valid workflow."""
    section = README.read_text(encoding="utf-8").split("### Writing a workflow", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(example)["cadences"], "the example shows a cadence"
    outcome = sojourn("workflow", "validate", str(write(tmp_path / "my-program.yaml", example)))
    assert outcome.code == 0, outcome.stderr


# --- control characters ------------------------------------------------------------------------------------------


@pytest.fixture
def assignment_id(db: Engine, spec: assignments.AssignmentSpec, now: Any) -> int:
    """An assignment in stage interviews, so a refused write has rows to leave unchanged."""
    return assignments.create_assignment(db, spec, actor="setup@example.com", now=now).id


@pytest.mark.parametrize(("args", "fragment"), [
    (["person", "add", "eve@example.com", "--name", "Eve\nBEGIN:VEVENT"], "--name: contains the control character "
                                                                         "U+000A (newline)"),
    (["goal", "add", "{id}", "--title", "Lead\x1b[2J", "--measure", "m", "--target", "t", "--due", "2026-09-01"],
     "--title: contains the control character U+001B (escape)"),
    (["advance", "{id}", "--to", "cancelled", "--reason", "moved\non"], "--reason: contains the control character"),
    (["task", "done", "1", "--note", "done\x07"], "--note: contains the control character U+0007"),
    (["contact", "log", "{id}", "--kind", "sponsor_contact", "--with", "{sponsor}", "--notes", "a\x0cb"],
     "--notes: contains the control character U+000C"),
], ids=["person-name", "goal-title", "reason", "task-note", "contact-notes"])
def test_free_text_with_control_characters_is_refused(on_db: Sojourn, db_url: str, assignment_id: int,
                                                      people: dict[str, str], args: list[str],
                                                      fragment: str) -> None:
    """Names, titles, reasons and notes holding a control character exit 2, name the option, and write nothing."""
    filled = [a.format(id=assignment_id, sponsor=people["sponsor"]) for a in args]
    before = snapshot(db_url)
    assert_fails(on_db(*filled), 2, fragment)
    assert snapshot(db_url) == before


def test_a_note_may_hold_line_breaks(on_db: Sojourn, assignment_id: int) -> None:
    """A task note keeps its lines (Windows line ends become plain newlines): notes are the multi-line text."""
    outcome = on_db("task", "done", "1", "--note", "first line\r\nsecond line", "--json")
    assert outcome.code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["note"] == "first line\nsecond line"
