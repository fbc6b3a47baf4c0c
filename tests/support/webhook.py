"""A webhook receiver on 127.0.0.1: answers every POST (200 unless told otherwise) after a delay and notes each
Idempotency-Key and body."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A thread per request; a key is noted once its request has been read, before the answer.

    A daemon killed while waiting for the answer has delivered the notification as far as the receiver is
    concerned, so a later resend of that key counts as a repeat.
    """

    def __init__(self, delay: float, *, status: int = 200, answer: Callable[[str], bytes] | None = None) -> None:
        """`status` is every answer's; `answer` makes its body from the request's path and query (none if None)."""
        self.delay = delay
        self.status = status
        self.answer = answer
        self._arrivals: list[tuple[float, str]] = []
        self._counts: Counter[str] = Counter()
        self._bodies: list[bytes] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return self.at("/hook")

    def at(self, path: str) -> str:
        """The URL of `path` (and query) on this receiver; every path is answered alike."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def record(self, key: str, body: bytes = b"") -> None:
        with self._lock:
            self._arrivals.append((time.monotonic(), key))
            self._counts[key] += 1
            self._bodies.append(body)

    def bodies(self) -> list[bytes]:
        """Every request body received so far, oldest first, as sent."""
        with self._lock:
            return list(self._bodies)

    def reached(self, distinct_keys: int) -> bool:
        """True once at least `distinct_keys` different keys have arrived."""
        with self._lock:
            return len(self._counts) >= distinct_keys

    def snapshot(self) -> Counter[str]:
        """How often each key has arrived so far."""
        with self._lock:
            return Counter(self._counts)

    def take(self) -> list[tuple[float, str]]:
        """Every arrival so far as (monotonic time, key), oldest first; the receiver starts counting afresh."""
        with self._lock:
            taken, self._arrivals, self._counts = self._arrivals, [], Counter()
        return taken

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # several daemons connect at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-request is what crash tests do on purpose


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.record(self.headers.get("Idempotency-Key", ""), body)
            time.sleep(receiver.delay)
            reply = receiver.answer(self.path) if receiver.answer else b""
            with contextlib.suppress(OSError):  # the daemon was killed while waiting for the answer
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
