"""POSTs notifications as JSON to a webhook, in a shape Slack and Microsoft Teams also display."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, unquote_plus, urlsplit

from notifiers.base import DeliveryError, Notification, PermanentDeliveryError, TransientDeliveryError
from notifiers.escape import slack_text

_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_ERROR_BODY_CHARS = 200
_REASON_CHARS = 120
_SHORTEST_SECRET_PIECE = 4  # shorter path segments ("v1", "api") are names, not credentials
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def signature(secret: str, body: bytes) -> str:
    """Return the X-Sojourn-Signature value: `sha256=` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_url(url: str) -> None:
    """Raise ValueError unless the URL is http(s):// with a host; the message does not repeat the URL."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")


def redacted_url(url: str) -> str:
    """Return scheme://host[:port]/... of a URL: paths, queries and user info often are the credential."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without the body, which would report success for nothing sent.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class WebhookNotifier:
    """POSTs `notification.to_dict()` plus a `text` field to one URL.

    Requests carry `Idempotency-Key: <key>` and, with a secret, `X-Sojourn-Signature`. 2xx is success;
    408, 425, 429 and 5xx are transient (honouring Retry-After); redirects and other 4xx are permanent.
    Neither the secret nor the URL's path or query appears in error messages, even when the receiver's error
    body echoes them: errors keep the status code and a short, scrubbed reason (`scrubbed`).
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        timeout: float = 10,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        check_url(url)
        self.url = url
        self._secret = secret
        self.timeout = timeout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._opener = urllib.request.build_opener(_RefuseRedirects)

    def send(self, notification: Notification) -> None:
        """POST the notification and classify the outcome."""
        body = request_body(notification)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notification.key,
            "User-Agent": "sojourn-webhook",
        }
        if self._secret is not None:
            headers["X-Sojourn-Signature"] = signature(self._secret, body)
        # The scheme was checked in __init__, so this cannot open file: or ftp: URLs.
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            try:
                error = self._classify_status(exc)
            finally:
                exc.close()
            raise error from exc
        except urllib.error.URLError as exc:
            raise self._transient(f"unreachable: {exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise self._transient(f"failed: {exc or type(exc).__name__}") from exc

    def _classify_status(self, response: urllib.error.HTTPError) -> DeliveryError:
        reason = scrubbed(f"{response.reason}{_body_excerpt(response)}", self.url, self._secret)
        detail = f"{response.code} {reason}".rstrip()
        if response.code in _TRANSIENT_STATUSES or response.code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            return self._transient(f"answered {detail}", retry_after)
        if 300 <= response.code < 400:
            detail += "; configure the URL it redirects to"
        return PermanentDeliveryError(f"webhook {redacted_url(self.url)} answered {detail}")

    def _transient(self, what: str, retry_after: float | None = None) -> TransientDeliveryError:
        return TransientDeliveryError(f"webhook {redacted_url(self.url)} {what}", retry_after=retry_after)


def scrubbed(text: str, url: str, secret: str | None) -> str:
    """A receiver's reason phrase and error body, fit for `outbox list` and the logs: without the secret, any URL
    beyond its host, and the webhook URL's path and query or any part of them (receivers often echo the path,
    which is the credential of Slack or Teams hooks), on one line of at most _REASON_CHARS characters."""
    text = _URL_IN_TEXT.sub(lambda match: redacted_url(match.group()), unquote(text))
    for piece in sorted(_secret_pieces(url, secret), key=len, reverse=True):
        text = re.sub(re.escape(piece), "***", text, flags=re.IGNORECASE)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 1] + "…"


def _secret_pieces(url: str, secret: str | None) -> set[str]:
    """The secret, and the URL's path and query whole, by segment and by parameter value, raw and decoded."""
    parts = urlsplit(url)
    pieces = {parts.path, parts.query, parts.path.replace("/", "\\/"), parts.netloc.rpartition("@")[0]}
    pieces.update(parts.path.split("/"))
    for pair in parts.query.split("&"):
        pieces.update((pair, pair.split("=", 1)[-1]))  # a parameter's name ("token") is no secret, its value is
    pieces.update({unquote(p) for p in pieces} | {unquote_plus(p) for p in pieces})
    if secret:
        pieces.add(secret)
    return {p for p in pieces if len(p) >= _SHORTEST_SECRET_PIECE and p != "/"}


def request_body(notification: Notification) -> bytes:
    """Return the JSON body: the notification fields plus `text`, which Slack and Teams display."""
    payload = {**notification.to_dict(), "text": message_text(notification)}
    return json.dumps(payload, ensure_ascii=False).encode()


def message_text(notification: Notification) -> str:
    """The `text` Slack and Teams show: the subject in bold, the body, and the signed link when there is one.

    Subject and body carry names, titles and notes, so each part is escaped on its own (`slack_text`) before the
    parts are joined with Sojourn's own markup: `<!channel>` in a name is shown, never acted on. A digest shows each
    notice it gathers the same way, under the digest's subject.
    """
    if notification.items:
        return "\n\n".join([f"*{slack_text(notification.subject)}*", *map(message_text, notification.items)])
    text = f"*{slack_text(notification.subject)}*\n{slack_text(notification.body)}"
    if notification.action_url is not None:
        text += f"\n\nAct on it here: {slack_text(notification.action_url)}"
    return text


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the seconds a Retry-After value (delay-seconds or HTTP-date) asks to wait, or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _body_excerpt(response: urllib.error.HTTPError) -> str:
    # Services such as Slack explain a refusal in the body ("invalid_token", "no_service").
    try:
        text = response.read(_ERROR_BODY_CHARS).decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return ""
    text = " ".join(text.split())
    return f": {text}" if text else ""
