"""Whether a lease's holder is gone: a process of this host that has exited, or whose pid now names another one."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import UTC, datetime

import pytest

from engine.delivery.leases import DaemonIdentity, holder_is_gone, process_start_of
from engine.store.models import DaemonLease

HERE = DaemonIdentity.of_this_process()
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
linux_only = pytest.mark.skipif(process_start_of(os.getpid()) is None, reason="needs /proc")


def _row(pid: int, process_start: str | None, host: str = HERE.host) -> DaemonLease:
    return DaemonLease(name="dispatcher", holder=f"{host}:{pid}:dead", pid=pid, host=host,
                       process_start=process_start, started_at=NOW, heartbeat_at=NOW, expires_at=NOW)


@linux_only
def test_a_holder_of_this_host_is_gone_once_its_process_has_exited(local_process: subprocess.Popen[bytes]) -> None:
    """While the holder runs it is not gone; killed (and reaped, or still a zombie) it is."""
    row = _row(local_process.pid, process_start_of(local_process.pid))
    assert row.process_start is not None
    assert not holder_is_gone(row, HERE)
    local_process.kill()
    os.waitid(os.P_PID, local_process.pid, os.WEXITED | os.WNOWAIT)  # exited, left a zombie until reaped
    assert holder_is_gone(row, HERE)
    local_process.wait()
    assert holder_is_gone(row, HERE)


@linux_only
def test_a_holder_whose_pid_now_names_another_process_is_gone(local_process: subprocess.Popen[bytes]) -> None:
    """Same pid, another start time: the pid was reused after the holder died."""
    start = process_start_of(local_process.pid)
    assert start is not None
    scope, _, ticks = start.rpartition("|")
    assert holder_is_gone(_row(local_process.pid, f"{scope}|{int(ticks) - 1}"), HERE)


@linux_only
def test_a_holder_of_another_host_boot_or_pid_namespace_is_never_judged(local_process: subprocess.Popen[bytes]) -> None:
    """Another host, or the same host name under another boot or pid namespace: cannot tell, so not gone."""
    local_process.kill()
    local_process.wait()
    start = process_start_of(os.getpid())
    assert start is not None
    ticks = start.rpartition("|")[2]
    assert not holder_is_gone(_row(local_process.pid, None, host=f"not-{socket.gethostname()}"), HERE)
    assert not holder_is_gone(_row(local_process.pid, f"another-boot|pid:[1]|{ticks}"), HERE)


def test_without_a_process_start_the_pid_alone_decides(local_process: subprocess.Popen[bytes]) -> None:
    """Rows written before process starts were kept, or off Linux: a pid that no longer exists is gone."""
    here_without = DaemonIdentity(HERE.host, HERE.pid, HERE.token)
    assert not holder_is_gone(_row(local_process.pid, None), here_without)
    local_process.kill()
    local_process.wait()
    assert holder_is_gone(_row(local_process.pid, None), here_without)


def test_this_daemon_is_never_gone_to_itself() -> None:
    """Its own row, and a row of its own live process under another token, are not gone."""
    own = _row(HERE.pid, HERE.process_start)
    assert not holder_is_gone(own, HERE)
    assert not holder_is_gone(DaemonLease(**{**own.model_dump(), "holder": HERE.holder}), HERE)
