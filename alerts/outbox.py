"""Write alert events to the outbox, inside the caller's transaction."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from alerts.models import Alert, OutboxEvent

SCHEMA = "tocsin.alert_event/1"


def event_payload(*, event_id: uuid.UUID, kind: str, reason: str, alert: Alert, zone: dict[str, str]) -> dict[str, Any]:
    """The versioned JSON body consumers receive (docs/mqtt.md)."""
    return {
        "schema": SCHEMA,
        "event_id": str(event_id),
        "kind": kind,
        "reason": reason,
        "alert_id": alert.id,
        "rule": alert.rule,
        "state": alert.state,
        "severity": alert.severity,
        "category": alert.category,
        "zone": zone,
        "evidence_count": alert.evidence_count,
        "distinct_authors": alert.distinct_authors,
        "opened_at": alert.opened_at.isoformat(),
        "updated_at": alert.updated_at.isoformat(),
        "expires_at": alert.expires_at.isoformat() if alert.expires_at else None,
        "ack_code": alert.ack_code,
    }


def emit(session: Session, *, alert: Alert, kind: str, reason: str, zone: dict[str, str], now: datetime) -> OutboxEvent:
    """Queue one event; the relay publishes it after commit (a trigger sends NOTIFY)."""
    event_id = uuid.uuid4()
    event = OutboxEvent(
        event_id=event_id,
        alert_id=alert.id,
        kind=kind,
        payload=event_payload(event_id=event_id, kind=kind, reason=reason, alert=alert, zone=zone),
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    session.add(event)
    return event
