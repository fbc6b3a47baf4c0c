"""The Flask application of `sojourn serve`: confirm pages for signed links, the person's page, calendar feeds,
a health check.

A GET never writes; the POST carries the link's token in its form (no cookies, no sessions). Every refusal is a
page with its HTTP status and a log line that names the action and the person, never the token.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, render_template, request
from sqlalchemy import Engine, text

from engine.delivery import feeds
from engine.delivery.links import FEED_PATH, FEED_SUFFIX, FeedRefused, LinkRefused, LinkSigner, webcal_url
from engine.program.logging import get_logger
from engine.store.db import connection_transaction
from engine.web import actions
from engine.web.serve import HEALTH_SERVICE, instance_database, sojourn_version

log = get_logger(__name__)
Clock = Callable[[], datetime]
# The pages are rendered on the server: no scripts at all, the stylesheet and forms of this origin only.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class _TokenSafeFlask(Flask):
    """Flask logs a failed request with its URL, which holds the token; this logs the route instead."""

    def log_exception(self, exc_info: Any) -> None:
        rule = request.url_rule.rule if request.url_rule else None
        log.error("request_failed", method=request.method, route=rule,
                  error="".join(traceback.format_exception(*exc_info)))


def create_app(db: Engine, signer: LinkSigner, *, clock: Clock = _wall_clock) -> Flask:
    """The app for one database and one signing secret."""
    app = _TokenSafeFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # a note, a date and a token
    app.add_template_filter(webcal_url, "webcal")

    def refused(exc: LinkRefused, action: str) -> tuple[str, int]:
        claims = exc.claims
        log.warning("link_refused", status=int(exc.refusal), reason=exc.reason, action=action,
                    person=claims.person if claims else None, token_id=claims.token_id if claims else None,
                    method=request.method)
        return render_template("refused.html", message=exc.message, status=int(exc.refusal)), int(exc.refusal)

    def form_again(exc: actions.FormRejected, action: str, token: str) -> tuple[str, int]:
        """The confirm page once more, with what was typed and what is wrong with it (400)."""
        log.info("link_form_rejected", action=action, person=exc.claims.person if exc.claims else None,
                 token_id=exc.claims.token_id if exc.claims else None)
        try:
            shown = actions.preview(db, signer, action, token, now=clock())
        except LinkRefused as again:
            return refused(again, action)
        return render_template("confirm.html", preview=shown, token=token, values=request.form, error=exc.message,
                               person_url=f"/me/{action}/{token}"), int(exc.refusal)

    @app.get("/a/<action>/<token>")
    def show_action(action: str, token: str) -> tuple[str, int]:
        try:
            shown = actions.preview(db, signer, action, token, now=clock())
        except LinkRefused as exc:
            return refused(exc, action)
        return render_template("confirm.html", preview=shown, token=token, values={},
                               person_url=f"/me/{action}/{token}"), 200

    @app.post("/a/<action>/<token>")
    def confirm_action(action: str, token: str) -> tuple[str, int]:
        try:
            done = actions.confirm(db, signer, action, token, request.form, now=clock())
        except actions.FormRejected as exc:
            return form_again(exc, action, token)
        except LinkRefused as exc:
            return refused(exc, action)
        return render_template("done.html", done=done, person_url=done.person_path), 200

    @app.get("/me/<action>/<token>")
    def person_page(action: str, token: str) -> tuple[str, int]:
        try:
            page = actions.person_page(db, signer, action, token, now=clock())
        except LinkRefused as exc:
            return refused(exc, action)
        return render_template("person.html", page=page), 200

    @app.get(f"/{FEED_PATH}/<token>{FEED_SUFFIX}")
    def calendar_feed(token: str) -> Response | tuple[str, int]:
        """What `sojourn calendar` prints, for calendar clients: no cookies, no redirects, read-only."""
        try:
            calendar = feeds.feed_calendar(db, signer, token, now=clock())
        except FeedRefused as exc:
            log.warning("feed_refused", status=int(exc.refusal), reason=exc.reason, person_id=exc.person_id)
            return render_template("refused.html", message=exc.message, status=int(exc.refusal)), int(exc.refusal)
        return Response(calendar.text, mimetype="text/calendar")

    instance = {"status": "ok", "service": HEALTH_SERVICE, "version": sojourn_version(),
                "database": instance_database(db)}

    @app.get("/healthz")
    def health() -> dict[str, str]:
        """Names the instance, so `serve --check` knows it reached Sojourn on its own database."""
        with connection_transaction(db) as connection:
            connection.execute(text("SELECT 1"))
        return instance

    @app.errorhandler(404)
    def not_found(_: Exception) -> tuple[str, int]:
        return render_template("refused.html", message="There is nothing at this address.", status=404), 404

    @app.errorhandler(405)
    def wrong_method(_: Exception) -> tuple[str, int]:
        return render_template("refused.html", message="This address does not take that kind of request.",
                               status=405), 405

    @app.after_request
    def no_caching(response):  # type: ignore[no-untyped-def]
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return app
