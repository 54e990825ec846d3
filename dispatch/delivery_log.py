"""Who was notified of an alert: its deliveries with the responder, channel, status and acknowledgement."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts.errors import UnknownAlert

_DELIVERIES = text("""
    SELECT d.id, r.name AS responder, d.channel, d.tier, d.status, d.attempts, d.last_error,
           d.created_at, d.updated_at, o.kind AS event_kind,
           (r.name IS NOT NULL AND a.acknowledged_by = 'responder:' || r.name) AS acknowledged
    FROM deliveries d
    JOIN alerts a ON a.id = d.alert_id
    LEFT JOIN responders r ON r.id = d.responder_id
    LEFT JOIN outbox_events o ON o.event_id = d.event_id
    WHERE d.alert_id = :alert_id
    ORDER BY d.created_at, d.id
""")


@dataclass(frozen=True)
class DeliveryView:
    id: int
    responder: str | None  # None once the responder was deleted (their deliveries stay)
    channel: str
    tier: int
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    event_kind: str | None  # the alert event it told of: opened, escalated, ...
    acknowledged: bool  # this responder acknowledged the alert (by SMS reply)


def alert_deliveries(session: Session, *, alert_id: int) -> list[DeliveryView]:
    """The alert's deliveries, oldest first; UnknownAlert when there is no such alert."""
    if session.execute(text("SELECT 1 FROM alerts WHERE id = :id"), {"id": alert_id}).first() is None:
        raise UnknownAlert(f"alert {alert_id} does not exist", alert_id=alert_id)
    rows = session.execute(_DELIVERIES, {"alert_id": alert_id}).mappings().all()
    return [DeliveryView(**{**dict(r), "acknowledged": bool(r["acknowledged"])}) for r in rows]
