"""Riding out a lost database or broker: which errors are transient, capped backoff with jitter, and
outage logging that says one thing when an outage starts and one when it ends, not a line per retry.

Shared by every worker loop (the relay, the SMS planner and senders, the sweeper), so each behaves the
same way when PostgreSQL restarts; the API maps the same errors to 503 (`is_unavailable`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import psycopg
from sqlalchemy import exc as sa_exc


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be reached now (connection refused or lost, server
    shutting down, pool exhausted), as opposed to a bad statement or bad data."""
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                        psycopg.OperationalError, psycopg.InterfaceError)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def is_transient(exc: BaseException) -> bool:
    """An error a worker loop waits out rather than dies of: the database (see is_unavailable) or the
    network (a broker connection, a socket)."""
    return is_unavailable(exc) or isinstance(exc, OSError)


def describe(exc: BaseException) -> str:
    """One line naming the error, without the driver's multi-line detail."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


class Backoff:
    """Capped exponential backoff with full jitter: first_s, doubling, at most cap_s; reset() after a
    success. Jitter keeps a fleet of workers from reconnecting to a restarted server in lockstep."""

    def __init__(self, *, first_s: float = 0.5, cap_s: float = 30.0, rng: Callable[[], float] = random.random) -> None:
        self.first_s, self.cap_s, self._rng = first_s, cap_s, rng
        self.failures = 0

    def next_s(self) -> float:
        ceiling = min(self.cap_s, self.first_s * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return ceiling / 2 + self._rng() * ceiling / 2  # half fixed, so a retry never comes at once

    def reset(self) -> None:
        self.failures = 0


class Outage:
    """One role's outage log, shared by its loops (a role may have a planner and several senders).

    A loop calls `failed(who, exc)` on a transient error and `ok(who)` after a success. The first loop to
    fail logs one warning; the outage ends, with one info line, when every loop that failed has
    succeeded again. Retries in between log at DEBUG."""

    def __init__(self, what: str, logger: logging.Logger, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.log = logger
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._failing: set[str] = set()
        self._since: float | None = None
        self._retries = 0
        self.last_error: str | None = None
        self.outages = 0  # how many began, for tests and heartbeats

    @property
    def down(self) -> bool:
        return bool(self._failing)

    def failed(self, who: str, exc: BaseException) -> None:
        with self._lock:
            self.last_error = describe(exc)
            self._retries += 1
            starting = not self._failing
            self._failing.add(who)
            if starting:
                self._since = self._monotonic()
                self._retries = 1
                self.outages += 1
        if starting:
            self.log.warning("%s: outage began (%s); retrying with backoff until it ends", self.what,
                             self.last_error)
        else:
            self.log.debug("%s: %s still failing (%s)", self.what, who, self.last_error)

    def ok(self, who: str) -> None:
        if who not in self._failing:  # the common case, without the lock
            return
        with self._lock:
            self._failing.discard(who)
            ended = not self._failing
            since, retries = self._since, self._retries
        if ended:
            self.log.info("%s: recovered after %.1fs (%d failed attempts; last error: %s)", self.what,
                          self._monotonic() - (since or self._monotonic()), retries, self.last_error)

    def retrier(self, who: str, **backoff) -> "Retrier":
        return Retrier(self, who, Backoff(**backoff))


class Retrier:
    """One loop's handle on its role's Outage, with its own backoff."""

    def __init__(self, outage: Outage, who: str, backoff: Backoff) -> None:
        self.outage, self.who, self.backoff = outage, who, backoff

    def failed(self, exc: BaseException) -> float:
        """Record a transient failure; returns how long to wait before the next try."""
        self.outage.failed(self.who, exc)
        return self.backoff.next_s()

    def ok(self) -> None:
        self.backoff.reset()
        self.outage.ok(self.who)


def run_passes(one_pass: Callable[[], object], *, retry: Retrier, stop: threading.Event, wait_s: float,
               heartbeat: Callable[..., object] | None = None) -> None:
    """A role's loop: `one_pass()`, then wait `wait_s`, until `stop`. A lost database (a transient error) is
    waited out with the retrier's backoff and the pass tried again; any other error escapes, for the worker's
    supervisor to log and restart the role. `heartbeat(state, error)` after each pass: the outage's last
    error once, as it ends."""
    beat = heartbeat or (lambda *a, **k: None)
    while not stop.is_set():
        try:
            one_pass()
        except Exception as exc:
            if not is_transient(exc):
                raise
            stop.wait(retry.failed(exc))
            continue
        if retry.outage.down:
            beat("ok", retry.outage.last_error)
        retry.ok()
        beat("ok")
        stop.wait(wait_s)
