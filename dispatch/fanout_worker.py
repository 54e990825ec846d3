"""The SMS side of the dispatcher: plan deliveries for new outbox events, send them at the account's MPS.

One planner loop (woken by the outbox NOTIFY) and a few sender threads. Each delivery is claimed
(committed as `sending`) before it is sent and recorded afterwards, so a crash re-sends at most the
messages in flight, once each, never past max_attempts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.outage import Outage, Retrier, is_transient
from dispatch import deliveries, fanout
from dispatch.relay import CHANNEL
from dispatch.senders.base import Sender

log = logging.getLogger(__name__)

# How long an idle sender other than the lead waits for a wake-up before it looks by itself: a safety net
# only, as the planner, the recovery pass and a sender that finds work all wake it (_sender_loop).
FOLLOWER_WAIT_S = 60.0
PLAN_LIMIT = 100  # outbox events a planning pass takes at most (one transaction)


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
        sending_timeout_s: float = 120.0,
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
        # A claim left `sending` this long is presumed lost with its worker (see recover_stuck).
        self.sending_timeout_s = sending_timeout_s
        self.recovery_interval_s = min(30.0, max(1.0, sending_timeout_s / 4))
        self._next_recovery_at: datetime | None = None

    def plan_once(self, *, limit: int = PLAN_LIMIT) -> int:
        """Plan one batch of queued outbox events; returns how many events were taken."""
        with self.factory() as session, session.begin():
            planned = fanout.plan_batch(session, rules=self.rules, config=self.config, now=self.clock(), limit=limit)
        if any(p.recipients for p in planned):
            self._wake.set()
        return len(planned)

    def _plan_all(self, stop: threading.Event) -> int:
        """Plan batches until one comes back short (nothing more is queued); returns how many events were taken."""
        taken = 0
        while not stop.is_set():
            n = self.plan_once()
            taken += n
            if n < PLAN_LIMIT:
                break
        return taken

    def send_once(self) -> deliveries.SendResult | None:
        """Send the next due delivery (no pacing); None when nothing is due.

        Claim and commit, call the provider outside any transaction, record in a second one: the
        attempt is counted before the send, so nothing that fails afterwards can re-send past
        max_attempts. Runs the recovery pass first whenever it is due."""
        now = self.clock()
        if self._next_recovery_at is None or now >= self._next_recovery_at:
            self.recover_stuck(now=now)
        with self.factory() as session, session.begin():
            claim = deliveries.claim_next(session, max_attempts=self.max_attempts, now=now)
        if not isinstance(claim, deliveries.Claim):
            return claim
        outcome = deliveries.call_provider(self.sender, claim, status_callback=self.status_callback)
        return self._record(claim, outcome)

    def _record(self, claim: deliveries.Claim, outcome: deliveries.Outcome) -> deliveries.SendResult:
        """Record a send, retrying a lost connection briefly: each failure here is a likely re-send later."""
        for pause_s in (0.2, 1.0, None):
            try:
                with self.factory() as session, session.begin():
                    return deliveries.record_result(session, claim, outcome, max_attempts=self.max_attempts,
                                                    now=self.clock())
            except OperationalError:
                if pause_s is None:  # left `sending`: the recovery pass retries it after the timeout
                    raise
                log.warning("delivery %s: recording attempt %d failed; retrying", claim.delivery_id, claim.attempt,
                            exc_info=True)
                time.sleep(pause_s)
        raise AssertionError("unreachable")

    def recover_stuck(self, *, now: datetime | None = None) -> list[deliveries.SendResult]:
        """Retry (or mark `unknown`) claims left `sending` past the timeout by a worker that died mid-send."""
        now = now or self.clock()
        self._next_recovery_at = now + timedelta(seconds=self.recovery_interval_s)
        with self.factory() as session, session.begin():
            recovered = deliveries.recover_stuck(session, timeout_s=self.sending_timeout_s,
                                                 max_attempts=self.max_attempts, now=now)
        if any(r.status == "pending" for r in recovered):
            self._wake.set()
        return recovered

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

    def _sender_loop(self, stop: threading.Event, poll_s: float, retry: Retrier | None = None, *,
                     lead: bool = True, halt: threading.Event | None = None) -> None:
        """Send due deliveries at the account's rate. A lost database is waited out with backoff (the
        role's Outage logs it once); any other error escapes and ends this thread, which run_forever
        notices and restarts.

        With nothing to send, only the `lead` sender looks again every `poll_s` (sooner when a delivery
        falls due: a retry's backoff ends); the others wait to be woken, by the planner, by the recovery
        pass, or by any sender that found something to send, so that a burst goes out at full
        concurrency. Each sender used to look every second (three transactions), as far as the MPS spacing
        let it: four looks a second at 4 MPS or more.

        `halt`: set when the planner that started this sender ends, whether by `stop` or by an error: the
        supervisor's new planner starts senders of its own, and this one must not go on beside them."""
        retry = retry or Outage("sms: database", log).retrier(threading.current_thread().name)
        halt = halt or threading.Event()
        while not (stop.is_set() or halt.is_set()):
            try:
                if not self.limiter.acquire(stop) or halt.is_set():
                    return
                if self.send_once() is not None:
                    retry.ok()
                    self._wake.set()  # there may be more: the idle senders join in
                    continue
                self.limiter.refund()
                self._wake.clear()
                if self.send_once() is None:  # a plan may have landed between the two
                    retry.ok()
                    if stop.is_set() or halt.is_set():  # the ending planner's wake-up may have come first
                        return
                    self._wake.wait(self._seconds_until_due(poll_s) if lead else FOLLOWER_WAIT_S)
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("SMS sender %s failed; the planner starts it again", retry.who)
                    return
                stop.wait(retry.failed(exc))

    def _start_sender(self, i: int, stop: threading.Event, poll_s: float, outage: Outage,
                      halt: threading.Event) -> threading.Thread:
        name = f"sms-sender-{i}"
        t = threading.Thread(target=self._sender_loop, args=(stop, poll_s, outage.retrier(name)),
                             kwargs={"lead": i == 0, "halt": halt}, name=name, daemon=True)
        t.start()
        return t

    def run_forever(self, *, dsn: str, stop: threading.Event, poll_s: float = 5.0,
                    heartbeat: Callable[..., Any] | None = None) -> None:
        """Plan on outbox NOTIFYs (and a safety poll) while sender threads drain the deliveries.

        The planner LISTENs only while idle. Once a pass has planned something it UNLISTENs and looks
        again every `gather_s` until a pass finds nothing, then LISTENs again and looks once more before it
        waits. PostgreSQL signals every backend that LISTENs on the database at each commit that notifies:
        while reports keep coming, hearing each of them cost the committing backend and this one's
        backend CPU on every report (about 0.04 ms each), and told the planner nothing that its next
        look in `gather_s` would not.

        A lost database is waited out with backoff and logged once per outage for the whole role
        (planner and senders share one Outage); a sender thread that dies of anything else is logged
        and replaced; any other planner error escapes, for the worker's supervisor to restart the role, and
        this planner's senders end with it (`halt`).
        `heartbeat(state, error)` is called after each planning pass."""
        outage = Outage("sms: database", log)
        retry = outage.retrier("planner")
        beat = heartbeat or (lambda *a, **k: None)
        send_poll_s = min(poll_s, 1.0)
        halt = threading.Event()  # this planner's senders end with it, however it ends
        threads = [self._start_sender(i, stop, send_poll_s, outage, halt) for i in range(self.concurrency)]
        try:
            while not stop.is_set():
                try:
                    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as listen:
                        listening = False
                        while not stop.is_set():
                            taken = self._plan_all(stop)
                            if retry.outage.down:
                                beat("ok", retry.outage.last_error)
                            retry.ok()
                            for i, t in enumerate(threads):
                                if not t.is_alive() and not stop.is_set():
                                    log.warning("SMS sender thread %s ended; starting it again", t.name)
                                    threads[i] = self._start_sender(i, stop, send_poll_s, outage, halt)
                            beat("ok")
                            if taken and self.gather_s:  # busy: look again soon, without hearing every commit
                                if listening:
                                    listen.execute(f"UNLISTEN {CHANNEL}")
                                    listening = False
                                stop.wait(self.gather_s)
                                continue
                            if not listening:
                                listen.execute(f"LISTEN {CHANNEL}")
                                listening = True
                                continue  # an event committed before the LISTEN woke nobody: look once more
                            for _ in listen.notifies(timeout=poll_s, stop_after=1):
                                pass
                            if self.gather_s:
                                stop.wait(self.gather_s)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    stop.wait(retry.failed(exc))
        finally:
            halt.set()
            self._wake.set()
            for t in threads:
                t.join(timeout=5)
