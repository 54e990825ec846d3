"""Dispatch metrics: counters shared through the database, gauges read from it, Prometheus text out."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

QUEUE_CEILING_WARNINGS = "fanout_queue_ceiling_warnings"
FANOUT_ERRORS = "fanout_errors"
COUNTERS = {
    QUEUE_CEILING_WARNINGS: "SMS plans whose backlog would exceed Twilio's queue ceiling at the configured MPS",
    FANOUT_ERRORS: "Outbox events the SMS fan-out could not plan",
}
DELIVERY_STATUSES = ("pending", "sent", "delivered", "undelivered", "failed", "cancelled")


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


def render_prometheus(session: Session) -> str:
    """The Prometheus text exposition format (version 0.0.4) of every dispatch metric."""
    lines = ["# HELP tocsin_outbox_events Outbox events not yet published to MQTT, by state.",
             "# TYPE tocsin_outbox_events gauge"]
    lines += [f'tocsin_outbox_events{{state="{k}"}} {v}' for k, v in outbox_states(session).items()]
    lines += ["# HELP tocsin_deliveries SMS deliveries by status.", "# TYPE tocsin_deliveries gauge"]
    lines += [f'tocsin_deliveries{{channel="sms",status="{k}"}} {v}' for k, v in delivery_statuses(session).items()]
    for name, value in counters(session).items():
        lines += [f"# HELP tocsin_{name}_total {COUNTERS[name]}.", f"# TYPE tocsin_{name}_total counter",
                  f"tocsin_{name}_total {value}"]
    return "\n".join(lines) + "\n"
