"""The SMS side of the dispatcher: plan deliveries for new outbox events, send them at the account's MPS.

One planner loop (woken by the outbox NOTIFY) and a few sender threads. Each delivery is claimed,
sent and recorded in its own transaction, so a crash re-sends at most the message in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.orm import Session, sessionmaker

from dispatch import deliveries, fanout
from dispatch.relay import CHANNEL
from dispatch.senders.base import Sender

log = logging.getLogger(__name__)


class RateLimiter:
    """A token bucket holding at most one token: sends are spaced 1/mps apart, never bunched."""

    def __init__(self, mps: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if mps <= 0:
            raise ValueError(f"mps {mps} must be positive")
        self.interval_s = 1.0 / mps
        self._monotonic = monotonic
        self._next = monotonic()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for this sender's slot; False when `stop` was set meanwhile."""
        with self._lock:
            now = self._monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval_s
        wait = slot - self._monotonic()
        return not (wait > 0 and stop.wait(wait)) and not stop.is_set()

    def refund(self) -> None:
        """Give back a slot that was not used (nothing was due)."""
        with self._lock:
            self._next = max(self._monotonic(), self._next - self.interval_s)


class FanoutWorker:
    def __init__(
        self,
        factory: sessionmaker[Session],
        sender: Sender,
        *,
        rules: Callable[[], Sequence[Any]],
        config: fanout.FanoutConfig,
        clock: Callable[[], datetime],
        max_attempts: int = 8,
        concurrency: int = 4,
        gather_s: float = 0.2,
    ) -> None:
        self.factory = factory
        self.sender = sender
        self.rules = rules
        self.config = config
        self.clock = clock
        self.max_attempts = max_attempts
        self.concurrency = max(1, concurrency)
        # After a NOTIFY wakes the planner it waits this long, so that a burst of events is planned in one
        # batch (a handful of statements) rather than one batch per event. SMS latency is seconds anyway.
        self.gather_s = max(0.0, gather_s)
        self.status_callback = f"{config.public_base_url.rstrip('/')}/v1/twilio/status"
        self.limiter = RateLimiter(config.mps)
        self._wake = threading.Event()

    def plan_once(self, *, limit: int = 100) -> int:
        """Plan one batch of queued outbox events; returns how many events were taken."""
        with self.factory() as session, session.begin():
            planned = fanout.plan_batch(session, rules=self.rules, config=self.config, now=self.clock(), limit=limit)
        if any(p.recipients for p in planned):
            self._wake.set()
        return len(planned)

    def send_once(self) -> deliveries.SendResult | None:
        """Send the next due delivery (no pacing); None when nothing is due."""
        with self.factory() as session, session.begin():
            return deliveries.send_next(session, self.sender, status_callback=self.status_callback,
                                        max_attempts=self.max_attempts, now=self.clock())

    def drain(self) -> int:
        """Plan everything queued and send everything due, unpaced (tests, one-shot runs)."""
        while self.plan_once() > 0:
            pass
        sent = 0
        while self.send_once() is not None:
            sent += 1
        return sent

    def _seconds_until_due(self, cap_s: float) -> float:
        with self.factory() as session:
            due = deliveries.next_due_at(session)
        if due is None:
            return cap_s
        return min(cap_s, max(0.0, (due - self.clock()).total_seconds()))

    def _sender_loop(self, stop: threading.Event, poll_s: float) -> None:
        while not stop.is_set():
            try:
                if not self.limiter.acquire(stop):
                    return
                if self.send_once() is not None:
                    continue
                self.limiter.refund()
                self._wake.clear()
                if self.send_once() is None:  # a plan may have landed between the two
                    self._wake.wait(self._seconds_until_due(poll_s))
            except Exception:  # a sender thread must survive a lost database or a bad row
                log.exception("SMS sender loop error; retrying in 1s")
                stop.wait(1.0)

    def run_forever(self, *, dsn: str, stop: threading.Event, poll_s: float = 5.0) -> None:
        """Plan on every outbox NOTIFY (and a safety poll) while sender threads drain the deliveries."""
        threads = [threading.Thread(target=self._sender_loop, args=(stop, min(poll_s, 1.0)),
                                    name=f"sms-sender-{i}", daemon=True) for i in range(self.concurrency)]
        for t in threads:
            t.start()
        try:
            while not stop.is_set():
                try:
                    with psycopg.connect(dsn, autocommit=True) as listen:
                        listen.execute(f"LISTEN {CHANNEL}")
                        while not stop.is_set():
                            while not stop.is_set() and self.plan_once() > 0:
                                pass
                            for _ in listen.notifies(timeout=poll_s, stop_after=1):
                                pass
                            if self.gather_s:
                                stop.wait(self.gather_s)
                except Exception as exc:  # lost database, or a bug: log, back off, keep the dispatcher alive
                    log.warning("SMS planner error (%s); retrying in 1s", exc, exc_info=True)
                    stop.wait(1.0)
        finally:
            self._wake.set()
            for t in threads:
                t.join(timeout=5)
