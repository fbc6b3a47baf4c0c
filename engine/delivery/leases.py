"""Daemon heartbeats and the dispatcher lease: who is running, and on SQLite, which one daemon may dispatch.

Every daemon keeps a heartbeat row `daemon/{host}/{pid}` in `DaemonLease`; it is alive while the row has not
expired. On SQLite, where FOR UPDATE is ignored, one daemon at a time dispatches: it holds the row
`dispatcher`. On PostgreSQL there is no such row; daemons share the work through SKIP LOCKED claims.

A row held by a process of this host that is gone (a daemon killed with SIGKILL, restarted at once by systemd)
need not be waited out: each row carries the holder's pid and process start, which a daemon starting on the
same host checks. Rows of other hosts are waited out, since their processes cannot be seen from here.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from engine.domain.errors import DaemonAlreadyRunning
from engine.store import queries
from engine.store.models import DaemonLease

DISPATCHER = "dispatcher"
HEARTBEAT_PREFIX = "daemon/"
LEASE_MIN_SECONDS = 5.0
LEASE_MAX_SECONDS = 120.0
FORGET_DEAD_AFTER = timedelta(days=7)  # heartbeat rows of daemons dead this long are deleted


def lease_seconds(interval_seconds: float) -> float:
    """How long a lease or heartbeat lasts without renewal: three sweep intervals, within 5 s and 2 minutes.

    Short enough that a daemon killed with SIGKILL is replaced soon; long enough that a sweep or a slow
    database does not let it lapse, because it is renewed every third of this by its own job.
    """
    return min(max(3 * interval_seconds, LEASE_MIN_SECONDS), LEASE_MAX_SECONDS)


@dataclass(frozen=True)
class DaemonIdentity:
    """One daemon process; `holder` is unique even when a pid is reused after a restart."""

    host: str
    pid: int
    token: str
    process_start: str | None = None

    @classmethod
    def of_this_process(cls) -> DaemonIdentity:
        pid = os.getpid()
        return cls(host=socket.gethostname(), pid=pid, token=uuid.uuid4().hex[:8], process_start=process_start_of(pid))

    @property
    def holder(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    @property
    def heartbeat_name(self) -> str:
        return f"{HEARTBEAT_PREFIX}{self.host}/{self.pid}"


# --- is a holder's process gone? -----------------------------------------------------------------------------


def process_start_of(pid: int) -> str | None:
    """What tells process `pid` apart from a later one given the same pid: the boot, the pid namespace and its
    start time in clock ticks since boot, read from /proc (Linux). None where /proc does not say, and for a
    process that has exited (a zombie waiting to be reaped)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = str(Path("/proc/self/ns/pid").readlink())
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name before ")" may hold spaces and parentheses
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return f"{boot}|{namespace}|{fields[19]}"  # field 22 of proc(5): starttime


def holder_is_gone(row: DaemonLease, here: DaemonIdentity) -> bool:
    """True when a lease row's holder is a process of this host that no longer runs, so its lease need not be waited
    out. False whenever that cannot be told: another host, another boot or pid namespace under the same host name,
    or a platform without /proc and signals."""
    if row.host != here.host or row.holder == here.holder:
        return False
    if row.process_start and here.process_start:
        if row.process_start.rpartition("|")[0] != here.process_start.rpartition("|")[0]:
            return False
        return process_start_of(row.pid) != row.process_start  # not running, or its pid now names another process
    return not _pid_alive(row.pid)


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill would end the process there, not probe it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to another user, or cannot be asked: assume it runs
        return True
    return True


# --- heartbeats and the dispatcher lease ------------------------------------------------------------------------


def start_heartbeat(session: Session, identity: DaemonIdentity, now: datetime, seconds: float) -> list[str]:
    """Write (or take over, after a pid was reused) this daemon's heartbeat row, and forget long-dead daemons and
    daemons of this host whose process is gone, handing back the rows they had claimed. Returns the holders
    forgotten for being gone."""
    queries.prune_heartbeats(session, HEARTBEAT_PREFIX, now - FORGET_DEAD_AFTER)
    gone = [row for row in queries.heartbeats(session, f"{HEARTBEAT_PREFIX}{identity.host}/")
            if row.name != identity.heartbeat_name and holder_is_gone(row, identity)]
    for row in gone:
        queries.release_claims(session, row.holder)
        queries.drop_lease(session, row.name, row.holder)
    queries.drop_lease(session, identity.heartbeat_name, _holder_of(session, identity.heartbeat_name) or "")
    _take(session, identity.heartbeat_name, identity, now, now + timedelta(seconds=seconds))
    return [row.holder for row in gone]


