"""Daemon heartbeats and the dispatcher lease: who is running, and on SQLite, which one daemon may dispatch.

Every daemon keeps a heartbeat row `daemon/{host}/{pid}` in `DaemonLease`; it is alive while the row has not
expired. On SQLite, where FOR UPDATE is ignored, one daemon at a time dispatches: it holds the row
`dispatcher`. On PostgreSQL there is no such row; daemons share the work through SKIP LOCKED claims.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from engine.errors import DaemonAlreadyRunning
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

    @classmethod
    def of_this_process(cls) -> DaemonIdentity:
        return cls(host=socket.gethostname(), pid=os.getpid(), token=uuid.uuid4().hex[:8])

    @property
    def holder(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    @property
    def heartbeat_name(self) -> str:
        return f"{HEARTBEAT_PREFIX}{self.host}/{self.pid}"


def start_heartbeat(session: Session, identity: DaemonIdentity, now: datetime, seconds: float) -> None:
    """Write (or take over, after a pid was reused) this daemon's heartbeat row, and forget long-dead daemons."""
    queries.prune_heartbeats(session, HEARTBEAT_PREFIX, now - FORGET_DEAD_AFTER)
    queries.drop_lease(session, identity.heartbeat_name, _holder_of(session, identity.heartbeat_name) or "")
    queries.take_lease(session, name=identity.heartbeat_name, holder=identity.holder, pid=identity.pid,
                       host=identity.host, now=now, expires_at=now + timedelta(seconds=seconds))


def acquire_dispatcher_lease(session: Session, identity: DaemonIdentity, now: datetime,
                             seconds: float) -> str | None:
    """Make this daemon the one dispatcher of an SQLite database, or raise DaemonAlreadyRunning.

    Concurrency contract. The `dispatcher` row belongs to one holder until its `expires_at`. Another daemon
    may take it only once it has expired: its holder died (SIGKILL, power loss) or stalled past the expiry
    without renewing. The holder renews it every third of its length (`renew_leases`) and deletes it on a
    clean exit (`release_leases`), so a successor starts at once. Taking it is one conditional statement
    (see `queries.take_lease`), so of two daemons starting together exactly one wins.

    Returns the holder whose expired lease was taken over (None when the lease was free), after handing
    back the rows that dead holder had claimed, so they need not wait for their claims to run out.
    """
    previous = queries.lease_row(session, DISPATCHER)
    expires_at = now + timedelta(seconds=seconds)
    if not queries.take_lease(session, name=DISPATCHER, holder=identity.holder, pid=identity.pid,
                              host=identity.host, now=now, expires_at=expires_at):
        raise _already_running(queries.lease_row(session, DISPATCHER))
    if previous is None or previous.holder == identity.holder:
        return None
    queries.release_claims(session, previous.holder)
    return previous.holder


def renew_leases(session: Session, identity: DaemonIdentity, now: datetime, seconds: float, *,
                 dispatcher: bool) -> bool:
    """Move this daemon's heartbeat (and dispatcher lease) on; False when another daemon took the lease over."""
    expires_at = now + timedelta(seconds=seconds)
    if not queries.renew_lease(session, name=identity.heartbeat_name, holder=identity.holder, now=now,
                               expires_at=expires_at):
        queries.take_lease(session, name=identity.heartbeat_name, holder=identity.holder, pid=identity.pid,
                           host=identity.host, now=now, expires_at=expires_at)
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
        details=["an SQLite database allows one daemon at a time; stop the other one, or wait for its lease "
                 "to expire if it was killed, or use PostgreSQL to run several"])
