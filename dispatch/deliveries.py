"""Send due SMS deliveries and record what Twilio reports about them. Services never commit.

Every send is three steps, and the caller commits after each of the first and the last:

1. `claim_next`: the most overdue `pending` delivery becomes `sending`, its attempt counted and
   `claimed_at` set (or it is `cancelled`: responder opted out or deleted, alert resolved, or
   acknowledged for an escalation). Committed BEFORE the provider is called, so no failure after
   this point can send it more than `max_attempts` times.
2. `call_provider`: the send, outside any transaction. After an interrupted attempt, Twilio is
   first asked whether it already has the message (`find_sent`); if so it is not sent again.
3. `record_result`: `sent` with the provider's SID; `failed` for a permanent error (Twilio 21211,
   21610, 21614) or the last attempt; back to `pending` with backoff for a retryable one (20429,
   5xx, timeouts). A SID that cannot be stored (already on another row, too long) is logged and
   the send recorded without it, so a bad SID never re-sends.

A crash or a lost database between 1 and 3 leaves `sending`; `recover_stuck` turns a claim older
than the sending timeout into a retry, or into `unknown` (the provider may or may not have sent
it) once the attempts are spent. Status callbacks then move `sent` (or `unknown`, matched by SID)
to `delivered` or `undelivered`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from dispatch import metrics
from dispatch.relay import backoff_s
from dispatch.senders.base import DeliveryError, Sender

log = logging.getLogger(__name__)

# SKIP LOCKED: several dispatchers can send; each delivery is claimed by one of them.
_DUE = text(
    """
    SELECT d.id, d.body, d.attempts, d.tier, d.interrupted_at, r.phone, r.opted_out, a.state AS alert_state
    FROM deliveries d
    LEFT JOIN responders r ON r.id = d.responder_id
    JOIN alerts a ON a.id = d.alert_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= :now
    ORDER BY d.next_attempt_at, d.id
    LIMIT 1
    FOR UPDATE OF d SKIP LOCKED
    """
)

_FINISH = text(
    "UPDATE deliveries SET status = :status, last_error = :error, updated_at = :now WHERE id = :id"
)

_CLAIM = text(
    "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, claimed_at = :now, updated_at = :now "
    "WHERE id = :id"
)

# Only the claim that made this attempt may record it. A claim the recovery pass already turned into
# `pending` or `unknown` (this worker was slow, not dead) still records: the provider's answer is
# better than a guess, and recording `sent` stops a needless re-send. Once another attempt has been
# claimed, `attempts` differs and this late result is dropped.
_RECORD = text(
    """
    UPDATE deliveries SET status = :status, provider_sid = coalesce(:sid, provider_sid), last_error = :error,
           next_attempt_at = :next, updated_at = :now
    WHERE id = :id AND attempts = :attempt AND status IN ('sending', 'pending', 'unknown')
    """
)

_RECOVER = text(
    """
    WITH stuck AS (
        SELECT id FROM deliveries
        WHERE status = 'sending' AND claimed_at <= :cutoff
        ORDER BY claimed_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries d
    SET status = CASE WHEN d.attempts < :max THEN 'pending' ELSE 'unknown' END,
        next_attempt_at = :now, updated_at = :now, interrupted_at = coalesce(d.interrupted_at, d.claimed_at),
        last_error = CASE WHEN d.attempts < :max
            THEN 'attempt ' || d.attempts || ' recorded no result within ' || :timeout || ' s (worker or database '
                 'lost mid-send); the provider may have sent it; retrying'
            ELSE 'attempt ' || d.attempts || ' of ' || :max || ' recorded no result within ' || :timeout
                 || ' s; the provider may or may not have sent it; not retried'
        END
    FROM stuck WHERE d.id = stuck.id
    RETURNING d.id, d.status, d.attempts
    """
)

SID_MAX_LEN = 64  # deliveries.provider_sid is varchar(64)


@dataclass(frozen=True)
class SendResult:
    delivery_id: int
    status: str  # sent | pending (retry later) | failed | cancelled | stale (a newer attempt owns it)
    error: str | None = None


@dataclass(frozen=True)
class Claim:
    """A delivery this worker has committed as `sending`; `attempt` is this attempt's number."""

    delivery_id: int
    phone: str
    body: str
    attempt: int
    interrupted_at: datetime | None = None  # an earlier claim of it was never recorded


@dataclass(frozen=True)
class Outcome:
    """What the provider said: a SID, or an error. `found`: the SID of an interrupted earlier send."""

    sid: str | None = None
    error: DeliveryError | None = None
    found: bool = False


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


def claim_next(session: Session, *, max_attempts: int, now: datetime) -> Claim | SendResult | None:
    """Claim the most overdue pending delivery; the caller commits before sending.

    Returns None when nothing is due, a SendResult when the delivery was finished here instead
    (cancelled, or out of attempts), else the Claim to send."""
    row = session.execute(_DUE, {"now": now}).one_or_none()
    if row is None:
        return None
    reason = _cancel_reason(row)
    if reason:
        session.execute(_FINISH, {"id": row.id, "status": "cancelled", "error": reason, "now": now})
        log.info("delivery %s cancelled: %s", row.id, reason)
        return SendResult(row.id, "cancelled", reason)
    if row.attempts >= max_attempts:  # e.g. TOCSIN_SMS_MAX_ATTEMPTS was lowered: never one send too many
        error = f"attempt limit {max_attempts} reached before sending"
        session.execute(_FINISH, {"id": row.id, "status": "failed", "error": error, "now": now})
        log.warning("delivery %s failed: %s", row.id, error)
        return SendResult(row.id, "failed", error)
    session.execute(_CLAIM, {"id": row.id, "now": now})
    return Claim(row.id, row.phone, row.body, row.attempts + 1, row.interrupted_at)


def call_provider(sender: Sender, claim: Claim, *, status_callback: str | None) -> Outcome:
    """Send a claimed delivery; never raises, so every claim gets a result to record.

    After an interrupted attempt, a sender that can look messages up (`find_sent`, Twilio) is asked
    first whether it already has this one; if it cannot answer, the message is sent anyway: a
    possible duplicate beats a possibly missing alert."""
    find_sent = getattr(sender, "find_sent", None)
    if claim.interrupted_at is not None and find_sent is not None:
        try:
            sid = find_sent(claim.phone, claim.body, since=claim.interrupted_at)
        except Exception as exc:
            log.warning("delivery %s: could not ask the provider about the interrupted send (%s); sending",
                        claim.delivery_id, exc)
        else:
            if sid is not None:
                log.warning("delivery %s: the provider has the interrupted send as %s; not sent again",
                            claim.delivery_id, sid)
                return Outcome(sid=sid, found=True)
    try:
        return Outcome(sid=sender.send(claim.phone, claim.body, status_callback=status_callback))
    except DeliveryError as exc:
        return Outcome(error=exc)
    except Exception as exc:  # a sender bug: counted as a retryable attempt, so still bounded
        log.exception("delivery %s: sender raised unexpectedly", claim.delivery_id)
        return Outcome(error=DeliveryError(f"sender error: {exc!r}", retryable=True))


def record_result(session: Session, claim: Claim, outcome: Outcome, *, max_attempts: int,
                  now: datetime) -> SendResult:
    """Record what the provider said about a claim; the caller commits."""
    params = {"id": claim.delivery_id, "attempt": claim.attempt, "next": now, "now": now}
    if outcome.error is not None:
        exc = outcome.error
        give_up = not exc.retryable or claim.attempt >= max_attempts
        status = "failed" if give_up else "pending"
        nxt = now if give_up else now + timedelta(seconds=backoff_s(claim.attempt))
        done = session.execute(_RECORD, {**params, "status": status, "sid": None, "error": str(exc)[:1000],
                                         "next": nxt}).rowcount
        log.warning("delivery %s attempt %d failed (retryable=%s, code=%s)%s", claim.delivery_id, claim.attempt,
                    exc.retryable, exc.code, " - giving up" if give_up else "")
        return _recorded(claim, done, SendResult(claim.delivery_id, status, str(exc)))
    sid = outcome.sid
    note = "an interrupted attempt had sent it (found at the provider); not sent again" if outcome.found else None
    try:
        # A savepoint, so a SID that cannot be stored leaves the transaction usable for the fallback.
        with session.begin_nested():
            done = session.execute(_RECORD, {**params, "status": "sent", "sid": sid, "error": note}).rowcount
    except (IntegrityError, DataError) as exc:
        # The provider accepted the message: record it as sent whatever is wrong with its SID. Status
        # callbacks for it cannot be matched, which is far better than sending it again.
        error = f"sent, but provider SID {str(sid)[:SID_MAX_LEN]!r} could not be stored: {type(exc.orig).__name__}"
        log.error("delivery %s: %s", claim.delivery_id, error)
        done = session.execute(_RECORD, {**params, "status": "sent", "sid": None, "error": error}).rowcount
    return _recorded(claim, done, SendResult(claim.delivery_id, "sent"))


def _recorded(claim: Claim, rows: int, result: SendResult) -> SendResult:
    if rows:
        return result
    log.warning("delivery %s: result of attempt %d (%s) arrived after a newer attempt was claimed; dropped",
                claim.delivery_id, claim.attempt, result.status)
    return SendResult(claim.delivery_id, "stale", result.error)


def recover_stuck(session: Session, *, timeout_s: float, max_attempts: int, now: datetime,
                  limit: int = 500) -> list[SendResult]:
    """Turn claims left `sending` longer than `timeout_s` into a retry, or `unknown` when out of attempts."""
    rows = session.execute(_RECOVER, {"cutoff": now - timedelta(seconds=timeout_s), "now": now,
                                      "max": max_attempts, "timeout": f"{timeout_s:g}", "limit": limit}).all()
    for row in rows:
        log.warning("delivery %s: attempt %d was claimed but never recorded; now %s", row.id, row.attempts,
                    row.status)
    if rows:
        metrics.increment(session, metrics.SMS_CLAIMS_RECOVERED, len(rows))
    return [SendResult(row.id, row.status) for row in rows]


# --- status callbacks ------------------------------------------------------------------------

# Twilio MessageStatus -> our status. Intermediate states all mean "the provider has it".
_TWILIO_STATUS = {
    "accepted": "sent", "scheduled": "sent", "queued": "sent", "sending": "sent", "sent": "sent",
    "delivered": "delivered", "read": "delivered", "undelivered": "undelivered", "failed": "failed",
}
# A late "sent" callback must not undo "delivered": callbacks can arrive out of order. Any callback
# settles `unknown` (the provider evidently had the message) and a claim still `sending`.
_RANK = {"pending": 0, "sending": 0, "unknown": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2,
         "cancelled": 2}


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