def acquire_dispatcher_lease(session: Session, identity: DaemonIdentity, now: datetime,
                             seconds: float) -> str | None:
    """Make this daemon the one dispatcher of an SQLite database, or raise DaemonAlreadyRunning.

    Concurrency contract. The `dispatcher` row belongs to one holder until its `expires_at`. Another daemon
    may take it once it has expired (its holder died or stalled past the expiry without renewing), or at
    once when its holder is a process of this host that is gone (`holder_is_gone`: killed with SIGKILL and
    restarted, say). The holder renews it every third of its length (`renew_leases`) and deletes it on a
    clean exit (`release_leases`), so a successor starts at once. Taking it is one conditional statement
    (see `queries.take_lease` and `queries.take_over_lease`), so of two daemons starting together exactly one
    wins.

    Returns the holder whose lease was taken over (None when the lease was free), after handing back the
    rows that holder had claimed, so they need not wait for their claims to run out.
    """
    previous = queries.lease_row(session, DISPATCHER)
    expires_at = now + timedelta(seconds=seconds)
    if not _take(session, DISPATCHER, identity, now, expires_at):
        previous = queries.lease_row(session, DISPATCHER)
        if previous is None or not _take_from_the_gone(session, previous, identity, now, expires_at):
            raise _already_running(previous)
    if previous is None or previous.holder == identity.holder:
        return None
    queries.release_claims(session, previous.holder)
    return previous.holder


def _take_from_the_gone(session: Session, row: DaemonLease, identity: DaemonIdentity, now: datetime,
                        expires_at: datetime) -> bool:
    """Take the lease from a holder of this host whose process is gone, and forget that holder's heartbeat."""
    if not holder_is_gone(row, identity):
        return False
    if not queries.take_over_lease(session, name=row.name, dead_holder=row.holder, holder=identity.holder,
                                   pid=identity.pid, host=identity.host, process_start=identity.process_start,
                                   now=now, expires_at=expires_at):
        return False
    queries.drop_lease(session, f"{HEARTBEAT_PREFIX}{row.host}/{row.pid}", row.holder)
    return True


def _take(session: Session, name: str, identity: DaemonIdentity, now: datetime, expires_at: datetime) -> bool:
    return queries.take_lease(session, name=name, holder=identity.holder, pid=identity.pid, host=identity.host,
                              process_start=identity.process_start, now=now, expires_at=expires_at)


def renew_leases(session: Session, identity: DaemonIdentity, now: datetime, seconds: float, *,
                 dispatcher: bool) -> bool:
    """Move this daemon's heartbeat (and dispatcher lease) on; False when another daemon took the lease over."""
    expires_at = now + timedelta(seconds=seconds)
    if not queries.renew_lease(session, name=identity.heartbeat_name, holder=identity.holder, now=now,
                               expires_at=expires_at):
        _take(session, identity.heartbeat_name, identity, now, expires_at)
    if not dispatcher:
        return True
    return queries.renew_lease(session, name=DISPATCHER, holder=identity.holder, now=now, expires_at=expires_at)


def release_leases(session: Session, identity: DaemonIdentity) -> int:
    """On a clean exit: hand back unattempted claims, and delete the heartbeat and the dispatcher lease."""
    released = queries.release_claims(session, identity.holder)
    queries.drop_lease(session, DISPATCHER, identity.holder)
    queries.drop_lease(session, identity.heartbeat_name, identity.holder)
    return released


def _holder_of(session: Session, name: str) -> str | None:
    row = queries.lease_row(session, name)
    return row.holder if row else None


def _already_running(row: DaemonLease | None) -> DaemonAlreadyRunning:
    if row is None:  # the holder gave it up between our two statements; starting again will work
        return DaemonAlreadyRunning("another daemon was taking the dispatcher lease at the same moment",
                                    details=["start this one again"])
    return DaemonAlreadyRunning(
        f"another daemon (pid {row.pid} on {row.host}) holds the lease until {row.expires_at.isoformat()}",
        details=["an SQLite database allows one daemon at a time; stop the other one, or use PostgreSQL to run "
                 "several (a daemon of this host that was killed is replaced at once; one of another host is "
                 "waited out until its lease expires)"])
