"""Send due SMS deliveries and record what Twilio reports about them. Services never commit.

A delivery is `pending` until the provider accepts it (`sent`, with its SID), then follows the
status callbacks to `delivered` or `undelivered`. Permanent errors (Twilio 21211, 21610, 21614)
make it `failed` at once; retryable ones (20429, 5xx, timeouts) back off and retry until
`max_attempts`. A delivery whose responder opted out, was deleted, or whose alert no longer
needs it (resolved; or acknowledged, for an escalation) is `cancelled`, never sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from dispatch.relay import backoff_s
from dispatch.senders.base import DeliveryError, Sender

log = logging.getLogger(__name__)

# SKIP LOCKED: several dispatchers can send; each delivery is sent by one of them.
_CLAIM = text(
    """
    SELECT d.id, d.body, d.attempts, d.tier, r.phone, r.opted_out, a.state AS alert_state
    FROM deliveries d
    LEFT JOIN responders r ON r.id = d.responder_id
    JOIN alerts a ON a.id = d.alert_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= :now
    ORDER BY d.next_attempt_at, d.id
    LIMIT 1
    FOR UPDATE OF d SKIP LOCKED
    """
)

_UPDATE = text(
    """
    UPDATE deliveries SET status = :status, provider_sid = coalesce(:sid, provider_sid), attempts = :attempts,
           last_error = :error, next_attempt_at = :next, updated_at = :now
    WHERE id = :id
    """
)


@dataclass(frozen=True)
class SendResult:
    delivery_id: int
    status: str  # sent | pending (retry later) | failed | cancelled
    error: str | None = None


def _cancel_reason(row) -> str | None:
    if row.phone is None:
        return "responder was deleted"
    if row.opted_out:
        return "responder opted out"
    if row.alert_state == "resolved":
        return "alert resolved before sending"
    if row.alert_state == "acknowledged" and row.tier > 1:
        return "alert acknowledged before the escalation was sent"
    return None


def send_next(session: Session, sender: Sender, *, status_callback: str | None, max_attempts: int,
              now: datetime) -> SendResult | None:
    """Send the most overdue pending delivery, if any; the caller commits after each one."""
    row = session.execute(_CLAIM, {"now": now}).one_or_none()
    if row is None:
        return None
    params = {"id": row.id, "sid": None, "attempts": row.attempts, "error": None, "next": now, "now": now}
    reason = _cancel_reason(row)
    if reason:
        session.execute(_UPDATE, {**params, "status": "cancelled", "error": reason})
        log.info("delivery %s cancelled: %s", row.id, reason)
        return SendResult(row.id, "cancelled", reason)
    attempts = row.attempts + 1
    try:
        sid = sender.send(row.phone, row.body, status_callback=status_callback)
    except DeliveryError as exc:
        give_up = not exc.retryable or attempts >= max_attempts
        status = "failed" if give_up else "pending"
        nxt = now if give_up else now + timedelta(seconds=backoff_s(attempts))
        session.execute(_UPDATE, {**params, "status": status, "attempts": attempts, "error": str(exc)[:1000],
                                  "next": nxt})
        log.warning("delivery %s attempt %d failed (retryable=%s, code=%s)%s", row.id, attempts, exc.retryable,
                    exc.code, " - giving up" if give_up else "")
        return SendResult(row.id, status, str(exc))
    session.execute(_UPDATE, {**params, "status": "sent", "sid": sid, "attempts": attempts})
    return SendResult(row.id, "sent")


# --- status callbacks ------------------------------------------------------------------------

# Twilio MessageStatus -> our status. Intermediate states all mean "the provider has it".
_TWILIO_STATUS = {
    "accepted": "sent", "scheduled": "sent", "queued": "sent", "sending": "sent", "sent": "sent",
    "delivered": "delivered", "read": "delivered", "undelivered": "undelivered", "failed": "failed",
}
# A late "sent" callback must not undo "delivered": callbacks can arrive out of order.
_RANK = {"pending": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2, "cancelled": 2}


def record_status(session: Session, *, sid: str, twilio_status: str, error_code: str | None,
                  now: datetime) -> str | None:
    """Apply a status callback to the delivery with provider SID `sid`; returns its status, None if unknown."""
    status = _TWILIO_STATUS.get(twilio_status.lower())
    if status is None:
        log.warning("status callback for %s has unknown MessageStatus %r; ignored", sid, twilio_status)
        return None
    row = session.execute(
        text("SELECT id, status FROM deliveries WHERE provider_sid = :sid FOR UPDATE"), {"sid": sid}
    ).one_or_none()
    if row is None:
        log.info("status callback for unknown message %s", sid)
        return None
    if _RANK[status] < _RANK[row.status] or (status == row.status and not error_code):
        return row.status
    session.execute(
        text("UPDATE deliveries SET status = :s, last_error = coalesce(:err, last_error), updated_at = :now "
             "WHERE id = :id"),
        {"s": status, "err": f"twilio error {error_code}" if error_code else None, "now": now, "id": row.id},
    )
    log.info("delivery %s is %s", row.id, status)
    return status


def next_due_at(session: Session) -> datetime | None:
    """When the next pending delivery becomes due (for the worker's sleep)."""
    return session.execute(text("SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'")).scalar()
