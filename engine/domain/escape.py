"""How user text is made safe in each format the engine writes: one rule per format, each in one function here.

Names, titles, notes and reasons come from people and files Sojourn does not control, so every writer of a format
passes user text through that format's rule here and nowhere else:

- CSV (`report --format csv`): `csv_cell`.
- HTML (the report page): `html_environment`, whose templates escape every value they are given.
- Charts drawn by matplotlib (inside the HTML report): `literal_chart_text`.
- Mermaid (`workflow show --diagram`, `assignment show --gantt`): `mermaid_label` for text, `mermaid_id` for ids.

The notifiers write their own formats (Slack/Teams text, email headers); their rules are in `notifiers.escape`,
because the notifiers import nothing from the engine. iCalendar text is escaped by the icalendar library.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment

# --- CSV --------------------------------------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str | int | float | None) -> str | int | float:
    """A CSV cell that a spreadsheet shows as written (the OWASP CSV-injection rule).

    Text beginning with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula by Excel,
    LibreOffice or Google Sheets (`=HYPERLINK(...)` leaks data on a click), so it gets a leading single quote, which
    spreadsheets hide. Numbers are left as they are: Sojourn writes them itself, and `-3` must stay a number a
    spreadsheet can add up. Empty (None) is an empty cell.
    """
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


# --- HTML -------------------------------------------------------------------------------------------------------


def html_environment(package: str) -> Environment:
    """A Jinja2 environment for the templates of `package` (its `templates` folder) that HTML-escapes every value.

    Autoescaping is on for every template, so a name like `<script>` is shown, never run; only values wrapped in
    `markupsafe.Markup` by the caller (markup Sojourn made itself, such as a chart's SVG) are written unescaped.
    A misspelt variable is an error rather than an empty string.
    """
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader(package, "templates"), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


# --- matplotlib ---------------------------------------------------------------------------------------------------

def literal_chart_text() -> AbstractContextManager[None]:
    """matplotlib settings, for a `with` block around a chart, that draw every label as the literal text it is.

    By default matplotlib reads text between two `$` as math (`$\\frac$` in a name raises an exception and `$x$` is
    drawn in italics); inside this block no text is parsed at all (nor handed to TeX). matplotlib's SVG writer
    escapes the text it puts in the file itself.
    """
    import matplotlib

    return matplotlib.rc_context({"text.parse_math": False, "text.usetex": False})


# --- Mermaid ------------------------------------------------------------------------------------------------------

# Mermaid words that start a statement when they begin a line: a gantt task whose name begins with one of them
# turns into that statement (`Title review` retitles the chart). Matched case-insensitively, as Mermaid does.
_MERMAID_KEYWORDS = re.compile(
    r"(accTitle|accDescr|accDescription|href|call|click|gantt|dateFormat|inclusiveEndDates|topAxis|axisFormat"
    r"|tickInterval|includes|excludes|todayMarker|weekday|weekend|title|section|\d{4}-\d\d-\d\d)", re.IGNORECASE)
_MERMAID_PLAIN_PUNCTUATION = frozenset(" .,-_()/'!?+")


def mermaid_label(text: str) -> str:
    """Text for one Mermaid label (a state's description, a gantt title, section or task name) that stays one label.

    Whitespace runs, line breaks included, become one space, so the text cannot end its line. Every character
    other than a letter, a digit, a space and `.,-_()/'!?+` is written as a Mermaid entity code (`:` as `#58;`),
    which Mermaid shows as the character itself: so `:` and `;` cannot end the label, `%%` cannot start a comment
    or a `%%{init}%%` directive, `#` cannot start a comment, and `<br>` or quotes are shown, not interpreted.
    A label that begins like a Mermaid keyword (`title`, `section`, a date...) has its first character encoded.
    """
    words = " ".join(text.split())
    encoded = "".join(ch if ch.isalnum() or ch in _MERMAID_PLAIN_PUNCTUATION else f"#{ord(ch)};" for ch in words)
    if _MERMAID_KEYWORDS.match(encoded):
        encoded = f"#{ord(encoded[0])};{encoded[1:]}"
    return encoded


_MERMAID_RESERVED_IDS = frozenset({
    "state", "note", "class", "classdef", "style", "click", "scale", "default", "direction", "end", "hide",
    "as", "fork", "join", "choice", "concurrent", "left", "right", "of", "over", "acctitle", "accdescr",
    "root_start", "root_end"})


def mermaid_id(key: str) -> str:
    """A state id for a stage key (`[a-z][a-z0-9_]*`) that a stateDiagram reads as an id.

    Keys are identifiers already, but some are Mermaid words (`note`, `state`, `class`...) that a stateDiagram
    reads as a statement, or ids Mermaid gives its own start and end states. Those get an `S_` prefix, which no
    stage key can have (keys are lower case); every other key is its own id, as the diagram's reader expects.
    """
    return f"S_{key}" if key.lower() in _MERMAID_RESERVED_IDS else key
