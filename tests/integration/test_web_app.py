"""The Flask app in-process: a failing request is logged by its route, never with the token in its URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from structlog.testing import capture_logs

from engine.links import LinkAction, LinkSigner
from engine.store.db import open_db
from engine.web.app import create_app


def test_a_failed_request_is_logged_without_its_token(tmp_path: Path) -> None:
    """A request that fails inside (here: the database was never initialised) answers 500 and logs the route only."""
    db = open_db(f"sqlite:///{tmp_path / 'never-initialised.db'}")
    signer = LinkSigner("secret", "http://127.0.0.1", timedelta(days=14))
    token = signer.mint("a@example.com", LinkAction.TASK_DONE, {"task": 1}, now=datetime.now(UTC))
    app = create_app(db, signer)
    with capture_logs() as logs:
        response = app.test_client().get(f"/a/task_done/{token}")
    db.dispose()
    assert response.status_code == 500
    (failed,) = [entry for entry in logs if entry["event"] == "request_failed"]
    assert failed["route"] == "/a/<action>/<token>"
    assert token not in repr(logs)
