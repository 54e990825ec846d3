"""The outbox: write one alert event inside the caller's transaction (alerts.observe writes its own in bulk),
and the admin's view of events not yet published (list, unpark). Never commits."""

import uuid
from collections.abc import Mapping
from datetime import datetime

from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts import events
from alerts.events import EventKind, Tick
from alerts.models import Alert, OutboxEvent
from db.errors import Conflict, NotFound

# Every insert into outbox_events sends NOTIFY on this channel (a statement trigger, migration 0001); the
# relay (dispatch.relay) LISTENs on it.
CHANNEL = "tocsin_outbox"
_UNPUBLISHED = {
    "parked": "parked_at IS NOT NULL AND published_at IS NULL",
    "pending": "parked_at IS NULL AND published_at IS NULL",
}


def emit(session: Session, *, alert: Alert, kind: EventKind, reason: str, zone: Mapping[str, str], now: datetime,
         evidence_by_source: Mapping[str, int], rules: Mapping[str, str], silenced: bool,
         tick: Tick | None = None) -> OutboxEvent:
    """Queue one event (its payload from `events.payload`); the relay publishes it after commit (a trigger
    sends NOTIFY)."""
    event_id = uuid.uuid4()
    payload = events.payload(event_id=event_id, kind=kind, reason=reason, alert=alert, zone=zone,
                             evidence_by_source=evidence_by_source, rules=rules, silenced=silenced, tick=tick)
    event = OutboxEvent(event_id=event_id, alert_id=alert.id, kind=payload["kind"], payload=payload,
                        created_at=now, next_attempt_at=now, attempts=0)
    session.add(event)
    return event


def unpublished(session: Session, *, state: Literal["parked", "pending"], limit: int) -> list[dict[str, Any]]:
    """Events not yet on MQTT, oldest first: `parked` ones gave up (see last_error), `pending` ones wait."""
    rows = session.execute(text(
        "SELECT id, event_id::text AS event_id, alert_id, kind, attempts, last_error, created_at, next_attempt_at, "
        f"published_at, parked_at FROM outbox_events WHERE {_UNPUBLISHED[state]} ORDER BY id LIMIT :limit"
    ), {"limit": limit}).mappings().all()
    return [dict(r) for r in rows]


def unpark(session: Session, *, outbox_id: int, now: datetime) -> None:
    """Give a parked event a fresh attempt count and wake the relay (on commit) to try it now."""
    found = session.execute(text("SELECT parked_at, published_at FROM outbox_events WHERE id = :id FOR UPDATE"),
                            {"id": outbox_id}).one_or_none()
    if found is None:
        raise NotFound(f"outbox event {outbox_id} does not exist")
    if found.parked_at is None or found.published_at is not None:
        raise Conflict(f"outbox event {outbox_id} is not parked")
    session.execute(text("UPDATE outbox_events SET parked_at = NULL, attempts = 0, next_attempt_at = :now "
                         "WHERE id = :id"), {"id": outbox_id, "now": now})
    session.execute(text(f"NOTIFY {CHANNEL}"))  # an UPDATE fires no trigger: the relay would wait for its poll
