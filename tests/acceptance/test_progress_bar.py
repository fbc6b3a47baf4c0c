"""The installed `sojourn` on a terminal: long commands draw a progress bar on stderr, never with --json."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading

from acceptance.conftest import Sojourn

FORECAST = ("forecast", "--workflow", "leadership-development", "--start", "2027-01-04", "--end", "2028-06-30")


def _on_a_terminal(sojourn: Sojourn, *args: str) -> tuple[int, str, str]:
    """Run `sojourn ARGS` with stderr on a pseudo-terminal and stdout on a pipe; exit code, stdout, stderr."""
    primary, secondary = pty.openpty()
    seen: list[bytes] = []

    def read_terminal() -> None:  # drained as it comes: a full terminal buffer would block the command
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the command closed its end
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    try:
        done = subprocess.run([str(sojourn.binary), *args], cwd=sojourn.cwd, env=sojourn.env, stdout=subprocess.PIPE,
                              stderr=secondary, timeout=300, check=False)
    finally:
        os.close(secondary)
        reader.join(timeout=30)
        os.close(primary)
    return done.returncode, done.stdout.decode(), b"".join(seen).decode(errors="replace")


def test_forecast_draws_a_progress_bar_on_a_terminal_stderr(sojourn: Sojourn) -> None:
    """On a terminal, the forecast's stderr shows a labelled bar that reaches 100%; stdout has only the notices."""
    code, stdout, stderr = _on_a_terminal(sojourn, *FORECAST)
    assert code == 0, stderr
    assert "forecast" in stderr
    assert "100%" in stderr
    assert "100%" not in stdout
    assert stdout.splitlines()[0].startswith("ID")


def test_forecast_draws_no_bar_with_json_even_on_a_terminal(sojourn: Sojourn) -> None:
    """With --json nothing but the document is written, even when stderr is a terminal."""
    code, stdout, stderr = _on_a_terminal(sojourn, *FORECAST, "--json")
    assert code == 0, stderr
    assert stderr == ""
    assert json.loads(stdout)
