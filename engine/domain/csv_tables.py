"""CSV tables that users import: one reader for every import, so each gets the same header rules and reports.

A table is read whole before anything is written. Its header names the columns, matched without regard to case or
surrounding spaces; a header that is wrong stops the import at once (its lines cannot be read without it), while
every problem of every line is collected, so one run lists all there is to fix (up to `inputs.MAX_PROBLEMS`).
The reader keeps to linear work whatever the file holds: a header of a million columns is checked in one pass and its
unknown columns summarised on one line, and a field longer than the csv module's limit is a problem of its line.
"""

from __future__ import annotations

import _csv
import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from engine.domain import inputs
from engine.domain.errors import BadInput

# Delimiters a spreadsheet may have used instead of the comma, as users name them.
_OTHER_DELIMITERS = {";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}
_SHOWN_NAMES = 10  # how many unknown or repeated column names a header problem spells out
_SHOWN_NAME_LENGTH = 40


@dataclass(frozen=True)
class TableSpec:
    """The columns an import takes: `required` ones must be in the header, `optional` ones may be."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


@dataclass(frozen=True)
class TableRow:
    """One line of the table: its line number in the file and its value in every header column, stripped."""

    line: int
    values: dict[str, str]


@dataclass
class LineProblems:
    """Problems found in a file, by line; raised together, in line order and capped, as one BadInput."""

    source: str
    by_line: dict[int, list[str]] = field(default_factory=dict)

    def add(self, line: int, message: str) -> None:
        self.by_line.setdefault(line, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_line)

    def raise_if_any(self) -> None:
        if not self.by_line:
            return
        details = [f"{self.source}, line {line}: {message}"
                   for line in sorted(self.by_line) for message in self.by_line[line]]
        raise BadInput(f"{self.source}: nothing imported; {len(self.by_line)} line(s) to fix",
                       details=inputs.capped(details))


@dataclass(frozen=True)
class Table:
    """A table read from a file: its columns (normalised, in file order), its good lines, and what is wrong."""

    columns: tuple[str, ...]
    rows: tuple[TableRow, ...]
    problems: LineProblems


def read_table(data: bytes | str, spec: TableSpec, *, source: str) -> Table:
    """Decode and parse `data` as comma-separated UTF-8 text whose first line names the columns of `spec`.

    Raises BadInput when the file cannot be a table of these columns (wrong encoding or delimiter, a wrong header,
    no lines after the header). Problems of single lines are returned in `problems` for the caller to add its own to.
    """
    text = inputs.utf8_text(data, source) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    records = _records(reader)
    line, header = next(records, (0, []))
    if isinstance(header, str):
        raise BadInput(f"{source}, line {line}: {header}")
    if not any(h.strip() for h in header):
        raise BadInput(f"{source}: empty file; the first line must name the columns",
                       details=[f"columns: {', '.join(spec.columns)}"])
    columns = _header(header, spec, source, text)
    problems = LineProblems(source)
    rows: list[TableRow] = []
    for line, fields in records:
        if isinstance(fields, str):
            problems.add(line, fields)
        elif len(fields) > len(columns):
            problems.add(line, f"{len(fields)} fields, but the header names {len(columns)} columns")
        elif fields:
            values = dict(zip(columns, (f.strip() for f in fields), strict=False))
            rows.append(TableRow(line, {c: values.get(c, "") for c in columns}))
    if not rows and not problems:
        raise BadInput(f"{source}: no lines after the header line")
    return Table(columns, tuple(rows), problems)


def _records(reader: _csv.Reader) -> Iterator[tuple[int, list[str] | str]]:
    """Each record with the number of the line it ends on, or, for a record the csv module cannot read, why not
    (the reader goes on with the next record, so one bad line hides none after it)."""
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, _csv_problem(exc)
            continue
        yield reader.line_num, fields


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"a field is longer than {csv.field_size_limit():,} characters, the most a value may hold"
    return f"not readable as CSV: {exc}"


def _header(header: list[str], spec: TableSpec, source: str, text: str) -> tuple[str, ...]:
    """The header's column names as `spec` spells them (matched without case or surrounding spaces); every problem
    with them raised at once."""
    spelling = {c.lower(): c for c in spec.columns}
    names = tuple(spelling.get(h.strip().lower(), h.strip()) for h in header)
    unknown = list(dict.fromkeys(h for h in names if h.lower() not in spelling))
    counts = Counter(names)
    repeated = [h for h, n in counts.items() if n > 1]
    missing = [c for c in spec.required if c not in counts]
    if not (unknown or repeated or missing):
        return names
    details = []
    delimiter = _other_delimiter(text)
    if delimiter and len(header) == 1:
        details.append(f"{source}, line 1: the header has no commas but {delimiter}: this reads comma-separated "
                       "files only; save the file as CSV with commas (e.g. 'CSV UTF-8' in a spreadsheet)")
    else:
        if unknown:
            details.append(f"{source}, line 1: unknown column{_names(unknown)}")
        details += [f"{source}, line 1: missing column {c!r}" for c in missing]
        if repeated:
            details.append(f"{source}, line 1: column{_names(repeated)} appear{'s' if len(repeated) == 1 else ''} "
                           "more than once")
    details.append(f"{source}, line 1: the columns are: {', '.join(spec.columns)} (any case, in any order)")
    raise BadInput(f"{source}: the header is wrong", details=details)


def _names(names: list[str]) -> str:
    """' x', or 's x, y, ... and N more': a list of column names short enough for one line, however many."""
    shown = ", ".join(repr(n if len(n) <= _SHOWN_NAME_LENGTH else n[:_SHOWN_NAME_LENGTH] + "...")
                      for n in names[:_SHOWN_NAMES])
    more = f" and {len(names) - _SHOWN_NAMES:,} more" if len(names) > _SHOWN_NAMES else ""
    return f" {shown}" if len(names) == 1 else f"s {shown}{more}"


def _other_delimiter(text: str) -> str | None:
    """How the first line seems to separate its fields, when it has no comma but another usual delimiter."""
    first = text.split("\n", 1)[0]
    if "," in first:
        return None
    counts = {name: first.count(d) for d, name in _OTHER_DELIMITERS.items() if first.count(d)}
    return max(counts, key=lambda name: counts[name]) if counts else None
