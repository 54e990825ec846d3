"""Alert events: their kinds and the one builder of their payload (docs/mqtt.md). Pure.

Every producer builds its payload here: rule evaluation (`alerts.observe`, which writes its rows in one
set-based statement), notifications (`alerts.service.notify`) and the sweeper's escalation ticks, so
every kind carries the same fields. `alerts.outbox` writes a single event's row.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from alerts.models import Alert

SCHEMA = "tocsin.alert_event/1"


class EventKind(StrEnum):
    """What an event reports; docs/mqtt.md's table of kinds lists exactly these (tests/unit/test_event_kinds.py)."""

    OPENED = "opened"
    UPDATED = "updated"
    REPEATED = "repeated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ESCALATION_TICK = "escalation_tick"


# The reasons `alerts.notify.decide` notifies for, and the kind each one writes.
KIND_FOR_REASON: Mapping[str, EventKind] = {
    "first_notification": EventKind.OPENED,
    "severity_raised": EventKind.UPDATED,
    "severity_lowered": EventKind.UPDATED,
    "repeat_interval_elapsed": EventKind.REPEATED,
    "acknowledged": EventKind.ACKNOWLEDGED,
    "resolved": EventKind.RESOLVED,
}
# The sweeper's reason for an escalation tick (not a notify decision: a tick writes no notification-log row).
ESCALATION_REASON = "unacknowledged"


def reasons_for(kind: EventKind) -> list[str]:
    """The reasons an event of this kind is sent for."""
    if kind is EventKind.ESCALATION_TICK:
        return [ESCALATION_REASON]
    return [reason for reason, k in KIND_FOR_REASON.items() if k is kind]


@dataclass
class AlertRow:
    """The columns of an alert that evaluation reads and an event shows: what alerts.observe loads on its fast
    path (an `alerts.models.Alert` has them all too, and the other writers pass one)."""

    id: int
    rule: str  # the rule leading it: the most severe that fired (its settings govern repeats and escalation)
    category: str
    severity: str
    state: str
    ack_code: str
    evidence_count: int
    distinct_authors: int
    opened_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    quiet_since: datetime | None
    # Every rule that fired for it, in the order they did: name -> the severity it last raised.
    rules: dict[str, str] = field(default_factory=dict)


# What an event is built from: the ORM alert (service, sweeper), or the fast path's row (alerts.observe).
EventAlert = Alert | AlertRow


@dataclass(frozen=True)
class Tick:
    """What an escalation tick adds: the `escalate_after` periods elapsed since the alert opened (`tick`),
    the responder tier now due, and the minutes since opening."""

    tick: int
    escalate_after_s: float
    minutes_since_open: float

    @property
    def tier_due(self) -> int:
        return self.tick + 1


def rules_payload(rules: Mapping[str, str]) -> list[dict[str, str]]:
    """The `rules` field of events and the API: every rule that fired for the alert, in the order they did."""
    return [{"rule": name, "severity": severity} for name, severity in rules.items()]


def payload(*, event_id: uuid.UUID, kind: EventKind, reason: str, alert: EventAlert, zone: Mapping[str, str],
            evidence_by_source: Mapping[str, int], rules: Mapping[str, str], silenced: bool,
            tick: Tick | None = None) -> dict[str, Any]:
    """The versioned JSON body consumers receive (docs/mqtt.md), the same fields for every kind.

    `rules`: every rule that fired for the alert, in the order they did (rule -> severity); empty means the
    leading rule alone (alerts written before migration 0017). `tick` is an escalation tick's, and only its."""
    if not isinstance(kind, EventKind):
        kind = EventKind(kind)  # a kind outside the enum (and so outside docs/mqtt.md) is never written
    if (kind is EventKind.ESCALATION_TICK) != (tick is not None):
        raise ValueError(f"an event of kind {kind!r} got tick {tick!r}: escalation_tick events, and only they, "
                         "carry one")
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "event_id": str(event_id),
        "kind": kind.value,
        "reason": reason,
        "alert_id": alert.id,
        "rule": alert.rule,
        "state": alert.state,
        "severity": alert.severity,
        "category": alert.category,
        "zone": dict(zone),
        "evidence_count": alert.evidence_count,
        "distinct_authors": alert.distinct_authors,
        "opened_at": alert.opened_at.isoformat(),
        "updated_at": alert.updated_at.isoformat(),
        "expires_at": alert.expires_at.isoformat() if alert.expires_at else None,
        "ack_code": alert.ack_code,
        "evidence_by_source": dict(sorted(evidence_by_source.items())),
        "silenced": silenced,
        "rules": rules_payload(rules or {alert.rule: alert.severity}),
    }
    if tick is not None:
        body.update(minutes_since_open=round(tick.minutes_since_open, 2), tick=tick.tick, tier_due=tick.tier_due,
                    escalate_after_s=tick.escalate_after_s)
    return body
