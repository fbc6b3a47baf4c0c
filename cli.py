"""Sojourn's command line: parses, calls one engine use case, renders the result as text or JSON.

Engine modules are imported inside commands so `sojourn --help` does not pay for SQLAlchemy and friends.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import click

from engine.domain.inputs import EARLY_RETURN_REASONS
from engine.domain.notices import NoticeStatus
from engine.domain.views import plain

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from engine.delivery.config import Settings
    from engine.delivery.outbox import DaemonStatus, OutboxNotification
    from engine.domain.workflow_diff import FieldChange
    from engine.program.assignments import AssignmentShown
    from engine.program.changes import EndExtended, StakeholderChanged
    from engine.program.checkins import CheckinLine
    from engine.program.competencies import Baseline
    from engine.program.logging import LogFormat
    from engine.program.migration import Migration, WorkflowDiff
    from engine.program.outcomes import OutcomeRecorded
    from engine.program.plans import ChangeMade, PlanView
    from engine.program.records import AssignmentView, OutcomeView, RoleHolder, TaskView
    from engine.program.workflows import WorkflowShown
    from engine.reporting.figures import CompetencyGrowth, StageCount
    from engine.reporting.objectives import ObjectiveRollup
    from engine.reporting.summary import ProgramSummary


class Context:
    """What every command shares: the resolved settings and, once asked for, the database."""

    def __init__(self, db: str | None, config: str | None, actor: str | None, log_format: LogFormat = "auto") -> None:
        self._db_url, self._config, self._actor = db, config, actor
        self.log_format = log_format
        self._settings: Settings | None = None
        self._db: Engine | None = None

    def settings(self, interval: float | None = None) -> Settings:
        from engine.delivery.config import load_settings

        if self._settings is None or interval is not None:
            self._settings = load_settings(db=self._db_url, config=self._config, actor=self._actor, interval=interval)
        return self._settings

    @property
    def db(self) -> Engine:
        from engine.store.db import open_db

        if self._db is None:
            self._db = open_db(self.settings().database_url)
        return self._db

    @property
    def actor(self) -> str:
        return self.settings().actor


pass_context = click.make_pass_decorator(Context)
ROW_ID = click.IntRange(1, 2**31 - 1)  # every database Sojourn supports stores ids in this range
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
objective_option = click.option("--objective", "objectives", multiple=True, metavar="OBJECTIVE_ID",
                                help="An objective the goal is aligned to (repeatable; on edit, replaces them all).")


def now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def emit(data: Any, as_json: bool, human: Callable[[Any], Iterable[str]]) -> None:
    """Print a use case's result: its view as JSON, or the lines `human` makes of the typed result itself."""
    if as_json:
        click.echo(json.dumps(plain(data), indent=2, ensure_ascii=False))
    else:
        for line in human(data):
            click.echo(line)


