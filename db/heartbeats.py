"""Worker heartbeats: each role of each `tocsin worker` process writes a row (host, pid, role) every few
seconds; the API reads the freshest row per role for /readyz and /metrics.

While the database is down no heartbeat can be written, and that is the point: a role that cannot work
shows as stalled once its freshest beat is older than the stall threshold, whatever the reason.
Times are the worker's `now` on writing and the reader's `now` on reading.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

WORKER_ROLES = ("relay", "sms", "sweeper", "purge")
BEAT_EVERY_S = 5.0  # well under any sensible stall threshold, and one small statement per role per beat
PRUNE_AFTER = timedelta(days=7)  # rows of processes long gone

_UPSERT = text("""
    INSERT INTO worker_heartbeats (host, pid, role, started_at, last_beat_at, state, last_error, last_error_at)
    VALUES (:host, :pid, :role, :now, :now, :state, CAST(:error AS text),
            CASE WHEN CAST(:error AS text) IS NULL THEN NULL ELSE CAST(:now AS timestamptz) END)
    ON CONFLICT (host, pid, role) DO UPDATE SET
        last_beat_at = EXCLUDED.last_beat_at, state = EXCLUDED.state,
        last_error = COALESCE(EXCLUDED.last_error, worker_heartbeats.last_error),
        last_error_at = COALESCE(EXCLUDED.last_error_at, worker_heartbeats.last_error_at)
""")


def beat(session: Session, *, role: str, now: datetime, state: str = "ok", error: str | None = None,
         host: str | None = None, pid: int | None = None) -> None:
    """Write one heartbeat in the caller's transaction. `error` (kept until a newer one) says what last went
    wrong, e.g. the outage this role just recovered from."""
    session.execute(_UPSERT, {"host": host or socket.gethostname(), "pid": os.getpid() if pid is None else pid,
                              "role": role, "now": now, "state": state, "error": error})


def prune(session: Session, *, now: datetime) -> int:
    return session.execute(text("DELETE FROM worker_heartbeats WHERE last_beat_at < :t"),
                           {"t": now - PRUNE_AFTER}).rowcount


class Heartbeat:
    """One role's heartbeat writer, throttled to one write per `every_s` unless its state changes.

    Never raises: a beat that cannot be written (the database is down) is the signal itself, and the
    loop that called it finds out about the outage on its own."""

    def __init__(self, factory: sessionmaker[Session], role: str, *, clock: Callable[[], datetime],
                 every_s: float = BEAT_EVERY_S, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.factory, self.role, self.clock = factory, role, clock
        self.every_s = every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last: tuple[float, str] | None = None

    def __call__(self, state: str = "ok", error: str | None = None, *, force: bool = False) -> bool:
        """Beat if due; returns whether a row was written."""
        with self._lock:
            due = (force or error is not None or self._last is None or self._last[1] != state
                   or self._monotonic() - self._last[0] >= self.every_s)
            if not due:
                return False
            try:
                with self.factory() as session, session.begin():
                    beat(session, role=self.role, now=self.clock(), state=state, error=error)
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                log.debug("heartbeat of %s not written: %s", self.role, exc)
                return False
            self._last = (self._monotonic(), state)
            return True


@dataclass(frozen=True)
class RoleStatus:
    role: str
    age_s: float  # of the freshest beat of any process running the role
    state: str  # that beat's state
    processes: int  # processes whose beat is fresh
    last_error: str | None
    last_error_at: datetime | None
    stalled: bool

    def as_dict(self) -> dict:
        return {"age_s": round(self.age_s, 1), "state": self.state, "processes": self.processes,
                "stalled": self.stalled, "last_error": self.last_error,
                "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None}


def role_statuses(session: Session, *, now: datetime, stall_s: float,
                  roles: Sequence[str] = WORKER_ROLES) -> dict[str, RoleStatus]:
    """The freshest heartbeat of each role that has ever beaten (a deployment need not run every role);
    a role is stalled when that beat is older than `stall_s`."""
    rows = session.execute(text("""
        SELECT DISTINCT ON (role) role, last_beat_at, state, last_error, last_error_at,
               count(*) FILTER (WHERE last_beat_at >= :fresh) OVER (PARTITION BY role) AS processes
        FROM worker_heartbeats WHERE role = ANY(:roles)
        ORDER BY role, last_beat_at DESC
    """), {"fresh": now - timedelta(seconds=stall_s), "roles": list(roles)}).all()
    out = {}
    for r in rows:
        age = max(0.0, (now - r.last_beat_at).total_seconds())
        out[r.role] = RoleStatus(role=r.role, age_s=age, state=r.state, processes=int(r.processes),
                                 last_error=r.last_error, last_error_at=r.last_error_at, stalled=age > stall_s)
    return out
