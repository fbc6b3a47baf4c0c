"""Tests for the webhook notifier against a real HTTP server on the loopback interface."""

import hashlib
import hmac
import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifiers import Notification, PermanentDeliveryError, TransientDeliveryError, WebhookNotifier

MakeNotification = Callable[..., Notification]
SECRET = "whsec-hunter2"


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    path: str
    headers: Message
    body: bytes


@dataclass
class WebhookServer:
    """A scripted HTTP server: answers with queued replies (200 when none are left) and records requests."""

    port: int = 0
    replies: deque[Reply] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)

    def url(self, path: str = "/hooks/T000/B000") -> str:
        """Return the URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        """Return a request handler class bound to this server's script and record."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                """Record the request and answer with the next scripted reply."""
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.received.append(Received(self.path, self.headers, body))
                reply = server.replies.popleft() if server.replies else Reply()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

        return Handler


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    """Run a WebhookServer on a free loopback port for the duration of a test."""
    server = WebhookServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), server.handler_class())
    server.port = httpd.server_address[1]
    # A short poll interval keeps shutdown() from waiting half a second per test.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def closed_port() -> int:
    """Return a loopback port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_webhook_posts_notification_json_with_text(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """The body is every notification field plus a Slack- and Teams-compatible text, sent as JSON."""
    notification = make_notification()

    WebhookNotifier(webhook_server.url()).send(notification)

    (request,) = webhook_server.received
    assert request.path == "/hooks/T000/B000"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        **notification.to_dict(),
        "text": "*Relocation checklist is due today*\n"
        "Please finish the relocation checklist.\nIt blocks the orientation stage.",
    }


def test_webhook_sends_the_key_as_idempotency_key(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """Idempotency-Key carries the notification key so receivers can drop retried duplicates."""
    WebhookNotifier(webhook_server.url()).send(make_notification(key="task_due:7:42:2027-03-01"))

    assert webhook_server.received[0].headers["Idempotency-Key"] == "task_due:7:42:2027-03-01"


def test_webhook_signature_verifies_with_the_secret(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """X-Sojourn-Signature is sha256= and the hex HMAC-SHA256 of the exact body bytes under the secret."""
    WebhookNotifier(webhook_server.url(), secret=SECRET).send(make_notification(subject="Genève ✓"))

    request = webhook_server.received[0]
    scheme, _, received = request.headers["X-Sojourn-Signature"].partition("=")
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert scheme == "sha256"
    assert hmac.compare_digest(received, expected)


def test_webhook_without_secret_sends_no_signature(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """Without a secret there is nothing to sign, so the header is absent."""
    WebhookNotifier(webhook_server.url()).send(make_notification())

    assert "X-Sojourn-Signature" not in webhook_server.received[0].headers


def test_webhook_accepts_any_2xx(webhook_server: WebhookServer, make_notification: MakeNotification) -> None:
    """202 Accepted and 204 No Content count as delivered."""
    webhook_server.replies.extend([Reply(202), Reply(204, body=b"")])
    notifier = WebhookNotifier(webhook_server.url())

    notifier.send(make_notification(key="a"))
    notifier.send(make_notification(key="b"))

    assert len(webhook_server.received) == 2


def test_webhook_marks_500_transient_then_delivers_on_retry(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """A 500 is transient; the retry of the same notification that gets a 200 succeeds."""
    webhook_server.replies.extend([Reply(500, body=b"boom"), Reply(200)])
    notifier = WebhookNotifier(webhook_server.url())
    notification = make_notification()

    with pytest.raises(TransientDeliveryError, match="500") as caught:
        notifier.send(notification)
    notifier.send(notification)

    assert caught.value.retry_after is None
    keys = [request.headers["Idempotency-Key"] for request in webhook_server.received]
    assert keys == [notification.key, notification.key]


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_webhook_marks_retryable_statuses_transient(
    webhook_server: WebhookServer, make_notification: MakeNotification, status: int
) -> None:
    """Request timeout, rate limiting and server errors are transient."""
    webhook_server.replies.append(Reply(status))

    with pytest.raises(TransientDeliveryError, match=str(status)):
        WebhookNotifier(webhook_server.url()).send(make_notification())


def test_webhook_marks_429_transient_with_retry_after(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """A 429 with Retry-After: 7 asks to wait seven seconds."""
    webhook_server.replies.append(Reply(429, {"Retry-After": "7"}))

    with pytest.raises(TransientDeliveryError) as caught:
        WebhookNotifier(webhook_server.url()).send(make_notification())

    assert caught.value.retry_after == 7


def test_webhook_reads_retry_after_as_http_date(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """A 503 with an HTTP-date Retry-After asks to wait until that instant."""
    webhook_server.replies.append(Reply(503, {"Retry-After": "Mon, 01 Mar 2027 09:01:30 GMT"}))
    notifier = WebhookNotifier(webhook_server.url(), clock=lambda: datetime(2027, 3, 1, 9, 0, tzinfo=UTC))

    with pytest.raises(TransientDeliveryError) as caught:
        notifier.send(make_notification())

    assert caught.value.retry_after == 90


def test_webhook_ignores_unparseable_retry_after(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """A Retry-After that is neither seconds nor a date leaves the backoff to the caller."""
    webhook_server.replies.append(Reply(429, {"Retry-After": "soon"}))

    with pytest.raises(TransientDeliveryError) as caught:
        WebhookNotifier(webhook_server.url()).send(make_notification())

    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_webhook_marks_other_4xx_permanent(
    webhook_server: WebhookServer, make_notification: MakeNotification, status: int
) -> None:
    """Client errors other than 408, 425 and 429 will not improve with retries."""
    webhook_server.replies.append(Reply(status))

    with pytest.raises(PermanentDeliveryError, match=str(status)):
        WebhookNotifier(webhook_server.url()).send(make_notification())


def test_webhook_error_quotes_the_service_explanation(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """The start of the response body, where services explain a refusal, is part of the error."""
    webhook_server.replies.append(Reply(404, body=b"no_service"))

    with pytest.raises(PermanentDeliveryError, match="404 Not Found: no_service"):
        WebhookNotifier(webhook_server.url()).send(make_notification())


def test_webhook_refuses_to_follow_redirects(
    webhook_server: WebhookServer, make_notification: MakeNotification
) -> None:
    """A redirect is permanent, because following it would turn the POST into a GET without the body."""
    webhook_server.replies.append(Reply(302, {"Location": webhook_server.url("/elsewhere")}))

    with pytest.raises(PermanentDeliveryError, match="302"):
        WebhookNotifier(webhook_server.url()).send(make_notification())

    assert [request.path for request in webhook_server.received] == ["/hooks/T000/B000"]


def test_webhook_marks_connection_refused_transient(make_notification: MakeNotification) -> None:
    """Nothing listening at the URL is a transient failure."""
    url = f"http://127.0.0.1:{closed_port()}/hooks"

    with pytest.raises(TransientDeliveryError, match="unreachable"):
        WebhookNotifier(url).send(make_notification())


def test_webhook_marks_timeout_transient(make_notification: MakeNotification) -> None:
    """A server that accepts the connection but never answers times out as a transient failure."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hooks"

        with pytest.raises(TransientDeliveryError):
            WebhookNotifier(url, timeout=0.2).send(make_notification())


@pytest.mark.parametrize(
    ("reply", "error"),
    [(Reply(401, body=b"bad signature"), PermanentDeliveryError), (Reply(503), TransientDeliveryError)],
)
def test_webhook_errors_never_reveal_secret_or_url_credentials(
    webhook_server: WebhookServer, make_notification: MakeNotification, reply: Reply, error: type[Exception]
) -> None:
    """Errors name scheme, host and port only: the secret, the URL path and its query stay out."""
    webhook_server.replies.append(reply)
    url = webhook_server.url("/services/T000/B000/pathsecret?token=querysecret")

    with pytest.raises(error) as caught:
        WebhookNotifier(url, secret=SECRET).send(make_notification())

    message = str(caught.value)
    assert f"http://127.0.0.1:{webhook_server.port}/..." in message
    for secret in (SECRET, "pathsecret", "querysecret"):
        assert secret not in message