@contextmanager
def output_file(path: Path, *, newline: str | None = None) -> Iterator[TextIO]:
    """Write --output FILE whole or not at all: into a new hidden file beside it, renamed over FILE once complete, so
    a failed write leaves an earlier FILE as it was. The hidden file is created exclusively under a name nobody can
    predict, so a file or symlink planted beside FILE is never written through. A new FILE is readable by its owner
    only (it may hold personal data); an earlier FILE keeps its permissions. An unwritable FILE, or one that is a file
    of the command's own SQLite database, is a user error (exit 2)."""
    from engine.domain.errors import BadInput

    _refuse_live_database(path)
    try:
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise BadInput(f"--output: cannot write {path}: {exc.strerror or exc}") from None
    partial = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline=newline) as out:
            yield out
        _keep_permissions(path, partial)
        partial.replace(path)
    except OSError as exc:
        raise BadInput(f"--output: cannot write {path}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)  # gone already when the rename succeeded


def _refuse_live_database(path: Path) -> None:
    """Refuse an --output FILE that is the database file (or its -wal, -shm or -journal) the command runs on: renaming
    a report over it would replace the live database. Paths are compared resolved, and as files when both exist."""
    from engine.domain.errors import BadInput
    from engine.store.db import database_files

    context = click.get_current_context(silent=True)
    obj = context.find_object(Context) if context is not None else None
    if obj is None:
        return
    target = path.resolve()
    for file in database_files(obj.settings().database_url):
        if file.resolve() == target or (file.exists() and path.exists() and file.samefile(path)):
            raise BadInput(f"--output: {path} is a file of the database this command uses; choose another file")


def _keep_permissions(path: Path, partial: Path) -> None:
    if path.exists():
        partial.chmod(stat.S_IMODE(path.stat().st_mode))


def shown(value: object) -> str:
    """Text for a terminal: a control character in user text (a newline in a note, an escape sequence) is written
    as a visible escape, so no value can forge a line of output or drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


class _ProgressBar:
    """A progress callback, `progress(done, total)`, that draws a click progress bar on stderr once first called."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.length = total  # a forecast learns its horizon as it goes
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@contextmanager
def progress_bar(label: str, *, shown: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A progress callback for a long command, or None: a bar is drawn only on a terminal's stderr, and never with
    `shown` False (--json), so scripts, pipes and log files see no bar."""
    if not shown or not sys.stderr.isatty():
        yield None
        return
    bar = _ProgressBar(label)
    try:
        yield bar
    finally:
        bar.close()


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    if not rows:
        return ["(none)"]
    rows = [[shown(c) for c in r] for r in rows]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--db", metavar="URL", help="Database URL [env SOJOURN_DATABASE_URL; default sqlite:///sojourn.db].")
@click.option("--config", metavar="PATH", help="TOML config file [env SOJOURN_CONFIG; default ./sojourn.toml].")
@click.option("--actor", metavar="EMAIL", help="Who is acting [env SOJOURN_ACTOR; default your login name].")
@click.option("-v", "--verbose", is_flag=True, help="Log what is done on stderr.")
@click.option("--log-format", type=click.Choice(["auto", "console", "json"]), default="auto", show_default=True,
              help="Logs on stderr: readable lines, JSON lines, or auto (readable on a terminal, else JSON).")
@click.version_option(package_name="sojourn")
@click.pass_context
def main_group(ctx: click.Context, db: str | None, config: str | None, actor: str | None, verbose: bool,
               log_format: LogFormat) -> None:
    """Run international leadership-development assignments through their lifecycle."""
    if verbose:
        from engine.program.logging import configure_logging

        configure_logging(log_format)
    ctx.obj = Context(db, config, actor, log_format)


@main_group.command()
@json_option
@pass_context
def init(obj: Context, as_json: bool) -> None:
    """Create or upgrade the schema and install the built-in workflows (safe to repeat)."""
    from engine.program import workflows

    emit(workflows.init(obj.db, now=now()), as_json, lambda r: [f"schema at {r.schema}"] + [
        f"workflow {w.name} version {w.version}" + (" installed" if w.new else " already installed")
        for w in r.workflows] + [
        f"{len(o.assignments)} running assignment(s) of {o.workflow} on older versions "
        f"({', '.join(map(str, o.assignments[:10]))}{', ...' if len(o.assignments) > 10 else ''}); "
        f"to move them: {o.command}" for o in r.on_older_versions])


# --- workflows ------------------------------------------------------------------------------------------------


@main_group.group()
def workflow() -> None:
    """List, show, validate and install workflow definitions."""


@workflow.command("list")
@json_option
@pass_context
def workflow_list(obj: Context, as_json: bool) -> None:
    """List installed workflows with their newest version."""
    from engine.program import workflows

    emit(workflows.list_workflows(obj.db), as_json, lambda rows: table(
        [[w.name, str(w.version), w.title] for w in rows], ["NAME", "VERSION", "TITLE"]))


@workflow.command("show")
@click.argument("name")
@click.option("--version", "version", type=ROW_ID, help="An older installed version (default: newest).")
@click.option("--diagram", is_flag=True, help="Print a Mermaid stateDiagram-v2 of the lifecycle.")
@json_option
@pass_context
def workflow_show(obj: Context, name: str, version: int | None, diagram: bool, as_json: bool) -> None:
    """Show a workflow's stages, tasks, transitions and cadences."""
    from engine.program import workflows

    shown = workflows.show_workflow(obj.db, name, version)
    if diagram and not as_json:
        click.echo(shown.diagram)
        return
    emit(shown, as_json, _workflow_lines)


def _workflow_lines(shown_workflow: WorkflowShown) -> Iterable[str]:
    w = shown_workflow.definition  # the definition as its file names it
    yield f"{w['name']} version {shown_workflow.version}: {shown(w['title'])}"
    yield f"roles: {', '.join(w['roles'])}"
    for stage in w["stages"]:
        yield f"stage {stage['key']}: {shown(stage['title'])}"
        for t in stage["tasks"]:
            yield f"  task {shown(t['title'])} ({t['key']}; {t['owner']}, due {t['due']['days']:+d} days from " \
                  f"{t['due']['from']})"
    for t in w["transitions"]:
        guards = ", ".join(g["guard"] for g in t["guards"]) or "no guards"
        yield f"{t['from']} -> {t['to']}: {guards}" + (" (reason required)" if t["requires_reason"] else "")
    for c in w["cadences"]:
        every = f"{c['every']['months']} month(s)" if c["every"]["months"] else f"{c['every']['weeks']} week(s)"
        yield f"cadence {c['kind']}: every {every} with {c['with_role']}, {c['from_stage']} to {c['until_stage']}"


@workflow.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def workflow_validate(file: Path) -> None:
    """Check a workflow file; exit 2 with every problem located by path."""
    from engine.program import workflows

    checked = workflows.validate_workflow(_read_text(file), source=str(file))
    click.echo(f"{file}: valid workflow {checked.name} with stages {', '.join(checked.stages)}")


@workflow.command("install")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_context
def workflow_install(obj: Context, file: Path, as_json: bool) -> None:
    """Install FILE as a new version; running assignments stay on theirs."""
    from engine.program import workflows

    installed = workflows.install_workflow(obj.db, _read_text(file), source=str(file), now=now())
    emit(installed, as_json, lambda w: [f"workflow {w.name} version {w.version} " +
                                        ("installed" if w.new else "is already installed, unchanged")])


@workflow.command("diff")
@click.argument("name")
@click.option("--from", "from_version", type=ROW_ID, required=True, help="The installed version compared from.")
@click.option("--to", "to_version", type=ROW_ID, required=True, help="The installed version compared to.")
@json_option
@pass_context
def workflow_diff(obj: Context, name: str, from_version: int, to_version: int, as_json: bool) -> None:
    """Show what version --to adds, removes and changes against version --from."""
    from engine.program import migration

    emit(migration.diff_workflow(obj.db, name, from_version=from_version, to_version=to_version), as_json,
         _diff_lines)


def _diff_lines(d: WorkflowDiff) -> Iterable[str]:
    yield f"{d.workflow} version {d.from_version} -> {d.to_version}: {len(d.changes)} change(s)"
    signs = {"added": "+", "removed": "-", "changed": "~"}
    for c in d.changes:
        yield f"{signs[c.change]} {c.part} {shown(c.key)}"
        for field, values in c.fields.items():
            yield f"    {field}: {_json_change(values)}"


def _json_change(change: FieldChange) -> str:
    return f"{shown(json.dumps(plain(change.before)))} -> {shown(json.dumps(plain(change.after)))}"


@workflow.command("migrate")
@click.argument("name")
@click.option("--to", "to_version", type=ROW_ID, required=True, help="The installed version to move to.")
@click.option("--assignment", "assignment_ids", type=ROW_ID, multiple=True, metavar="ID",
              help="Only these assignments (repeat); default: every running one on an older version.")
@click.option("--map-stage", "stage_map", multiple=True, metavar="OLD=NEW",
              help="Where assignments in a stage the new version lacks land (repeat).")
@click.option("--reason", required=True, help="Why the assignments move (kept in history and the audit trail).")
@click.option("--dry-run", is_flag=True, help="Show what would change, and the next 90 days' notices, writing nothing.")
@json_option
@pass_context
def workflow_migrate(obj: Context, name: str, to_version: int, assignment_ids: tuple[int, ...],
                     stage_map: tuple[str, ...], reason: str, dry_run: bool, as_json: bool) -> None:
    """Move running assignments to version --to of workflow NAME: all of them or none."""
    from engine.program.migration import MigrationRequest, migrate_workflow

    request = MigrationRequest(name, to_version, reason, assignment_ids, stage_map)
    if dry_run:
        from engine.planning.migration_preview import preview_migration

        migrated: Migration = preview_migration(obj.db, request, actor=obj.actor, now=now())
    else:
        migrated = migrate_workflow(obj.db, request, actor=obj.actor, now=now(), dry_run=False)
    emit(migrated, as_json, _migration_lines)


def _migration_lines(m: Migration) -> Iterable[str]:
    from engine.planning.migration_preview import MigrationPreview, PreviewedAssignment

    verb = "migrated" if m.applied else "would migrate (dry run, nothing written)"
    yield f"{m.workflow}: {verb} {len(m.assignments)} assignment(s) to version {m.to_version}"
    for a in m.assignments:
        yield f"assignment {a.assignment_id} ({shown(a.assignee)}): version {a.from_version}, " \
              f"stage {a.stage_from} -> {a.stage_to}"
        yield from (f"  + task {t.key} ({t.owner_role}, due {t.due_on.isoformat()})" for t in a.tasks_added)
        yield from (f"  - task {t.key} (id {t.id}) cancelled" for t in a.tasks_cancelled)
        yield from (f"  + cadence {kind}" for kind in a.cadences_started)
        yield from (f"  - cadence {kind}" for kind in a.cadences_stopped)
        yield from (f"  ~ plan.{field}: {_json_change(v)}" for field, v in a.plan_rules.items())
        if isinstance(m, MigrationPreview) and isinstance(a, PreviewedAssignment):
            for label, notices in (("notices before", a.notices_before), ("notices after", a.notices_after)):
                yield f"  {label} (next {m.notice_days} days): {len(notices)}"
                yield from (f"    {n.at.isoformat()} {n.kind} to {shown(n.recipient)}" for n in notices)
    yield from (f"skipped assignment {s.assignment_id}: {s.reason}" for s in m.skipped)


def _read_text(file: Path) -> str:
    """A workflow file's text: UTF-8, or an error that says which encoding it seems to be in."""
    from engine.domain.inputs import utf8_text

    return utf8_text(_read_bytes(file), str(file))


def _read_bytes(file: Path) -> bytes:
    """A file a user names, as bytes: imports decode it themselves, to say what is wrong with its encoding."""
    from engine.domain.errors import BadInput

    try:
        return file.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {file}: {exc.strerror or exc}") from None


# --- people ---------------------------------------------------------------------------------------------------


@main_group.group()
def person() -> None:
    """Add, list and set the people who take part in assignments; export or erase what is held about one of them."""


@person.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Full name.")
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone, e.g. Asia/Kolkata.")
@json_option
@pass_context
def person_add(obj: Context, email: str, name: str, tz: str, as_json: bool) -> None:
    """Add a person."""
    from engine.program import people

    emit(people.add_person(obj.db, email, name=name, tz=tz), as_json,
         lambda p: [f"added {p.name} <{p.email}> ({p.tz})"])


@person.command("list")
@json_option
@pass_context
def person_list(obj: Context, as_json: bool) -> None:
    """List people."""
    from engine.program import people

    emit(people.list_people(obj.db), as_json,
         lambda rows: table([[p.email, p.name, p.tz, p.digest] for p in rows],
                            ["EMAIL", "NAME", "TZ", "DIGEST"]))


@person.command("show")
@click.argument("email")
@json_option
@pass_context
def person_show(obj: Context, email: str, as_json: bool) -> None:
    """Show one person: name, time zone and digest choice."""
    from engine.program import people

    emit(people.show_person(obj.db, email), as_json,
         lambda p: [f"{p.name} <{p.email}>", f"time zone: {p.tz}", f"digest: {p.digest}"])


@person.command("set")
@click.argument("email")
@click.option("--digest", required=True, type=click.Choice(["daily", "weekly", "off"]),
              help="Gather informational notices into one message a day or a week, or send each at once (off).")
@json_option
@pass_context
def person_set(obj: Context, email: str, digest: str, as_json: bool) -> None:
    """Change how a person receives notices. With a digest, stage changes and due-soon reminders wait for one
    message at the workflow's local hour (weekly: on Mondays); notices that ask for action go at once."""
    from engine.program import digests

    emit(digests.set_person_digest(obj.db, email, digest, now=now()), as_json,
         lambda p: [f"{p.email} now receives digests: {p.digest}"
                    + (f" ({p.released} held notice(s) released)" if p.released else "")])


@person.command("export")
@click.argument("email")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the document to FILE instead of standard output.")
@pass_context
def person_export(obj: Context, email: str, output: Path | None) -> None:
    """Print everything held about one person as one JSON document: profile, roles, tasks and notes, contacts,
    check-ins and feedback, pulses, sign-offs, outcomes, notices sent to them, links issued, audit events."""
    from engine.program import privacy

    document = json.dumps(privacy.export_person(obj.db, email), indent=2, ensure_ascii=False)
    if output is None:
        click.echo(document)
        return
    with output_file(output) as out:
        out.write(document + "\n")
    click.echo(f"exported what is held about {email} to {output}")


@person.command("erase")
@click.argument("email")
@click.option("--reason", required=True, help="Why the person is erased (kept in the audit trail).")
@json_option
@pass_context
def person_erase(obj: Context, email: str, reason: str, as_json: bool) -> None:
    """Replace a person's name and email by a pseudonym and blank what they wrote or what names them; refused
    while they hold a role in a running assignment."""
    from engine.program import privacy

    emit(privacy.erase_person(obj.db, email, reason=reason, actor=obj.actor, now=now()), as_json,
         lambda e: [f"erased {email}: now {e.email} ({e.name}); {e.events_rewritten} audit event(s) "
                    f"rewritten in {len(e.assignments)} assignment(s)"])


@person.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_context
def person_import(obj: Context, file: Path, as_json: bool) -> None:
    """Add people from a CSV file with columns email, name, tz; all or nothing."""
    from engine.program import changes

    emit(changes.import_people(obj.db, _read_bytes(file), source=str(file)), as_json,
         lambda rows: [f"imported {len(rows)} person(s): " + ", ".join(p.email for p in rows)])


# --- assignments ----------------------------------------------------------------------------------------------


@main_group.group()
def assignment() -> None:
    """Create, import, list and show assignments."""


@assignment.command("create")
@click.option("--workflow", "workflow_name", required=True, help="Workflow name, e.g. leadership-development.")
@click.option("--assignee", required=True, metavar="EMAIL")
@click.option("--home", required=True, metavar="CC", help="Home country (ISO 3166 alpha-2).")
@click.option("--host", required=True, metavar="CC", help="Host country (ISO 3166 alpha-2).")
@click.option("--start", required=True, metavar="DATE", help="YYYY-MM-DD")
@click.option("--end", required=True, metavar="DATE", help="YYYY-MM-DD")
@click.option("--stakeholder", "stakeholders", multiple=True, metavar="ROLE=EMAIL", help="Repeat for every role.")
@click.option("--cost", metavar="AMOUNT", help="What the assignment costs, e.g. 250000 (with --currency).")
@click.option("--currency", metavar="CCC", help="ISO 4217 currency of --cost, e.g. EUR.")
@click.option("--allow-past", is_flag=True, help="Accept an end date that has passed (recording past assignments).")
@click.option("--allow-overlap", is_flag=True, help="Accept dates overlapping a running assignment of the assignee.")
@json_option
@pass_context
def assignment_create(obj: Context, workflow_name: str, assignee: str, home: str, host: str, start: str, end: str,
                      stakeholders: tuple[str, ...], cost: str | None, currency: str | None, allow_past: bool,
                      allow_overlap: bool, as_json: bool) -> None:
    """Create an assignment in its workflow's first stage."""
    from engine.program import assignments, outcomes

    spec = assignments.AssignmentSpec.typed(workflow_name, assignee, home, host, start, end, stakeholders)
    created = outcomes.create_assignment(obj.db, spec, amount=cost, currency=currency, actor=obj.actor, now=now(),
                                         allow_past=allow_past, allow_overlap=allow_overlap)
    emit(created, as_json, _assignment_lines)


@assignment.command("set-cost")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--cost", required=True, metavar="AMOUNT", help="What the assignment cost, e.g. 250000.")
@click.option("--currency", required=True, metavar="CCC", help="ISO 4217 currency code, e.g. EUR.")
@json_option
@pass_context
def assignment_set_cost(obj: Context, assignment_id: int, cost: str, currency: str, as_json: bool) -> None:
    """Set or correct what an assignment costs, for the program's cost per leader retained."""
    from engine.program import outcomes

    emit(outcomes.set_cost(obj.db, assignment_id, amount=cost, currency=currency, actor=obj.actor, now=now()),
         as_json, lambda a: [f"assignment {a.id} costs {a.cost.amount} {a.cost.currency}"])


@assignment.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--allow-past", is_flag=True, help="Accept lines whose end date has passed.")
@click.option("--allow-overlap", is_flag=True, help="Accept lines overlapping a running assignment of the assignee.")
@json_option
@pass_context
def assignment_import(obj: Context, file: Path, allow_past: bool, allow_overlap: bool, as_json: bool) -> None:
    """Create assignments from a CSV export, all or nothing."""
    from engine.program import imports

    with progress_bar("importing", shown=not as_json) as progress:
        created = imports.import_assignments(obj.db, _read_bytes(file), source=str(file), actor=obj.actor, now=now(),
                                             allow_past=allow_past, allow_overlap=allow_overlap, progress=progress)
    emit(created, as_json, lambda rows: [f"imported {len(rows)} assignment(s): " +
                                         ", ".join(str(a.id) for a in rows)])


@assignment.command("list")
@click.option("--stage", help="Only assignments in this stage.")
@json_option
@pass_context
def assignment_list(obj: Context, stage: str | None, as_json: bool) -> None:
    """List assignments with where they stand."""
    from engine.program import assignments

    rows = assignments.list_assignments(obj.db, stage=stage, now=now())
    emit(rows, as_json, lambda rows: table(
        [[str(a.id), a.assignee, f"{a.home}->{a.host}", a.stage, a.end.isoformat(), _next_step(a)]
         for a in rows],
        ["ID", "ASSIGNEE", "ROUTE", "STAGE", "END", "NEXT"]))


def _next_step(a: AssignmentView) -> str:
    """What the assignment waits for: each unmet guard of its next move and who must act on it."""
    if a.next_stage is None:
        return "final stage"
    if not a.blocking:
        return f"ready for {a.next_stage}"
    waits = [f"{b.guard}: {', '.join(_who(w) for w in b.who) or 'nobody'}" for b in a.blocking]
    return f"{a.next_stage} waits on " + "; ".join(waits)


def _who(w: RoleHolder) -> str:
    return f"{w.role} {w.email}" if w.email else w.role


@assignment.command("show")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--gantt", is_flag=True, help="Print a Mermaid gantt: stages so far and as forecast, task due dates.")
@json_option
@pass_context
def assignment_show(obj: Context, assignment_id: int, gantt: bool, as_json: bool) -> None:
    """Show an assignment, its tasks and what blocks the next stage."""
    from engine.program import assignments

    shown = assignments.show_assignment(obj.db, assignment_id, now=now())
    if gantt:
        from engine.planning.forecast import gantt_chart

        chart = gantt_chart(obj.db, assignment_id, now=now())
        emit({**shown.view(), "gantt": chart}, as_json, lambda _: [chart])
        return
    emit(shown, as_json, _assignment_lines)


def _assignment_lines(a: AssignmentView) -> Iterable[str]:
    from engine.program.assignments import AssignmentShown

    yield f"assignment {a.id}: {shown(a.assignee_name)} <{a.assignee}>, {a.home} -> {a.host}, " \
          f"{a.start.isoformat()} to {a.end.isoformat()}"
    yield f"workflow {a.workflow} v{a.workflow_version}, stage {a.stage}, plan version {a.plan_version}"
    yield "stakeholders: " + ", ".join(f"{r}={e}" for r, e in a.stakeholders.items())
    cost = a.cost
    yield f"cost: {cost.amount} {cost.currency}" if cost else "cost: not recorded (sojourn assignment set-cost)"
    if a.early_return_reason:
        yield f"early return: {a.early_return_reason}"
    yield "tasks:" if a.tasks else "tasks: none"
    yield from _task_lines(a.tasks)
    yield from _goal_lines(a)
    if isinstance(a, AssignmentShown):  # create and list show no sign-off dates, outcomes or growth
        yield from _signoff_lines(a)
        yield from _outcome_summary_lines(a)
        yield from _growth_lines(a)
    if a.next_stage is None:
        yield "final stage"
    elif not a.blocking:
        yield f"ready to advance to {a.next_stage}"
    else:
        yield f"blocked from {a.next_stage}:"
        for b in a.blocking:
            yield f"  {b.guard}: {shown(b.reason)}; must act: {', '.join(_who(w) for w in b.who)}"


def _task_lines(tasks: Iterable[TaskView]) -> Iterable[str]:
    for t in tasks:
        mark = {"done": "x", "cancelled": "-"}.get(t.status, " ")
        yield f"  [{mark}] task {t.id} {shown(t.title)} ({t.owner_role} {t.owner}, due {t.due_on.isoformat()}) " \
              f"{t.status}"
        if t.status == "done":
            done = f"      done on {t.completed_at.isoformat()[:10]} by {shown(t.completed_by)}" if t.completed_at \
                else ""
            yield done + (f": {shown(t.note)}" if t.note else "")


def _goal_lines(a: AssignmentView) -> Iterable[str]:
    """The plan's goals; `plan show` has the activities and the earlier versions."""
    yield f"plan version {a.plan_version} goals:" if a.goals else f"plan version {a.plan_version}: no goals"
    for g in a.goals:
        yield f"  goal {g.id} {shown(g.title)}: {shown(g.measure)} to {shown(g.target)} by {g.due.isoformat()}"


def _signoff_lines(a: AssignmentShown) -> Iterable[str]:
    signed = [f"{s.role} {s.by} on {s.signed_at.isoformat()[:10]}" for s in a.signoffs]
    yield f"signed off: {', '.join(signed) or 'nobody yet'}"


def _growth_lines(a: AssignmentShown) -> Iterable[str]:
    if a.competency_growth:
        yield "competency growth:"
    for c in a.competency_growth:
        yield f"  {shown(c.name)}: {_rating_change(c.baseline, c.after)}"
    yield f"impact statements: {a.impact_statements}"


def _outcome_summary_lines(a: AssignmentShown) -> Iterable[str]:
    yield "outcomes:" if a.outcomes else "outcomes: none recorded"
    for o in a.outcomes:
        # the headline and details are worded once, for `outcome record` too
        yield f"  {_outcome_headline(o)}"
        yield from (f"  {line}" for line in _outcome_details(o))


@assignment.command("set-stakeholder")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.argument("pair", metavar="ROLE=EMAIL")
@click.option("--reason", required=True, help="Why the role changes hands (kept in the history).")
@json_option
@pass_context
def assignment_set_stakeholder(obj: Context, assignment_id: int, pair: str, reason: str, as_json: bool) -> None:
    """Give a role to another person, who takes over the role's open tasks."""
    from engine.domain.errors import BadInput
    from engine.program import changes

    role, sep, email = pair.partition("=")
    if not sep or not role.strip():
        raise BadInput(f"{pair!r}: give ROLE=EMAIL, e.g. coach=new.coach@example.com")
    emit(changes.set_stakeholder(obj.db, assignment_id, role.strip(), email, reason=reason, actor=obj.actor,
                                 now=now()), as_json, _change_lines)


@assignment.command("extend")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--end", required=True, metavar="DATE", help="The new, later end date (YYYY-MM-DD).")
@click.option("--reason", required=True, help="Why the assignment runs longer (kept in the history).")
@json_option
@pass_context
def assignment_extend(obj: Context, assignment_id: int, end: str, reason: str, as_json: bool) -> None:
    """Move the end date later; open tasks due relative to the end move with it."""
    from engine.program import changes

    emit(changes.extend_assignment(obj.db, assignment_id, end=end, reason=reason, actor=obj.actor, now=now()),
         as_json, _change_lines)


def _change_lines(change: StakeholderChanged | EndExtended) -> list[str]:
    from engine.program.changes import EndExtended

    if isinstance(change, EndExtended):
        what = f"end {change.from_.isoformat()} -> {change.to.isoformat()}"
    else:
        what = f"{change.role} {change.from_} -> {change.to}"
    moved = [f"  task {t.id} ({t.key}) {t.owner}, due {t.due_on.isoformat()}" for t in change.tasks]
    return [f"assignment {change.assignment_id}: {what}; {len(moved)} open task(s) moved", *moved]


@main_group.command()
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--to", "to", metavar="STAGE", help="Target stage (default: the next one).")
@click.option("--reason", help="Why; required to cancel.")
@click.option("--early-return", type=click.Choice(EARLY_RETURN_REASONS),
              help="With --to cancelled: the assignee came home early, for this reason category.")
@json_option
@pass_context
def advance(obj: Context, assignment_id: int, to: str | None, reason: str | None, early_return: str | None,
            as_json: bool) -> None:
    """Move an assignment to its next stage (or --to STAGE) if every guard passes."""
    from engine.program import advance

    moved = advance.advance(obj.db, assignment_id, to=to, reason=reason, actor=obj.actor, now=now(),
                            early_return=early_return)
    emit(moved, as_json, lambda a: [f"assignment {a.id} is now in stage {a.stage}"] + [
        f"  new task {t.id} {t.key} for {t.owner} due {t.due_on.isoformat()}" for t in a.tasks
        if t.stage == a.stage and t.status == "open"])


@main_group.command()
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@json_option
@pass_context
def history(obj: Context, assignment_id: int, as_json: bool) -> None:
    """Show an assignment's stage changes, new stakeholders and end dates, oldest first."""
    from engine.program import assignments

    emit(assignments.history(obj.db, assignment_id), as_json, lambda rows: table(
        [[h.at.isoformat(), h.event + (f" {h.role}" if h.role is not None else ""), h.source or "-", h.dest,
          h.actor, h.reason or ""] for h in rows],
        ["AT", "EVENT", "FROM", "TO", "ACTOR", "REASON"]))


# --- tasks ----------------------------------------------------------------------------------------------------


@main_group.group()
def task() -> None:
    """List and complete tasks."""


@task.command("list")
@click.option("--assignment", "assignment_id", type=ROW_ID, metavar="ID")
@click.option("--owner", metavar="EMAIL")
@click.option("--status", type=click.Choice(["open", "done", "cancelled"]))
@click.option("--overdue", is_flag=True, help="Only open tasks past their due date.")
@json_option
@pass_context
def task_list(obj: Context, assignment_id: int | None, owner: str | None, status: str | None, overdue: bool,
              as_json: bool) -> None:
    """List tasks, soonest due first."""
    from engine.program import tasks

    rows = tasks.list_tasks(obj.db, now=now(), assignment_id=assignment_id, owner=owner, status=status,
                            overdue=overdue)
    emit(rows, as_json, lambda rows: table(
        [[str(t.id), str(t.assignment_id), t.title, t.owner, t.due_on.isoformat(), t.status] for t in rows],
        ["ID", "ASSIGNMENT", "TASK", "OWNER", "DUE", "STATUS"]))


@task.command("done")
@click.argument("task_id", metavar="TASK_ID", type=ROW_ID)
@click.option("--note", help="What was done.")
@json_option
@pass_context
def task_done(obj: Context, task_id: int, note: str | None, as_json: bool) -> None:
    """Mark a task done."""
    from engine.program import tasks

    emit(tasks.complete_task(obj.db, task_id, note=note, actor=obj.actor, now=now()), as_json,
         lambda t: [f"task {t.id} {t.key} done"])


# --- goals ----------------------------------------------------------------------------------------------------


@main_group.group()
def goal() -> None:
    """Add, change and remove the SMART goals of an assignment's development plan."""


@goal.command("add")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--title", required=True)
@click.option("--measure", required=True, help="How progress is measured.")
@click.option("--target", required=True, help="The value that means the goal is met.")
@click.option("--due", required=True, metavar="DATE", help="YYYY-MM-DD")
@click.option("--baseline", default="", help="Where the measure stands today.")
@click.option("--competency", "competencies", multiple=True, metavar="NAME[=LEVEL]",
              help="A competency the goal develops, e.g. 'cultural agility'; with =LEVEL (1-5) also its baseline "
                   "rating (repeatable).")
@click.option("--level", metavar="LEVEL", help="What the goal is aligned to: organisation, mobility_team, individual.")
@click.option("--aligned-to", default="", metavar="TEXT", help="A note on what the goal is aligned to.")
@objective_option
@json_option
@pass_context
def goal_add(obj: Context, assignment_id: int, title: str, measure: str, target: str, due: str, baseline: str,
             competencies: tuple[str, ...], level: str | None, aligned_to: str, objectives: tuple[str, ...],
             as_json: bool) -> None:
    """Add a goal; the plan gets a new version that needs signing again."""
    from engine.program import plans

    added = plans.add_goal(obj.db, assignment_id, title=title, measure=measure, target=target, due=due,
                           baseline=baseline, competencies=competencies, level=level, aligned_to=aligned_to,
                           objectives=objectives, actor=obj.actor, now=now())
    emit(added, as_json, lambda g: [f"goal {g.id} added; plan is now version {g.plan_version}",
                                    *_plan_change_lines(g.change), *_baseline_lines(g.baselines_rated)])


@goal.command("edit")
@click.argument("goal_id", metavar="GOAL_ID", type=ROW_ID)
@click.option("--title")
@click.option("--measure")
@click.option("--baseline")
@click.option("--target")
@click.option("--due", metavar="DATE", help="YYYY-MM-DD")
@click.option("--competency", "competencies", multiple=True, metavar="NAME[=LEVEL]",
              help="Replaces the goal's competencies; =LEVEL (1-5) also rates its baseline (repeatable).")
@click.option("--level", metavar="LEVEL", help="organisation, mobility_team or individual.")
@click.option("--aligned-to", metavar="TEXT")
@objective_option
@click.option("--no-objectives", is_flag=True, help="Align the goal to no objective any more.")
@json_option
@pass_context
def goal_edit(obj: Context, goal_id: int, title: str | None, measure: str | None, baseline: str | None,
              target: str | None, due: str | None, competencies: tuple[str, ...], level: str | None,
              aligned_to: str | None, objectives: tuple[str, ...], no_objectives: bool, as_json: bool) -> None:
    """Change a goal; the plan gets a new version that needs signing again."""
    from engine.domain.errors import BadInput
    from engine.program import plans

    if no_objectives and objectives:
        raise BadInput("--objective and --no-objectives exclude each other: give one")
    edited = plans.edit_goal(obj.db, goal_id, title=title, measure=measure, baseline=baseline, target=target,
                             due=due, competencies=competencies or None, level=level, aligned_to=aligned_to,
                             objectives=() if no_objectives else objectives or None, actor=obj.actor, now=now())
    emit(edited, as_json, lambda g: [f"goal {g.id} changed; plan is now version {g.plan_version}",
                                     *_plan_change_lines(g.change), *_baseline_lines(g.baselines_rated)])


@goal.command("remove")
@click.argument("goal_id", metavar="GOAL_ID", type=ROW_ID)
@click.option("--reason", required=True, help="Why the goal leaves the plan.")
@json_option
@pass_context
def goal_remove(obj: Context, goal_id: int, reason: str, as_json: bool) -> None:
    """Take a goal out of the plan; it stays in earlier versions."""
    from engine.program import plans

    removed = plans.remove_goal(obj.db, goal_id, reason=reason, actor=obj.actor, now=now())
    emit(removed, as_json, lambda g: [f"goal {g.id} removed; plan is now version {g.plan_version}",
                                      *_plan_change_lines(g.change)])


# --- sign-offs ------------------------------------------------------------------------------------------------


@main_group.command()
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--role", required=True, help="The role signing off, e.g. host_manager.")
@click.option("--by", metavar="EMAIL", help="Who signs (must hold the role; default: the role's holder); an --actor "
                                          "other than the holder is recorded as signing on their behalf.")
@json_option
@pass_context
def signoff(obj: Context, assignment_id: int, role: str, by: str | None, as_json: bool) -> None:
    """Record a role's sign-off of the current plan version."""
    from engine.program import plans

    signed = plans.sign_plan(obj.db, assignment_id, role=role, by=by, actor=obj.actor, now=now())
    emit(signed, as_json, lambda s: [
        f"{s.role} {s.by} {'had already signed' if s.already_signed else 'signed'} plan version "
        f"{s.plan_version}" + (f", given on their behalf by {shown(s.recorded_by)}" if s.on_behalf else "")])


# --- learning activities --------------------------------------------------------------------------------------


@main_group.group()
def activity() -> None:
    """Add learning activities to the goals of a development plan."""


@activity.command("add")
@click.argument("goal_id", metavar="GOAL_ID", type=ROW_ID)
@click.option("--kind", required=True, help="reflection, mentoring, project, training or network.")
@click.option("--description", required=True)
@click.option("--due", metavar="DATE", help="YYYY-MM-DD (optional).")
@json_option
@pass_context
def activity_add(obj: Context, goal_id: int, kind: str, description: str, due: str | None, as_json: bool) -> None:
    """Add a learning activity to a goal; the plan gets a new version."""
    from engine.program import plans

    added = plans.add_activity(obj.db, goal_id, kind=kind, description=description, due=due, actor=obj.actor,
                               now=now())
    emit(added, as_json, lambda a: [f"activity {a.id} added to goal {a.goal_id}; plan is now version "
                                    f"{a.plan_version}", *_plan_change_lines(a.change)])


# --- the development plan -------------------------------------------------------------------------------------


@main_group.group()
def plan() -> None:
    """Show an assignment's development plan and acknowledge changes to it."""


@plan.command("show")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--version", type=ROW_ID, metavar="N", help="An earlier plan version (default: the current one).")
@json_option
@pass_context
def plan_show(obj: Context, assignment_id: int, version: int | None, as_json: bool) -> None:
    """Show a plan version: its goals, their learning activities, and who signed it."""
    from engine.program import plans

    emit(plans.show_plan(obj.db, assignment_id, version=version), as_json, _plan_lines)


def _plan_lines(p: PlanView) -> Iterable[str]:
    state = "current" if p.current else f"earlier; current is {p.current_version}"
    yield f"assignment {p.assignment_id}: development plan version {p.plan_version} ({state})"
    for g in p.goals:
        yield f"  goal {g.id}: {g.title} (due {g.due.isoformat()})"
        yield f"    measure {g.measure}; baseline {g.baseline or '-'}; target {g.target}"
        if g.competencies:
            yield f"    competencies: {', '.join(g.competencies)}"
        if g.alignment_level or g.aligned_to:
            yield f"    aligned ({g.alignment_level or 'no level'}): {g.aligned_to or '-'}"
        yield from (f"    - {a.kind}: {a.description}" + (f" (due {a.due_on.isoformat()})" if a.due_on else "")
                    for a in g.activities)
    if not p.goals:
        yield "  no goals"
    void = " (void: the plan changed since)" if not p.current else ""
    yield f"signed by: {', '.join(p.signed_off_by) or 'nobody'}{void}"
    yield from (f"  {s.role}: {s.by} on {s.signed_at.date().isoformat()}, " +
                (f"on their behalf by {shown(s.recorded_by)}" if s.given_by == "on_behalf" else "by the holder")
                for s in p.signoffs)
    if p.unsigned and p.current:
        yield f"still to sign: {', '.join(p.unsigned)}"
    if p.unacknowledged_versions:
        yield f"changes not acknowledged yet: version(s) {', '.join(map(str, p.unacknowledged_versions))}"


def _plan_change_lines(change: ChangeMade) -> Iterable[str]:
    if change.notified:
        yield f"told {', '.join(change.notified)} of the change"
    if change.joins_version:
        yield (f"gathered into the pending change of plan version {change.joins_version}: follow-up task "
               f"{change.follow_up_task} and acknowledgement task {change.acknowledge_task} now cover it")
        return
    if change.follow_up_task:
        yield f"follow-up task {change.follow_up_task} opened"
    if change.acknowledge_task:
        yield f"acknowledgement task {change.acknowledge_task} opened"


@plan.command("baseline")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--competency", "competencies", multiple=True, required=True, metavar="NAME=LEVEL",
              help="A competency's rating (1-5) as the plan starts, e.g. 'negotiation=2' (repeatable).")
@json_option
@pass_context
def plan_baseline(obj: Context, assignment_id: int, competencies: tuple[str, ...], as_json: bool) -> None:
    """Rate competencies as the assignment starts, for the growth its outcomes show; a new rating corrects one."""
    from engine.program import competencies as ratings

    rated = ratings.set_baselines(obj.db, assignment_id, competencies, actor=obj.actor, now=now())
    emit(rated, as_json, lambda r: list(_baseline_lines(r.recorded)))


def _baseline_lines(rated: Iterable[Baseline]) -> Iterable[str]:
    return (f"baseline of {shown(b.name)}: {b.level}" for b in rated)


@plan.command("ack")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--by", required=True, metavar="EMAIL", help="Who acknowledges (the role the workflow names).")
@json_option
@pass_context
def plan_ack(obj: Context, assignment_id: int, by: str, as_json: bool) -> None:
    """Acknowledge every change to the agreed plan not acknowledged yet; its reminders stop."""
    from engine.program import plans

    acked = plans.acknowledge_plan_change(obj.db, assignment_id, by=by, actor=obj.actor, now=now())
    emit(acked, as_json, lambda a: [f"{a.role} {a.by} acknowledged plan version(s) "
                                    f"{', '.join(map(str, a.plan_versions))}"])


# --- objectives -----------------------------------------------------------------------------------------------


@main_group.group()
def objective() -> None:
    """Organisation and mobility-team objectives that goals are aligned to."""


@objective.command("add")
@click.option("--level", required=True, metavar="LEVEL", help="organisation or mobility_team.")
@click.option("--title", required=True)
@click.option("--owner", metavar="EMAIL", help="Who owns the objective (a person already added).")
@click.option("--year", metavar="YYYY", help="The year the objective is set for.")
@json_option
@pass_context
def objective_add(obj: Context, level: str, title: str, owner: str | None, year: str | None, as_json: bool) -> None:
    """Add an objective; link goals to it with `goal add|edit --objective ID`."""
    from engine.program import objectives

    added = objectives.add_objective(obj.db, level=level, title=title, owner=owner, year=year, actor=obj.actor,
                                     now=now())
    emit(added, as_json, lambda o: [f"objective {o.id} added ({o.level}): {shown(o.title)}"])


@objective.command("list")
@json_option
@pass_context
def objective_list(obj: Context, as_json: bool) -> None:
    """Every objective, with how many goals are aligned to it."""
    from engine.program import objectives

    found = objectives.list_objectives(obj.db)
    emit(found, as_json, lambda rows: table(
        [[str(o.id), o.level, o.title, o.owner or "-", str(o.year or "-"), str(o.goals)]
         for o in rows], ["ID", "LEVEL", "TITLE", "OWNER", "YEAR", "GOALS"]))


def _objective_rollup_lines(rollup: Iterable[ObjectiveRollup]) -> Iterable[str]:
    """One line per objective of `program summary`: its goals, their mean progress and the outcomes after return."""
    for o in rollup:
        progress = o.progress
        mean = (f"mean progress {progress.mean_percent}% over {progress.goals} goal(s) checked in on"
                if progress.mean_percent is not None else "no goal checked in on yet")
        out = o.outcomes
        yield (f"objective {o.id} ({o.level}) {shown(o.title)}: {o.goals} goal(s) in "
               f"{o.assignments} assignment(s); {mean}; outcomes recorded {out.recorded}, considered for "
               f"promotion {out.considered_for_promotion}, promoted {out.promoted}, retained {out.retained}")


# --- contacts -------------------------------------------------------------------------------------------------


@main_group.group()
def contact() -> None:
    """Log contacts that satisfy recurring cadences (sponsor contact, coaching)."""


@contact.command("log")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--kind", required=True, help="Cadence kind, e.g. sponsor_contact or coaching.")
@click.option("--with", "with_email", required=True, metavar="EMAIL")
@click.option("--on", metavar="DATE", help="YYYY-MM-DD (default: today).")
@click.option("--notes")
@json_option
@pass_context
def contact_log(obj: Context, assignment_id: int, kind: str, with_email: str, on: str | None, notes: str | None,
                as_json: bool) -> None:
    """Log a contact that happened."""
    from engine.program import contacts

    logged = contacts.log_contact(obj.db, assignment_id, kind=kind, with_email=with_email, on=on, notes=notes,
                                  actor=obj.actor, now=now())
    emit(logged, as_json, lambda c: [f"logged {c.kind} with {c.with_} on {c.on.isoformat()}"])


# --- check-ins ------------------------------------------------------------------------------------------------


class _RecordByDefault(click.Group):
    """A group whose `record` command runs when the first argument names none of its commands, so that `sojourn
    checkin ID --by EMAIL` records as it always has, beside `sojourn checkin list ID`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["record", *args]
        return super().parse_args(ctx, args)


@main_group.group(cls=_RecordByDefault)
def checkin() -> None:
    """Check-ins on the goals: `checkin ID --by EMAIL ...` records one, `checkin list ID` shows them."""


@checkin.command("record")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--by", required=True, metavar="EMAIL", help="Who checks in: the assignee or the host manager.")
@click.option("--goal", "goals", multiple=True, metavar="GOAL_ID=PCT",
              help="A goal's progress in percent; repeat. Needed after the immersion days.")
@click.option("--note", help="What was discussed; during the immersion days, how the assignee and family settle in.")
@click.option("--feedback", help="Feedback on the other side: the host manager and program, or the assignee.")
@json_option
@pass_context
def checkin_record(obj: Context, assignment_id: int, by: str, goals: tuple[str, ...], note: str | None,
                   feedback: str | None, as_json: bool) -> None:
    """Record a check-in on the goals, with feedback both ways; it satisfies the check-in cadence (the default)."""
    from engine.domain import inputs
    from engine.program import checkins

    recorded = checkins.record_checkin(obj.db, assignment_id, by=by, progress=inputs.goal_progress(goals),
                                       note=note, feedback=feedback, actor=obj.actor, now=now())
    emit(recorded, as_json, lambda c: [
        f"check-in {c.id} by the {c.role} {c.by} at {c.at.isoformat()}",
        *(f"  goal {p.goal_id} {shown(p.title)}: {p.percent}%" for p in c.progress),
        *([f"  told {', '.join(c.told)}"] if c.told else [])])


@checkin.command("list")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@json_option
@pass_context
def checkin_list(obj: Context, assignment_id: int, as_json: bool) -> None:
    """The plan's check-ins by both sides, newest first: progress per goal, note and feedback."""
    from engine.program import checkins

    emit(checkins.list_checkins(obj.db, assignment_id), as_json,
         lambda rows: [line for c in rows for line in _checkin_lines(c)] or
         [f"no check-ins on assignment {assignment_id} yet"])


def _checkin_lines(checkin: CheckinLine) -> Iterator[str]:
    during = " (immersion days)" if checkin.immersion else ""
    yield f"check-in {checkin.id} by the {checkin.role} {checkin.by} at {checkin.at.isoformat()}{during}"
    for p in checkin.progress:
        yield f"  goal {p.goal_id} {shown(p.title)}: {p.percent}%"
    for label, text in (("note", checkin.note), ("feedback", checkin.feedback)):
        if text:
            yield f"  {label}: {shown(text)}"


# --- pulses and their alerts ----------------------------------------------------------------------------------


@main_group.command()
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--by", required=True, metavar="EMAIL", help="The assignee.")
@click.option("--expectancy", required=True, type=int, metavar="1-5", help="My effort will lead to the performance.")
@click.option("--instrumentality", required=True, type=int, metavar="1-5",
              help="That performance will lead to the promised reward.")
@click.option("--valence", required=True, type=int, metavar="1-5", help="I still value that reward.")
@click.option("--note")
@json_option
@pass_context
def pulse(obj: Context, assignment_id: int, by: str, expectancy: int, instrumentality: int, valence: int,
          note: str | None, as_json: bool) -> None:
    """Record the assignee's expectancy pulse; a weak one alerts the coach and the talent team at once."""
    from engine.program import checkins

    recorded = checkins.record_pulse(obj.db, assignment_id, by=by, expectancy=expectancy,
                                     instrumentality=instrumentality, valence=valence, note=note, actor=obj.actor,
                                     now=now())
    emit(recorded, as_json, lambda p: [
        f"pulse {p.id} by {p.by}: expectancy {p.expectancy}, instrumentality {p.instrumentality}, "
        f"valence {p.valence}",
        *([f"alert: {p.alert_reason}; told {', '.join(p.alerted)}"] if p.alert else [])])


@main_group.group()
def alert() -> None:
    """Pulse alerts: close one once it has been followed up."""


@alert.command("resolve")
@click.argument("pulse_id", metavar="PULSE_ID", type=ROW_ID)
@click.option("--by", required=True, metavar="EMAIL", help="Who followed it up: a role the alert went to.")
@click.option("--note", help="What was done about it.")
@json_option
@pass_context
def alert_resolve(obj: Context, pulse_id: int, by: str, note: str | None, as_json: bool) -> None:
    """Resolve the alert of a weak pulse; the program summary counts the alerts still open."""
    from engine.program import checkins

    resolved = checkins.resolve_pulse_alert(obj.db, pulse_id, by=by, note=note, actor=obj.actor, now=now())
    emit(resolved, as_json, lambda r: [
        f"alert of pulse {r.id} (assignment {r.assignment_id}: {r.alert_reason}) resolved by the "
        f"{r.role} {r.by} at {r.resolved_at.isoformat()}"])


# --- daemon ---------------------------------------------------------------------------------------------------


@main_group.group(invoke_without_command=True)
@click.option("--once", is_flag=True, help="Run one sweep (plan, then dispatch) and exit.")
@click.option("--interval", type=float, metavar="SECONDS",
              help="Seconds between sweeps [config daemon.interval_seconds; default 60].")
@click.pass_context
def daemon(ctx: click.Context, once: bool, interval: float | None) -> None:
    """Plan reminders and deliver the outbox, every interval until SIGTERM or Ctrl-C.

    Needs a notifier in the config file ([notifiers.console] prints notices here). Logs go to stderr: a line per
    sweep that did work and one a minute while idle, readable on a terminal and JSON otherwise (--log-format).
    On SQLite one daemon runs at a time; on PostgreSQL several share the work.
    """
    if ctx.invoked_subcommand is not None:
        return
    from engine.delivery.daemon import run_daemon

    obj = ctx.find_object(Context)
    assert obj is not None
    settings = obj.settings(interval)
    run_daemon(obj.db, settings, once=once, log_format=obj.log_format)


@daemon.command("status")
@json_option
@pass_context
def daemon_status(obj: Context, as_json: bool) -> None:
    """Show the daemons with a heartbeat and whether each is alive."""
    from engine.delivery import outbox as delivery_service

    emit(delivery_service.daemon_status(obj.db, now=now()), as_json, _daemon_status_lines)


def _daemon_status_lines(status: DaemonStatus) -> Iterable[str]:
    yield f"{status.alive} daemon(s) alive" if status.running else "no daemon is running"
    if status.daemons:
        yield from table([[d.host, str(d.pid), "alive" if d.alive else "stale", d.started_at.isoformat(),
                           d.heartbeat_at.isoformat()] for d in status.daemons],
                         ["HOST", "PID", "STATE", "STARTED", "LAST HEARTBEAT"])
    lease = status.dispatcher
    if lease is not None:
        state = "held" if lease.valid else "expired"
        yield f"dispatcher lease {state}: pid {lease.pid} on {lease.host} until {lease.expires_at.isoformat()}"


# --- outbox ---------------------------------------------------------------------------------------------------


@main_group.group()
def outbox() -> None:
    """Inspect notifications and send failed ones again."""


@outbox.command("list")
@click.option("--status", type=click.Choice([s.value for s in NoticeStatus]))
@click.option("--kind", help="Only this kind, e.g. escalation.")
@click.option("--limit", type=int, default=200, show_default=True, help="Show the newest N; 0 shows all.")
@json_option
@pass_context
def outbox_list(obj: Context, status: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    """List notifications, oldest first, with their delivery state."""
    from engine.delivery import outbox as delivery_service

    rows = delivery_service.list_notifications(obj.db, status=status, kind=kind, limit=limit or None)
    emit(rows, as_json, lambda rows: table(
        [[n.key, n.status, str(n.attempts), n.recipient, n.next_attempt_at.isoformat(), n.last_error or ""]
         for n in rows], ["KEY", "STATUS", "ATTEMPTS", "RECIPIENT", "NEXT ATTEMPT", "ERROR"]))


@outbox.command("retry")
@click.argument("key")
@click.option("--to", "to", metavar="NOTIFIER", help="Send a notification already sent again, now, to this "
              "configured notifier (e.g. file).")
@json_option
@pass_context
def outbox_retry(obj: Context, key: str, to: str | None, as_json: bool) -> None:
    """Make a dead or failed notification pending again, to be sent by the next sweep; with --to, send one that
    was already sent again, at once, to that notifier."""
    import os

    from engine.delivery import outbox as delivery_service

    retried = delivery_service.retry_notification(obj.db, key, now=now(), to=to,
                                                  settings=obj.settings() if to else None, environ=os.environ)
    emit(retried, as_json, _retry_lines)


def _retry_lines(n: OutboxNotification) -> list[str]:
    from engine.delivery.outbox import ResentNotification

    if isinstance(n, ResentNotification):
        return [f"notification {n.key} sent again to {n.resent_to}"]
    return [f"notification {n.key} is pending again (was sent to: {', '.join(n.delivered_to) or 'none yet'})"]


# --- audit trail ----------------------------------------------------------------------------------------------


@main_group.group()
def audit() -> None:
    """Check and export the hash-chained audit trail of every assignment's history."""


@audit.command("verify")
@click.option("--assignment", "assignment_id", type=ROW_ID, metavar="ID", help="Only this assignment's chain.")
@click.option("--against", type=click.Path(dir_okay=False, path_type=Path), metavar="EXPORT_FILE",
              help="Also check that every event of this earlier `audit export` still has its hash.")
@json_option
@pass_context
def audit_verify(obj: Context, assignment_id: int | None, against: Path | None, as_json: bool) -> None:
    """Check every chain, and the history, sign-offs, tasks, contacts, check-ins, pulses and outcomes against it;
    exit 1 naming the first row edited, deleted or moved behind Sojourn's back."""
    from engine.program import audit as audit_trail

    report = audit_trail.verify_audit(obj.db, assignment_id=assignment_id,
                                      export=None if against is None else _read_text(against).splitlines(),
                                      export_source=str(against))
    if as_json:
        emit(report, as_json, lambda _: [])
    report.require_intact()
    if not as_json:
        counted = report.objectives.objectives if report.objectives is not None else 0
        objectives = f" and {counted} objective(s)" if counted else ""
        anchored = "" if report.against is None else f"; its {report.against.events} exported event(s) unchanged"
        click.echo(f"audit trail intact: {report.events} event(s) in {report.assignments} assignment(s)"
                   f"{objectives}{anchored}")


@audit.command("export")
@click.option("--assignment", "assignment_id", type=ROW_ID, metavar="ID", help="Only this assignment's events.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write to FILE instead of standard output.")
@pass_context
def audit_export(obj: Context, assignment_id: int | None, output: Path | None) -> None:
    """Write the audit trail as JSON lines, one event a line with its hashes, to keep outside the database."""
    from engine.program import audit as audit_trail

    if output is None:
        audit_trail.export_audit(obj.db, sys.stdout, assignment_id=assignment_id)
        return
    with output_file(output) as out:
        written = audit_trail.export_audit(obj.db, out, assignment_id=assignment_id)
    click.echo(f"exported {written.events} event(s) of {written.assignments} assignment(s) to {output}")


# --- calendars ------------------------------------------------------------------------------------------------


@main_group.command("calendar")
@click.option("--person", "email", required=True, metavar="EMAIL", help="Whose calendar.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the iCalendar file here (default: print it on stdout).")
@click.option("--url", "as_url", is_flag=True,
              help="Print the address `sojourn serve` publishes the calendar at, to subscribe to (needs [serve]).")
@json_option
@pass_context
def calendar_command(obj: Context, email: str, output: Path | None, as_url: bool, as_json: bool) -> None:
    """Export a person's task due dates and contact periods as iCalendar, in their time zone.

    Every event keeps its UID from one export to the next, so importing a newer file updates the events.
    With --json, print a summary of the events instead of the file (which still goes to --output).
    With --url, print the person's calendar feed address instead: it stays the same until `links revoke`.
    """
    if as_url:
        _print_calendar_url(obj, email, output, as_json)
        return
    from engine.planning import agenda

    exported = agenda.person_calendar(obj.db, email, now=now())
    if output is not None:
        with output_file(output, newline="") as file:  # keep iCalendar's CRLF line ends
            file.write(exported.text)
    elif not as_json:
        click.echo(exported.text, nl=False)
        return
    person = exported.person
    emit({**exported.view(), "output": None if output is None else str(output)}, as_json,
         lambda _: [f"wrote {len(exported.events)} event(s) for {person.email} ({person.tz}) to {output}"])


def _print_calendar_url(obj: Context, email: str, output: Path | None, as_json: bool) -> None:
    from engine.delivery import feeds
    from engine.domain.errors import BadInput

    if output is not None:
        raise BadInput("--url prints the calendar feed's address, there is no file to write: leave out --output")
    feed = feeds.feed_url(obj.db, obj.settings().serve_settings(os.environ), email)
    emit(feed, as_json, lambda f: [f.url])


# --- reports --------------------------------------------------------------------------------------------------


@main_group.command()
@click.option("--workflow", metavar="NAME", help="Only assignments of this workflow.")
@click.option("--start-year", type=int, metavar="YYYY", help="Only assignments that start in this year.")
@click.option("--host", metavar="CC", help="Only assignments hosted in this country (ISO 3166 code).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "html"]), default="table",
              show_default=True, help="html is one self-contained page with charts, to send by email.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), metavar="FILE",
              help="Write the report to FILE instead of stdout.")
@json_option
@pass_context
def report(obj: Context, workflow: str | None, start_year: int | None, host: str | None, fmt: str,
           output: Path | None, as_json: bool) -> None:
    """Program figures: assignments per stage, stage durations, overdue tasks, sponsor contact, repatriations,
    outcomes. --json is --format json."""
    from engine.reporting.figures import program_report
    from engine.reporting.render import render

    with progress_bar("report", shown=not as_json and fmt != "json") as progress:
        figures = program_report(obj.db, workflow=workflow, start_year=start_year, host=host, now=now(),
                                 progress=progress)
    text = render(figures, "json" if as_json else fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    with output_file(output) as out:
        out.write(text)
    click.echo(f"report written to {output}", err=True)


# --- forecasts ------------------------------------------------------------------------------------------------


@main_group.command()
@click.argument("assignment_ids", metavar="[ID]...", nargs=-1, type=ROW_ID)
@click.option("--workflow", "workflow_name", metavar="NAME", help="Forecast an assignment that does not exist yet.")
@click.option("--start", metavar="DATE", help="With --workflow: its start date (it is created that day).")
@click.option("--end", metavar="DATE", help="With --workflow: its end date.")
@click.option("--assignee", metavar="EMAIL", help="With --workflow: the assignee (default: a placeholder in UTC).")
@click.option("--stakeholder", "stakeholders", multiple=True, metavar="ROLE=EMAIL",
              help="With --workflow: a role's holder; roles left out get placeholders in UTC.")
@click.option("--home", default="XX", show_default=True, metavar="CC", help="With --workflow: home country.")
@click.option("--host", default="XX", show_default=True, metavar="CC", help="With --workflow: host country.")
@click.option("--until", metavar="DATE", help="Last day to forecast, in UTC (default: until nothing more is sent).")
@click.option("--late", "late_days", type=click.IntRange(0, 3650), default=0, show_default=True, metavar="DAYS",
              help="Assume every task is done DAYS after its due date, to see the escalations.")
@click.option("--missed-contacts", is_flag=True, help="Assume no cadence contact is logged, to see contact_missed.")
@json_option
@pass_context
def forecast(obj: Context, assignment_ids: tuple[int, ...], workflow_name: str | None, start: str | None,
             end: str | None, assignee: str | None, stakeholders: tuple[str, ...], home: str, host: str,
             until: str | None, late_days: int, missed_contacts: bool, as_json: bool) -> None:
    """List every notice the daemon would send, replayed with its own planning code; writes and sends nothing.

    Give assignment IDs, or --workflow with --start and --end for an assignment that does not exist yet. Every
    task is assumed done on its due date; the assumptions are listed after the notices.
    """
    from engine.domain import inputs
    from engine.planning import forecast as forecasting

    options = forecasting.ForecastOptions(until=inputs.iso_date(until, "--until") if until else None,
                                          late_days=late_days, missed_contacts=missed_contacts)
    hypothetical = forecasting.Hypothetical(workflow_name, start, end, assignee, stakeholders, home, host)
    with progress_bar("forecast", shown=not as_json) as progress:
        result = forecasting.forecast(obj.db, assignment_ids, hypothetical, now=now(), options=options,
                                      progress=progress)
    emit(result.notices, as_json, lambda rows: [*table(
        [[str(n.assignment_id), n.at.isoformat(), f"{n.local_time:%Y-%m-%d %H:%M} {n.tz}", n.recipient, n.kind,
          n.key] for n in rows],
        ["ID", "AT (UTC)", "LOCAL TIME", "RECIPIENT", "KIND", "KEY"]), "assumed:",
        *(f"  - {a}" for a in forecasting.ASSUMPTIONS)])


# --- outcomes -------------------------------------------------------------------------------------------------


@main_group.group()
def outcome() -> None:
    """Record what became of assignees after return."""


@outcome.command("record")
@click.argument("assignment_id", metavar="ID", type=ROW_ID)
@click.option("--months", required=True, type=click.Choice(["12", "24"]), help="Months after return.")
@click.option("--retained", required=True, type=click.Choice(["yes", "no"]), help="Still with the company?")
@click.option("--left-on", metavar="DATE", help="With --retained no: the day the assignee left (YYYY-MM-DD).")
@click.option("--left-reason", metavar="TEXT", help="With --retained no: why the assignee left.")
@click.option("--considered-for-promotion", is_flag=True, help="The assignee was considered for a promotion.")
@click.option("--promoted-to", metavar="ROLE", help="The role the assignee was promoted to.")
@click.option("--competency", "competencies", multiple=True, metavar="NAME=AFTER|NAME=BEFORE:AFTER",
              help="A competency rated 1-5 after the assignment (NAME=AFTER grows from its baseline) or before and "
                   "after it; repeat for each.")
@click.option("--impact", metavar="TEXT", help="The business impact the assignment had.")
@json_option
@pass_context
def outcome_record(obj: Context, assignment_id: int, months: str, retained: str, left_on: str | None,
                   left_reason: str | None, considered_for_promotion: bool, promoted_to: str | None,
                   competencies: tuple[str, ...], impact: str | None, as_json: bool) -> None:
    """Record the 12- or 24-month outcome of a completed assignment; completes that milestone's task."""
    from engine.program import outcomes

    report = outcomes.OutcomeReport(
        months=int(months), retained=retained == "yes", left_on=left_on, left_reason=left_reason,
        considered_for_promotion=considered_for_promotion, promoted_to=promoted_to,
        competencies=outcomes.competency_ratings(competencies), impact=impact)
    recorded = outcomes.record_outcome(obj.db, assignment_id, report, actor=obj.actor, now=now())
    emit(recorded, as_json, _outcome_lines)


def _outcome_lines(o: OutcomeRecorded) -> Iterable[str]:
    yield f"assignment {o.assignment_id}, {_outcome_headline(o)}"
    yield from _outcome_details(o)
    if o.task_completed is not None:
        yield f"  task {o.task_completed} done"


def _outcome_headline(o: OutcomeView) -> str:
    stayed = "still employed" if o.retained else f"left on {o.left_on.isoformat() if o.left_on else 'an unknown day'}"
    return f"{o.months} months after return: {stayed}" + (f" ({shown(o.left_reason)})" if o.left_reason else "")


def _rating_change(before: int | None, after: int | None) -> str:
    if after is None:
        return f"baseline {before}, not rated after return yet"
    if before is None:
        return f"no baseline -> {after} (no growth counted)"
    return f"{before} -> {after} (growth {after - before:+d})"


def _outcome_details(o: OutcomeView) -> Iterable[str]:
    if o.promoted_to:
        yield f"  promoted to {shown(o.promoted_to)}"
    elif o.considered_for_promotion:
        yield "  considered for promotion"
    for c in o.competencies:
        yield f"  competency {shown(c.name)}: {_rating_change(c.before, c.after)}"
    if o.impact:
        yield f"  impact: {shown(o.impact)}"


# --- the program summary --------------------------------------------------------------------------------------


@main_group.group()
def program() -> None:
    """The program's figures for its owner."""


@program.command("summary")
@click.option("--workflow", metavar="NAME", help="Only assignments of this workflow.")
@click.option("--start-year", type=int, metavar="YYYY", help="Only assignments that start in this year.")
@click.option("--host", metavar="CC", help="Only assignments hosted in this country (ISO 3166 code).")
@json_option
@pass_context
def program_summary(obj: Context, workflow: str | None, start_year: int | None, host: str | None,
                    as_json: bool) -> None:
    """The cohort: stages, early returns, promotion, retention at 12 and 24 months, sponsor contact, cost."""
    from engine.reporting.summary import program_summary as summarise

    emit(summarise(obj.db, workflow=workflow, start_year=start_year, host=host, now=now()), as_json, _summary_lines)


def _summary_lines(s: ProgramSummary) -> Iterable[str]:
    def share(part: int, whole: int, what: str) -> str:
        return f"{part} of {whole} {what}" + (f" ({100 * part / whole:.0f}%)" if whole else "")

    yield f"assignments: {s.assignments} (active {s.active}, completed {s.completed})"
    yield from _by_workflow_lines(s.by_stage)
    early = s.early_returns
    yield f"early returns: {early.total} of {early.cancelled} cancelled (" + ", ".join(
        f"{reason} {count}" for reason, count in early.by_reason.items()) + ")"
    yield f"considered for promotion: {s.considered_for_promotion}"
    yield f"promoted: {s.promoted}"
    for r in s.retention:
        yield f"retained at {r.months} months: {share(r.retained, r.due, 'due')}; {r.recorded} recorded"
    contact = s.sponsor_contact
    yield f"sponsor contact: {share(contact.periods_held, contact.periods_due, 'periods held')}"
    checkins = s.checkin_compliance
    yield f"check-ins: {share(checkins.periods_held, checkins.periods_due, 'periods held')}"
    progress = s.goal_progress
    if progress.mean_percent is None:
        yield "mean goal progress: no goal checked in on yet"
    else:
        yield f"mean goal progress: {progress.mean_percent}% over {progress.goals} goal(s) checked in on"
    yield f"open pulse alerts: {s.open_pulse_alerts}"
    yield from _cohort_growth_lines(s.competency_growth)
    if not s.cost:
        yield "cost: none recorded"
    for c in s.cost:
        spent = f"cost: {c.total} {c.currency} for {c.assignments} assignment(s); "
        if c.per_retained_leader is None:
            yield spent + "no leader retained yet, so no cost per leader retained"
        else:
            yield spent + f"{c.per_retained_leader} per leader retained ({c.retained_leaders})"
    yield from _objective_rollup_lines(s.objectives)


def _cohort_growth_lines(growth: CompetencyGrowth) -> Iterable[str]:
    mean = "no competency rated against a baseline yet" if growth.mean_growth is None else \
        f"mean {growth.mean_growth:+.2f} over {growth.with_baseline} rating(s)"
    yield f"competency growth: {mean}; {growth.no_baseline} rating(s) with no baseline"
    for c in growth.competencies:
        change = "no baseline" if c.mean_growth is None else f"mean {c.mean_growth:+.2f}"
        yield (f"  {shown(c.name)}: {change} over {c.with_baseline} of {c.assignments} assignment(s)"
               + (f" ({c.no_baseline} with no baseline)" if c.no_baseline else ""))
    yield f"impact statements: {growth.impact_statements}"


def _by_workflow_lines(by_stage: Iterable[StageCount]) -> Iterable[str]:
    """One line per workflow: its assignments, then how many stand in each of its stages (zeros left out)."""
    workflows: dict[str, list[StageCount]] = {}
    for row in by_stage:
        workflows.setdefault(row.workflow, []).append(row)
    for name, rows in workflows.items():
        total = sum(r.assignments for r in rows)
        stages = ", ".join(f"{r.stage} {r.assignments}" for r in rows if r.assignments) or "none"
        yield f"workflow {name}: {total} assignment(s); by stage: {stages}"


# --- signed links and the web pages ---------------------------------------------------------------------------


@main_group.command()
@click.option("--check", "check_only", is_flag=True,
              help="Probe the running server's health; exit 0 if it is up and serves this database.")
@pass_context
def serve(obj: Context, check_only: bool) -> None:
    """Serve the pages where stakeholders act on the signed links of their notices (host, port, public_url and
    secret_env in [serve] of the config file)."""
    import os

    from engine.program.logging import configure_logging
    from engine.web import serve as web

    settings = obj.settings().serve_settings(os.environ)
    if check_only:
        click.echo(f"ok: {web.check(settings, web.instance_database(obj.db))}")
        return
    configure_logging("json")
    web.serve(obj.db, settings)


@main_group.group()
def links() -> None:
    """Signed links sent in notices."""


@links.command("revoke")
@click.option("--person", "email", required=True, metavar="EMAIL", help="Whose links to end.")
@json_option
@pass_context
def links_revoke(obj: Context, email: str, as_json: bool) -> None:
    """End every link the person has been sent so far, and their calendar feed (for example, when they leave);
    later notices carry new links, and `calendar --url` gives a new feed address."""
    from engine.web.actions import revoke_person_links

    emit(revoke_person_links(obj.db, email, now=now()), as_json,
         lambda r: [f"revoked every link of {r.person} issued up to {r.revoked_before.isoformat()}, and their calendar "
                    "feed (`calendar --url` gives a new address)"])


# --- backups --------------------------------------------------------------------------------------------------


@main_group.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists (never the live database).")
@json_option
@pass_context
def backup_command(obj: Context, file: Path, force: bool, as_json: bool) -> None:
    """Copy the SQLite database to FILE, safely while the daemon and others write (on PostgreSQL: use pg_dump).

    FILE is one self-contained SQLite file: restore it by stopping Sojourn and putting it in place of the database.
    """
    from engine.program.backup import backup_database

    emit(backup_database(obj.db, file, force=force, now=now()), as_json, lambda b: [
        f"backed up {b.source} to {b.backup}: {b.assignments} assignment(s), {b.bytes} bytes"])


def fail(lines: list[str], code: int) -> NoReturn:
    for line in lines:
        click.echo(f"Error: {line}", err=True)
    sys.exit(code)


def main() -> None:
    """The console script: user errors become `Error:` lines and their exit code, never a traceback."""
    import atexit
    import gc

    from engine.domain.errors import SojournError

    # Every object lives until exit anyway; freezing the heap spares the interpreter a last full collection.
    atexit.register(gc.freeze)
    try:
        main_group.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        fail(["aborted"], 1)
    except click.ClickException as exc:
        hint = []
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = [f"see `{exc.ctx.command_path} --help`"]
        fail([exc.format_message(), *hint], exc.exit_code)
    except SojournError as exc:
        fail(exc.lines(), exc.exit_code)
