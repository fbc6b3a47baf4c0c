"""Installing and reading workflow definitions, and preparing the database: one transaction each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain.definition import WorkflowDefinition, parse_definition
from engine.domain.errors import NotFound
from engine.program.records import definition_of, instant, lifecycle_of
from engine.program.transactions import use_case_transaction as _transaction
from engine.store import lookups
from engine.store.db import serialize_schema_changes, transaction, upgrade_schema
from engine.store.models import Workflow
from workflows import builtin_workflow_texts


def init(db: Engine, *, now: datetime) -> dict[str, Any]:
    """Create or upgrade the schema and install the built-in workflows; running it twice changes nothing."""
    before, after = upgrade_schema(db)
    installed = []
    with transaction(db) as session:
        serialize_schema_changes(session.connection())
        for file_name, text in builtin_workflow_texts().items():
            workflow, new = _install_builtin(session, parse_definition(text, source=file_name), text, now)
            installed.append({"name": workflow.name, "version": workflow.version, "new": new})
    return {"schema_before": before, "schema": after, "workflows": installed}


def _install_builtin(session: Session, definition: WorkflowDefinition, text: str,
                     now: datetime) -> tuple[Workflow, bool]:
    """Install a built-in unless some version already has its text: an admin's later version stays the newest."""
    same = lookups.workflow_with_source(session, definition.name, text)
    if same is not None:
        return same, False
    return _install(session, definition, text, now)


def validate_workflow(text: str, *, source: str) -> dict[str, Any]:
    definition = parse_definition(text, source=source)
    return {"name": definition.name, "stages": list(definition.stage_keys), "valid": True}


def install_workflow(db: Engine, text: str, *, source: str, now: datetime) -> dict[str, Any]:
    """Install a new version of the workflow the file names; assignments already running keep their version."""
    definition = parse_definition(text, source=source)
    with _transaction(db) as session:
        workflow, new = _install(session, definition, text, now)
        return {"name": workflow.name, "version": workflow.version, "new": new}


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


def list_workflows(db: Engine) -> list[dict[str, Any]]:
    with _transaction(db) as session:
        rows = lookups.all_workflows(session)
        latest: dict[str, Workflow] = {w.name: w for w in rows}
        return [{"name": w.name, "version": w.version, "versions": [r.version for r in rows if r.name == w.name],
                 "title": definition_of(w).title, "installed_at": instant(w.installed_at)} for w in latest.values()]


def show_workflow(db: Engine, name: str, version: int | None = None) -> dict[str, Any]:
    with _transaction(db) as session:
        workflow = workflow_named(session, name, version)
        definition = definition_of(workflow)
        return {"version": workflow.version, "installed_at": instant(workflow.installed_at),
                **definition.model_dump(mode="json", by_alias=True), "diagram": lifecycle_of(workflow).diagram()}
