"""Inbound SMS from responders: ACK <code>, STOP/START, HELP. Returns the reply text. Services never commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import service as alert_service
from alerts.errors import InvalidTransition
from alerts.models import Alert
from dispatch import responders as responder_service
from dispatch.messages import ReplyKind, category_words, parse_reply, to_gsm7
from dispatch.models import Responder

log = logging.getLogger(__name__)

HELP_TEXT = "Tocsin: reply ACK and the code from your alert (e.g. ACK K7Q) to acknowledge it. STOP to opt out, START to opt in."


@dataclass(frozen=True)
class InboundResult:
    reply: str
    kind: ReplyKind
    alert_id: int | None = None
    acknowledged: bool = False


def _already(alert: Alert) -> InboundResult:
    if alert.state == "resolved":
        return InboundResult(f"Alert {alert.ack_code} is already resolved. No action needed.", ReplyKind.ACK, alert.id)
    who = (alert.acknowledged_by or "someone").removeprefix("responder:").removeprefix("operator:")
    return InboundResult(f"Alert {alert.ack_code} was already acknowledged by {who}.", ReplyKind.ACK, alert.id)


def _ack(session: Session, *, responder: Responder, code: str, rules: Sequence[Any] | None,
         now: datetime) -> InboundResult:
    alert = session.scalar(select(Alert).where(Alert.ack_code == code.upper()))
    if alert is None:
        return InboundResult(f"Unknown code {code}. Reply ACK and the code from your alert SMS, e.g. ACK K7Q.",
                             ReplyKind.ACK)
    if alert.state != "open":
        return _already(alert)
    try:
        # The alert service locks the row, records history and writes the `acknowledged` outbox event.
        alert = alert_service.acknowledge(session, alert_id=alert.id, actor=f"responder:{responder.name}",
                                          note="acknowledged by SMS", now=now, rules=rules)
    except InvalidTransition:  # someone else got there between our read and the lock
        session.refresh(alert)
        return _already(alert)
    log.info("alert %s acknowledged by SMS from responder %s", alert.id, responder.id)
    return InboundResult(f"Acknowledged {category_words(alert.category).lower()} alert {alert.ack_code}. "
                         f"Thank you, {responder.name}.",
                         ReplyKind.ACK, alert.id, acknowledged=True)


def handle_inbound(session: Session, *, from_phone: str, body: str, now: datetime,
                   rules: Sequence[Any] | None = None) -> InboundResult:
    """Act on one inbound SMS from `from_phone` (E.164) and say what to answer."""
    reply = parse_reply(body)
    if reply.kind in (ReplyKind.OPT_OUT, ReplyKind.OPT_IN):
        opted_out = reply.kind is ReplyKind.OPT_OUT
        responder_service.set_opt_out(session, phone=from_phone, opted_out=opted_out, now=now)
        text_ = ("You will get no more Tocsin alerts. Reply START to opt back in." if opted_out
                 else "You will get Tocsin alerts again. Reply STOP to opt out.")
        return InboundResult(text_, reply.kind)
    if reply.kind is not ReplyKind.ACK or reply.code is None:
        return InboundResult(HELP_TEXT, reply.kind)
    responder = session.scalar(select(Responder).where(Responder.phone == from_phone))
    if responder is None:
        log.info("ACK from a number that is not a responder; refused")
        return InboundResult("This number is not on the Tocsin responder roster, so it cannot acknowledge alerts.",
                             ReplyKind.ACK)
    result = _ack(session, responder=responder, code=reply.code, rules=rules, now=now)
    return InboundResult(to_gsm7(result.reply), result.kind, result.alert_id, result.acknowledged)
