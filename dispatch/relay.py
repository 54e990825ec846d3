"""The outbox relay: claim pending events, publish them, mark them published only after the broker's ack."""

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import psycopg
from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

from alerts import outbox
from db import raw as db_raw
from db.plans import GENERIC_PLANS
from db.outage import Outage, Retrier, is_transient
from dispatch.senders.base import DeliveryError
from dispatch.zone_state import DIRTY_ALERTS, STATE_COLUMNS, ZoneStates

log = logging.getLogger(__name__)

CHANNEL = outbox.CHANNEL

# SKIP LOCKED lets several relays share the outbox without blocking or double-claiming. The claim marks what it
# claims published at once, in its own statement: the mark is committed only with the pass, after the broker's
# acks, and a pass rolls back on any error, so a row is published in the database only once the broker has it.
# An event that then fails is unmarked (`_FAILED`, `_UNCLAIM`): a rare path, where the common one saves a round
# trip a pass. The claim also makes the rest of its transaction use generic plans (`plans`, evaluated once; the
# statements after it were otherwise re-planned at every batch, 0.7 ms of server CPU for a 0.1 ms query), and
# reads the retained states (dispatch.zone_state) of the zones its events name and of those left dirty by an
# earlier pass (`:layers`, `:codes`): rows of `part` 1, after the events (`part` 0). In the claim's own snapshot,
# which holds every change its events announce; a later change writes an event of its own. Read in a statement
# of their own, the states cost a round trip a pass (the relay's CPU per event in bench.latency at 200/s
# fell about 8% without it, in seven alternating pairs). `attempts` and `last_error` are the row's before
# the claim.
_CLAIM = """
    WITH plans AS MATERIALIZED (SELECT """ + GENERIC_PLANS + """ AS mode),
    picked AS MATERIALIZED (
        SELECT o.id, o.attempts, o.last_error FROM outbox_events o, plans
        WHERE o.published_at IS NULL AND o.parked_at IS NULL AND o.next_attempt_at <= :now
          AND plans.mode IS NOT NULL
        ORDER BY o.id
        LIMIT :limit
        FOR UPDATE OF o SKIP LOCKED
    ),
    claimed AS (
        UPDATE outbox_events o SET published_at = :now, attempts = o.attempts + 1, last_error = NULL
        FROM picked p WHERE o.id = p.id
        RETURNING o.id, o.event_id, o.kind, o.payload, p.attempts, p.last_error, o.created_at
    ),
    dirty AS (
        SELECT c.payload->'zone'->>'layer' AS layer, c.payload->'zone'->>'code' AS code FROM claimed c
        UNION ALL
        SELECT * FROM unnest(:layers::text[], :codes::text[])
    ),
    states AS (""" + DIRTY_ALERTS + """)
    SELECT 0 AS part, c.id, c.event_id, c.kind, c.payload, c.attempts, c.last_error, c.created_at, """ + \
    ", ".join(f"NULL AS {column}" for column in STATE_COLUMNS) + """
    FROM claimed c
    UNION ALL
    SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, s.* FROM states s
    ORDER BY part, id, alert_id
"""
# An attempt that failed: not published, its attempts counted, retried after a backoff or parked.
_FAILED = ("UPDATE outbox_events SET published_at = NULL, attempts = :a, last_error = :err, next_attempt_at = :next, "
           "parked_at = CASE WHEN :park THEN :now::timestamptz ELSE NULL END WHERE id = :id")
# Claimed but not attempted (the broker went away first): as the claim found them.
_UNCLAIM = ("UPDATE outbox_events o SET published_at = NULL, attempts = u.attempts, last_error = u.last_error "
            "FROM unnest(:ids::bigint[], :attempts::int[], :errors::text[]) u(id, attempts, last_error) "
            "WHERE o.id = u.id")


class Publisher(Protocol):
    def publish(self, topic: str, payload: dict[str, Any] | bytes | None, *, retain: bool = False,
                expiry_s: int | None = None) -> None: ...


def alert_topic(prefix: str, payload: dict[str, Any]) -> str:
    zone = payload["zone"]
    return f"{prefix}/alerts/{zone['layer']}/{zone['code']}/{payload['category']}"


