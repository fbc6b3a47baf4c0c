"""A running `sojourn serve` for tests and benchmarks: a free port, its config, an SMTP inbox, plain HTTP calls."""

from __future__ import annotations

import email
import email.policy
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from engine.delivery.links import LinkSigner

LINK_SECRET = "a link secret for tests only, 32 bytes or more"  # [serve] refuses shorter ones
SECRET_ENV = "SOJOURN_TEST_LINK_SECRET"


def free_port() -> int:
    with socket.socket() as probe:  # a loopback port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


def write_config(directory: Path, port: int, smtp_port: int | None = None) -> Path:
    """A sojourn.toml with [serve] on `port` (and an email notifier to `smtp_port` when given)."""
    lines = ["[serve]", 'host = "127.0.0.1"', f"port = {port}", f'public_url = "http://127.0.0.1:{port}"',
             f'secret_env = "{SECRET_ENV}"', "threads = 8"]
    if smtp_port is not None:
        lines += ["[notifiers.email]", 'host = "127.0.0.1"', f"port = {smtp_port}", 'sender = "sojourn@example.com"',
                  'tls = "none"']
    path = directory / "sojourn.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def signer(port: int) -> LinkSigner:
    """The signer the server on `port` verifies with, as the daemon mints for it."""
    return LinkSigner(LINK_SECRET, f"http://127.0.0.1:{port}", timedelta(days=14))


@contextmanager
def running_server(binary: Path, cwd: Path, env: dict[str, str], port: int, log_path: Path) -> Iterator[str]:
    """`sojourn serve` started as a subprocess in `cwd`, healthy; its base URL. Stopped afterwards."""
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen([str(binary), "serve"], cwd=cwd, env={**env, SECRET_ENV: LINK_SECRET},
                                   stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, process)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "sojourn serve exited at start; see its log"
        try:
            if get(f"{base}/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("sojourn serve did not become healthy within 30 s")


def get(url: str) -> tuple[int, str]:
    return _call(urllib.request.Request(url))  # noqa: S310 - the test server's http URL


def post(url: str, fields: dict[str, str]) -> tuple[int, str]:
    body = urllib.parse.urlencode(fields).encode()
    return _call(urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - the test server's http URL
                                        headers={"Content-Type": "application/x-www-form-urlencoded"}))


def confirm(url: str, **fields: str) -> tuple[int, str]:
    """POST the confirm form of an action link, as its page's button does."""
    return post(url, {"token": url.rsplit("/", 1)[1], **fields})


def _call(request: urllib.request.Request) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the test server's http URL
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
