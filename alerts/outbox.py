"""Write one alert event to the outbox, inside the caller's transaction (alerts.observe writes its own in bulk)."""

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from alerts import events
from alerts.events import EventKind, Tick
from alerts.models import Alert, OutboxEvent


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