def backoff_s(attempts: int, *, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter, capped at five minutes."""
    return min(300.0, 2.0 ** min(attempts, 10)) * (0.5 + rng() / 2)


class Relay:
    """The outbox relay, on a connection of its own (`engine`'s, checked out at the first pass and held until
    `close`): a pass is BEGIN, the claim and COMMIT, three round trips, with no ORM session around them (a
    session per pass was about a fifth of the relay's CPU)."""

    def __init__(
        self,
        engine: Engine,
        publisher: Publisher,
        *,
        topic_prefix: str,
        public_base_url: str,
        batch_size: int = 200,
        max_attempts: int = 12,
        ack_timeout_s: float = 10.0,
        observe_ack: Callable[[float], None] | None = None,
    ) -> None:
        self.engine = engine
        self._held: PoolProxiedConnection | None = None
        # Called with each published event's seconds from its created_at to the broker's ack (for /metrics).
        self.observe_ack = observe_ack
        self.publisher = publisher
        self.topic_prefix = topic_prefix
        self.public_base_url = public_base_url.rstrip("/")
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.ack_timeout_s = ack_timeout_s
        self.zone_states = ZoneStates(publisher, topic_prefix=topic_prefix)

    def _connection(self) -> psycopg.Connection:
        """The held connection; one that was lost (the database restarted) is let go and another checked out,
        through the pool's own check (db.session)."""
        held = self._held
        if held is not None and not (held.driver_connection.closed or held.driver_connection.broken):
            return held.driver_connection
        if held is not None:
            self._held = None
            held.invalidate()
        self._held = self.engine.raw_connection()
        return self._held.driver_connection

    def close(self) -> None:
        """Hand the held connection back to the engine's pool."""
        held, self._held = self._held, None
        if held is not None:
            held.close()

    def __enter__(self) -> "Relay":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _message(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "link": f"{self.public_base_url}/a/{payload['alert_id']}"}

    def _expiry_s(self, payload: dict[str, Any], now: datetime) -> int | None:
        expires = payload.get("expires_at")
        if not expires:
            return None
        return max(1, int((datetime.fromisoformat(expires) - now).total_seconds()))

    def run_once(self, *, now: datetime) -> int:
        """Publish one batch of due events; returns how many were claimed.

        The claim marks the batch published (`_CLAIM`). The batch is sent first, then the retained states of
        the zones it touches (dispatch.zone_state, read by the claim itself), and only then are the PUBACKs of
        both awaited (pipelined: one wait for the lot); an event that fails is unmarked, and the pass commits,
        all inside the claim's transaction. A zone's state may so go out for an event the broker then fails to
        take: the state is what the database holds, and the event is retried.
        """
        started = time.monotonic()  # an ack's time is `now` plus the time since: `now` stays the only clock
        conn = self._connection()
        with conn.transaction():  # rolls back on any error: nothing claimed is then marked
            claimed = db_raw.execute_on(conn, _CLAIM, {"now": now, "limit": self.batch_size,
                                                       **self.zone_states.params()}).fetchall()
            rows = [r for r in claimed if r.part == 0]
            sent = []
            for i, row in enumerate(rows):
                try:
                    ticket = self._send(row.payload, now)
                except DeliveryError as exc:
                    self._failed(conn, row_id=row.id, attempts=row.attempts + 1, error=exc, now=now)
                    if exc.retryable:
                        # The broker is likely down: leave the rest of the batch for the next pass.
                        self._unclaim(conn, rows[i + 1:])
                        break
                    continue
                sent.append((row, ticket))
                self.zone_states.mark(row.payload)
            zones_sent = self.zone_states.send_read([r for r in claimed if r.part == 1], now=now) \
                if self.zone_states.dirty else []
            deadline = time.monotonic() + self.ack_timeout_s
            for row, ticket in sent:
                try:
                    self._confirm(ticket, deadline - time.monotonic())
                except DeliveryError as exc:
                    self._failed(conn, row_id=row.id, attempts=row.attempts + 1, error=exc, now=now)
                    continue
                if self.observe_ack is not None:
                    acked_at = now + timedelta(seconds=time.monotonic() - started)
                    self.observe_ack(max(0.0, (acked_at - row.created_at).total_seconds()))
                log.debug("published event %s (%s)", row.event_id, row.kind)
            self.zone_states.confirm(zones_sent)
        return len(rows)

    def _send(self, payload: dict[str, Any], now: datetime) -> Any:
        try:
            topic, message, expiry_s = alert_topic(self.topic_prefix, payload), self._message(payload), \
                self._expiry_s(payload, now)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A row no writer of ours makes (written by hand, or by an older version): parked, with the reason,
            # rather than stopping the relay for every event behind it.
            raise DeliveryError(f"event payload cannot be published ({type(exc).__name__}: {exc})",
                                retryable=False) from exc
        if hasattr(self.publisher, "publish_nowait"):
            return self.publisher.publish_nowait(topic, message, expiry_s=expiry_s)
        self.publisher.publish(topic, message, expiry_s=expiry_s)
        return None

    def _confirm(self, ticket: Any, timeout_s: float) -> None:
        if ticket is not None:
            self.publisher.confirm(ticket, timeout_s=timeout_s)

    def _failed(self, conn: psycopg.Connection, *, row_id: int, attempts: int, error: DeliveryError,
                now: datetime) -> None:
        park = (not error.retryable) or attempts >= self.max_attempts
        db_raw.execute_on(conn, _FAILED, {"a": attempts, "err": str(error)[:1000],
                                          "next": now + timedelta(seconds=backoff_s(attempts)), "park": park,
                                          "now": now, "id": row_id})
        log.warning("event row %s attempt %s failed (%s)%s", row_id, attempts, error, " - parked" if park else "")

    def _unclaim(self, conn: psycopg.Connection, rows: list[Any]) -> None:
        if rows:
            db_raw.execute_on(conn, _UNCLAIM, {"ids": [r.id for r in rows], "attempts": [r.attempts for r in rows],
                                               "errors": [r.last_error for r in rows]})

    def _broker_up(self) -> bool:
        return getattr(self.publisher, "connected", True)

    def drain(self, *, clock: Callable[[], datetime]) -> int:
        total = 0
        while (n := self.run_once(now=clock())) > 0:
            total += n
            if n < self.batch_size:
                break
        return total

    def run_forever(self, *, dsn: str, clock: Callable[[], datetime], stop: threading.Event,
                    poll_s: float = 5.0, heartbeat: Callable[..., Any] | None = None,
                    outage: Outage | None = None) -> None:
        """Drain, then sleep until NOTIFY (or the safety poll) says there is more.

        A lost database or broker is waited out (db.outage: backoff with jitter, one warning per outage
        and one info line on recovery); anything else escapes, for the worker's supervisor to log and
        restart the role. `heartbeat(state, error)` is called after each pass (it throttles itself)."""
        outage = outage or Outage("relay: database", log)
        db = outage.retrier("relay")
        broker = Outage("relay: MQTT broker", log).retrier("relay")
        beat = heartbeat or (lambda *a, **k: None)
        try:
            self._serve(dsn=dsn, clock=clock, stop=stop, poll_s=poll_s, beat=beat, db=db, broker=broker)
        finally:
            self.close()

    def _serve(self, *, dsn: str, clock: Callable[[], datetime], stop: threading.Event, poll_s: float,
               beat: Callable[..., Any], db: Retrier, broker: Retrier) -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as listen:
                    listen.execute(f"LISTEN {CHANNEL}")
                    while not stop.is_set():
                        if not self._broker_up():
                            # A broker outage is nobody's event's fault: no attempts are spent and
                            # nothing is parked; events wait in the outbox until it is back (paho
                            # reconnects with its own backoff).
                            broker.failed(ConnectionError("MQTT broker not connected"))
                            beat("broker_down")
                            self.publisher.wait_connected(min(poll_s, 1.0))
                            continue
                        broker.ok()
                        self.drain(clock=clock)
                        if db.outage.down:
                            beat("ok", db.outage.last_error)  # says what it recovered from
                        db.ok()
                        beat("ok")
                        for _ in listen.notifies(timeout=poll_s, stop_after=1):
                            pass
            except Exception as exc:
                if not is_transient(exc):
                    raise
                stop.wait(db.failed(exc))
