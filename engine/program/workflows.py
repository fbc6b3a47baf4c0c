"""Installing and reading workflow definitions, and preparing the database: one transaction each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain.definition import WorkflowDefinition, parse_definition
from engine.domain.errors import NotFound
from engine.domain.views import Result
from engine.program.migration import OlderVersions, assignments_on_older_versions
from engine.program.records import definition_of, lifecycle_of
from engine.program.transactions import use_case_transaction as _transaction
from engine.store import lookups
from engine.store.db import serialize_schema_changes, transaction, upgrade_schema
from engine.store.models import Workflow
from workflows import builtin_workflow_texts


@dataclass(frozen=True)
class InstalledWorkflow(Result):
    name: str
    version: int
    new: bool  # False: that version had this text already, nothing was installed


@dataclass(frozen=True)
class InitReport(Result):
    """The schema before and after, each built-in workflow, and the running assignments a newer version left
    behind (each with the command that moves them)."""

    schema_before: str | None
    schema: str
    workflows: tuple[InstalledWorkflow, ...]
    on_older_versions: tuple[OlderVersions, ...]


def init(db: Engine, *, now: datetime) -> InitReport:
    """Create or upgrade the schema and install the built-in workflows; running it twice changes nothing."""
    before, after = upgrade_schema(db)
    installed = []
    with transaction(db) as session:
        serialize_schema_changes(session.connection())
        for file_name, text in builtin_workflow_texts().items():
            workflow, new = _install_builtin(session, parse_definition(text, source=file_name), text, now)
            installed.append(InstalledWorkflow(workflow.name, workflow.version, new))
    older = assignments_on_older_versions(db, [w.name for w in installed])
    return InitReport(before, after, tuple(installed), tuple(older))


def _install_builtin(session: Session, definition: WorkflowDefinition, text: str,
                     now: datetime) -> tuple[Workflow, bool]:
    """Install a built-in unless some version already has its text: an admin's later version stays the newest."""
    same = lookups.workflow_with_source(session, definition.name, text)
    if same is not None:
        return same, False
    return _install(session, definition, text, now)


@dataclass(frozen=True)
class ValidWorkflow(Result):
    name: str
    stages: tuple[str, ...]
    valid: bool


def validate_workflow(text: str, *, source: str) -> ValidWorkflow:
    definition = parse_definition(text, source=source)
    return ValidWorkflow(definition.name, tuple(definition.stage_keys), True)


def install_workflow(db: Engine, text: str, *, source: str, now: datetime) -> InstalledWorkflow:
    """Install a new version of the workflow the file names; assignments already running keep their version."""
    definition = parse_definition(text, source=source)
    with _transaction(db) as session:
        workflow, new = _install(session, definition, text, now)
        return InstalledWorkflow(workflow.name, workflow.version, new)


def _install(session: Session, definition: WorkflowDefinition, text: str, now: datetime) -> tuple[Workflow, bool]:
    latest = lookups.latest_workflow(session, definition.name)
    if latest is not None and latest.source == text:
        return latest, False
    workflow = Workflow(name=definition.name, version=(latest.version + 1) if latest else 1, source=text,
                        installed_at=now)
    session.add(workflow)
    session.flush()
    return workflow, True


def workflow_named(session: Session, name: str, version: int | None = None) -> Workflow:
    if version is None:
        workflow = lookups.latest_workflow(session, name)
    else:
        workflow = lookups.workflow_version(session, name, version)
    if workflow is None:
        known = ", ".join(lookups.workflow_names(session)) or "none installed"
        which = f"{name} version {version}" if version else name
        raise NotFound(f"no workflow {which} (installed: {known})")
    return workflow


@dataclass(frozen=True)
class WorkflowLine(Result):
    """An installed workflow by its newest version, with every version installed."""

    name: str
    version: int
    versions: tuple[int, ...]
    title: str
    installed_at: datetime


def list_workflows(db: Engine) -> tuple[WorkflowLine, ...]:
    with _transaction(db) as session:
        rows = lookups.all_workflows(session)
        latest: dict[str, Workflow] = {w.name: w for w in rows}
        return tuple(WorkflowLine(w.name, w.version, tuple(r.version for r in rows if r.name == w.name),
                                  definition_of(w).title, w.installed_at) for w in latest.values())


@dataclass(frozen=True)
class WorkflowShown(Result):
    """An installed version: its definition as the file's own keys say it, and its lifecycle as a diagram."""

    version: int
    installed_at: datetime
    definition: dict[str, Any]  # the definition's model_dump, by the YAML's names
    diagram: str

    def view(self) -> dict[str, Any]:
        # the definition's keys sit beside the version's own, as `workflow show --json` has always shown them
        return {"version": self.version, "installed_at": self.installed_at.isoformat(), **self.definition,
                "diagram": self.diagram}


def show_workflow(db: Engine, name: str, version: int | None = None) -> WorkflowShown:
    with _transaction(db) as session:
        workflow = workflow_named(session, name, version)
        return WorkflowShown(workflow.version, workflow.installed_at,
                             definition_of(workflow).model_dump(mode="json", by_alias=True),
                             lifecycle_of(workflow).diagram())
