"""Dispatch metrics: counters shared through the database, gauges read from it, Prometheus text out."""

from __future__ import annotations

from datetime import datetime

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


def heartbeat_lines(session: Session, *, now: datetime, stall_s: float) -> list[str]:
    """Each worker role's heartbeat age and whether it is up (a beat within stall_s): one series per role
    that has ever beaten."""
    roles = heartbeats.role_statuses(session, now=now, stall_s=stall_s)
    lines = ["# HELP tocsin_worker_heartbeat_age_seconds Age of the freshest heartbeat of a worker role.",
             "# TYPE tocsin_worker_heartbeat_age_seconds gauge"]
    lines += [f'tocsin_worker_heartbeat_age_seconds{{role="{r}"}} {s.age_s:.3f}' for r, s in roles.items()]
    lines += [f"# HELP tocsin_worker_role_up 1 when a worker role beat within {stall_s:g}s, else 0 (stalled).",
              "# TYPE tocsin_worker_role_up gauge"]
    lines += [f'tocsin_worker_role_up{{role="{r}"}} {0 if s.stalled else 1}' for r, s in roles.items()]
    return lines


def writer_lines(*, batches: int, reports: int, pid: int) -> str:
    """An API process's group commits of POST /v1/reports (ingest.reports.writer): their number and the
    reports they wrote; reports / batches is the mean batch size."""
    return (f"# HELP tocsin_report_batches_total Group commits of POST /v1/reports by this API process.\n"
            f"# TYPE tocsin_report_batches_total counter\n"
            f'tocsin_report_batches_total{{pid="{pid}"}} {batches}\n'
            f"# HELP tocsin_report_batch_reports_total Reports written by those group commits.\n"
            f"# TYPE tocsin_report_batch_reports_total counter\n"
            f'tocsin_report_batch_reports_total{{pid="{pid}"}} {reports}\n')


def render_prometheus(session: Session, *, now: datetime | None = None, stall_s: float | None = None) -> str:
    """The Prometheus text exposition format (version 0.0.4) of every dispatch metric; with `now` and
    `stall_s`, the worker heartbeats too."""
    lines = ["# HELP tocsin_outbox_events Outbox events not yet published to MQTT, by state.",
             "# TYPE tocsin_outbox_events gauge"]
    lines += [f'tocsin_outbox_events{{state="{k}"}} {v}' for k, v in outbox_states(session).items()]
    lines += ["# HELP tocsin_deliveries SMS deliveries by status.", "# TYPE tocsin_deliveries gauge"]
    lines += [f'tocsin_deliveries{{channel="sms",status="{k}"}} {v}' for k, v in delivery_statuses(session).items()]
    for name, value in counters(session).items():
        lines += [f"# HELP tocsin_{name}_total {COUNTERS[name]}.", f"# TYPE tocsin_{name}_total counter",
                  f"tocsin_{name}_total {value}"]
    if now is not None and stall_s is not None:
        lines += heartbeat_lines(session, now=now, stall_s=stall_s)
    return "\n".join(lines) + "\n"
