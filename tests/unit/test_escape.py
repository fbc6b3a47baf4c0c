"""The engine's escaping rules, one per format: CSV cells, Mermaid labels and ids, chart text."""

from __future__ import annotations

import pytest

from engine.domain.escape import csv_cell, literal_chart_text, mermaid_id, mermaid_label


@pytest.mark.parametrize("text", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://e","x")'])
def test_csv_cell_prefixes_text_a_spreadsheet_would_run_as_a_formula(text: str) -> None:
    """Text beginning with =, +, -, @, tab or carriage return gets a leading single quote (the OWASP rule)."""
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-3, -2.5, 0, 7, "Ana Lima", "2026-04-15", "a=b", ""])
def test_csv_cell_keeps_numbers_and_harmless_text(value: str | int | float) -> None:
    """Numbers Sojourn writes (negative ones too) and text that cannot start a formula are written unchanged."""
    assert csv_cell(value) == value


def test_csv_cell_writes_none_as_an_empty_cell() -> None:
    """A missing value is an empty cell."""
    assert csv_cell(None) == ""


@pytest.mark.parametrize(("text", "label"), [
    ("Plan agreed", "Plan agreed"),
    ("Line one\nline two\r\n\tthree", "Line one line two three"),
    ("a: b; c", "a#58; b#59; c"),
    ("50 %% off %%{init: {}}%%", "50 #37;#37; off #37;#37;#123;init#58; #123;#125;#125;#37;#37;"),
    ('<br> "q" #1', '#60;br#62; #34;q#34; #35;1'),
    ("Genève (O'Brien) 1.5/2, ok? yes! +1 -1", "Genève (O'Brien) 1.5/2, ok? yes! +1 -1"),
])
def test_mermaid_label_keeps_text_on_its_line_with_entity_codes_for_markup(text: str, label: str) -> None:
    """Whitespace collapses to single spaces; every character with a meaning in Mermaid becomes its entity code."""
    assert mermaid_label(text) == label


@pytest.mark.parametrize("text", ["Title review", "section B", "click here", "2027-01-01 kickoff", "EXCLUDES x"])
def test_mermaid_label_encodes_the_first_letter_of_text_that_begins_like_a_statement(text: str) -> None:
    """A label that begins like a gantt statement starts with an entity code, so it stays a task name."""
    assert mermaid_label(text) == f"#{ord(text[0])};{text[1:]}"


@pytest.mark.parametrize(("key", "state_id"), [("interviews", "interviews"), ("note", "S_note"),
                                               ("state", "S_state"), ("root_start", "S_root_start")])
def test_mermaid_id_prefixes_only_keys_mermaid_reads_as_words(key: str, state_id: str) -> None:
    """Stage keys are their own state ids unless a stateDiagram reads them as a keyword or its start/end state."""
    assert mermaid_id(key) == state_id


def test_literal_chart_text_turns_off_math_text() -> None:
    """Inside the block matplotlib parses no `$...$` as math and hands nothing to TeX."""
    import matplotlib

    with literal_chart_text():
        assert matplotlib.rcParams["text.parse_math"] is False
        assert matplotlib.rcParams["text.usetex"] is False
