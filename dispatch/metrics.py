"""Dispatch metrics: counters shared through the database, and gauges read from it at scrape time
(`DatabaseCollector`, a prometheus_client collector built for one scrape on the request's session)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import text
from sqlalchemy.orm import Session

from db import heartbeats

QUEUE_CEILING_WARNINGS = "fanout_queue_ceiling_warnings"
FANOUT_ERRORS = "fanout_errors"
SMS_CLAIMS_RECOVERED = "sms_claims_recovered"
COUNTERS = {
    QUEUE_CEILING_WARNINGS: "SMS plans whose backlog would exceed Twilio's queue ceiling at the configured MPS",
    FANOUT_ERRORS: "Outbox events the SMS fan-out could not plan",
    SMS_CLAIMS_RECOVERED: "SMS sends claimed but never recorded (worker or database lost mid-send), "
                          "turned into a retry or unknown",
}
DELIVERY_STATUSES = ("pending", "sending", "sent", "delivered", "undelivered", "failed", "cancelled", "unknown")


def increment(session: Session, name: str, by: int = 1) -> None:
    """Add `by` to counter `name`, inside the caller's transaction."""
    session.execute(
        text("INSERT INTO dispatch_counters (name, value) VALUES (:n, :by) "
             "ON CONFLICT (name) DO UPDATE SET value = dispatch_counters.value + :by"),
        {"n": name, "by": by},
    )


def counters(session: Session) -> dict[str, int]:
    stored = dict(session.execute(text("SELECT name, value FROM dispatch_counters")).all())
    return {name: int(stored.get(name, 0)) for name in COUNTERS}


def outbox_states(session: Session) -> dict[str, int]:
    row = session.execute(text(
        "SELECT count(*) FILTER (WHERE published_at IS NULL AND parked_at IS NULL), "
        "count(*) FILTER (WHERE parked_at IS NOT NULL AND published_at IS NULL) FROM outbox_events"
    )).one()
    return {"pending": int(row[0]), "parked": int(row[1])}


def delivery_statuses(session: Session) -> dict[str, int]:
    stored = dict(session.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status")).all())
    return {status: int(stored.get(status, 0)) for status in DELIVERY_STATUSES}


class DatabaseCollector:
    """The series every process shares through the database, read when collected: outbox events by
    state, SMS deliveries by status, the fan-out's counters and, with `now` and `stall_s`, each worker
    role's heartbeat. Built per scrape on the scrape's session: never a stale process gauge."""

    def __init__(self, session: Session, *, now: datetime | None = None, stall_s: float | None = None) -> None:
        self.session = session
        self.now = now
        self.stall_s = stall_s

    def collect(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily("tocsin_outbox_events", "Outbox events not yet published to MQTT, by state.",
                                   labels=["state"])
        for state, n in outbox_states(self.session).items():
            outbox.add_metric([state], n)
        yield outbox
        sms = GaugeMetricFamily("tocsin_deliveries", "SMS deliveries by status.", labels=["channel", "status"])
        for status, n in delivery_statuses(self.session).items():
            sms.add_metric(["sms", status], n)
        yield sms
        for name, value in counters(self.session).items():
            yield CounterMetricFamily(f"tocsin_{name}_total", f"{COUNTERS[name]}.", value=value)
        if self.now is not None and self.stall_s is not None:
            yield from self._heartbeats(self.now, self.stall_s)

    def _heartbeats(self, now: datetime, stall_s: float) -> Iterator[Metric]:
        """Each worker role's heartbeat age and whether it is up (a beat within stall_s): one series per role
        that has ever beaten."""
        roles = heartbeats.role_statuses(self.session, now=now, stall_s=stall_s)
        age = GaugeMetricFamily("tocsin_worker_heartbeat_age_seconds",
                                "Age of the freshest heartbeat of a worker role.", labels=["role"])
        up = GaugeMetricFamily("tocsin_worker_role_up",
                               f"1 when a worker role beat within {stall_s:g}s, else 0 (stalled).", labels=["role"])
        for role, status in roles.items():
            age.add_metric([role], round(status.age_s, 3))
            up.add_metric([role], 0 if status.stalled else 1)
        yield age
        yield up


class Scrape:
    """Several collectors (a registry, a per-scrape collector) rendered as one exposition."""

    def __init__(self, *parts: object) -> None:
        self.parts = parts

    def collect(self) -> Iterable[Metric]:
        for part in self.parts:
            yield from part.collect()  # type: ignore[attr-defined]
