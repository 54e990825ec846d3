"""SMS fan-out planning: outbox event -> routing -> one `deliveries` row per recipient. Services never commit.

Every outbox event is queued for the fan-out by a trigger (migration 0006). Planning an event
re-reads its alert, asks `dispatch.routing.route` who is due at `now` (tier 1 on `opened`,
later tiers on `escalation_tick` events once the rule's `escalate_after` has passed; the kinds are
`alerts.events.EventKind`, and `ROUTABLE_KINDS` those that may page), renders
the SMS once, and inserts the deliveries with ON CONFLICT DO NOTHING on (event_id, responder_id,
channel), so a replayed plan cannot page anyone twice. Sending is `dispatch.deliveries`.

Queue ceiling: Twilio queues up to 4 hours of messages at the account's messages-per-second
(`TOCSIN_SMS_QUEUE_CEILING_S`, default 14,400 s); anything beyond fails at Twilio. The planner
warns and counts `fanout_queue_ceiling_warnings` when the pending backlog would take longer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from accounts import agencies
from alerts.events import EventKind
from dispatch import metrics, queries
from dispatch.messages import gsm7_length, render_sms
from dispatch.routing import Coverage, WeeklySchedule, route

log = logging.getLogger(__name__)

# Events that can page someone; acknowledged/resolved only inform the control room (MQTT). docs/sms.md lists
# these (tests/unit/test_event_kinds.py).
ROUTABLE_KINDS: frozenset[EventKind] = frozenset({
    EventKind.OPENED, EventKind.UPDATED, EventKind.REPEATED, EventKind.ESCALATION_TICK,
})
DEFAULT_WINDOW_S = 600
TWILIO_QUEUE_CEILING_S = 4 * 3600
CHANNEL = "sms"


@dataclass(frozen=True)
class FanoutConfig:
    public_base_url: str
    mps: float = 1.0  # the Twilio account's messages per second
    queue_ceiling_s: float = TWILIO_QUEUE_CEILING_S

    def __post_init__(self) -> None:
        if self.mps <= 0:
            raise ValueError(f"mps {self.mps} must be positive")
        if self.queue_ceiling_s <= 0:
            raise ValueError(f"queue_ceiling_s {self.queue_ceiling_s} must be positive")


def segments(body: str) -> int:
    """GSM-7 segments an SMS body takes (160 septets in one, 153 each when concatenated)."""
    n = gsm7_length(body)
    return 1 if n <= 160 else math.ceil(n / 153)


def queue_drain_s(*, messages: int, segments_each: int, mps: float) -> float:
    """Seconds Twilio needs to drain `messages` of `segments_each` segments at `mps`. Pure."""
    return messages * segments_each / mps


@dataclass(frozen=True)
class Planned:
    outbox_id: int
    alert_id: int | None
    recipients: int
    ceiling_warning: bool = False


@lru_cache(maxsize=1024)
def _schedule(spec: str, timezone: str) -> WeeklySchedule:
    return WeeklySchedule.parse(spec, timezone=timezone)


@dataclass(frozen=True)
class Prefetched:
    """What planning reads, loaded for a whole batch of alerts at once (`prefetch`).

    `alerts`: alert rows by id (an id missing here is an alert that does not exist);
    `zone_coverage` / `layer_coverage`: coverage rows by zone id, and layer-wide rows (no zone) by
    layer; `notified`: the responders each alert has already been messaged by; `grants`: what each agency a
    responder belongs to covers, by agency id.
    """

    alerts: dict[int, Any] = field(default_factory=dict)
    zone_coverage: dict[int, list[Any]] = field(default_factory=dict)
    layer_coverage: dict[str, list[Any]] = field(default_factory=dict)
    notified: dict[int, set[Any]] = field(default_factory=dict)
    grants: dict[int, agencies.Grant] = field(default_factory=dict)

    def coverage_rows(self, *, zone_id: int, layer: str) -> list[Any]:
        """The rows of `c.zone_id = :zone_id OR (c.zone_id IS NULL AND c.layer = :layer)`."""
        return self.zone_coverage.get(zone_id, []) + self.layer_coverage.get(layer, [])

    def agencies_allow(self, row: Any, alert: Any) -> bool:
        """A responder in no agency is paged as their coverage says; one in agencies only for an alert one of
        them covers."""
        zones = ((alert.layer, alert.code),)
        return not row.agency_ids or any(
            a in self.grants and self.grants[a].covers(alert.category, zones) for a in row.agency_ids)


def prefetch(session: Session, alert_ids: Sequence[int]) -> Prefetched:
    """Load the alerts, their coverage and who was already notified: at most three statements (four when a
    covering responder belongs to an agency).

    A read that cannot find anything is skipped: no coverage read when no alert is unresolved,
    no "already notified" read when no alert has a coverage row (routing would choose nobody).
    """
    ids = list(dict.fromkeys(alert_ids))
    if not ids:
        return Prefetched()
    alerts = {a.id: a for a in session.execute(queries.ALERTS, {"ids": ids}).all()}
    live = [a for a in alerts.values() if a.state != "resolved"]
    if not live:
        return Prefetched(alerts)
    zone_coverage: dict[int, list[Any]] = {}
    layer_coverage: dict[str, list[Any]] = {}
    for r in session.execute(queries.COVERAGE, {"zone_ids": sorted({a.zone_id for a in live}),
                                                 "layers": sorted({a.layer for a in live})}).all():
        if r.zone_id is not None:
            zone_coverage.setdefault(r.zone_id, []).append(r)
        else:
            layer_coverage.setdefault(r.layer, []).append(r)
    agency_ids = {a for rows in (*zone_coverage.values(), *layer_coverage.values()) for r in rows
                  for a in r.agency_ids}
    grants = agencies.grants_by_id(session, agency_ids) if agency_ids else {}
    data = Prefetched(alerts, zone_coverage, layer_coverage, grants=grants)
    covered = [a.id for a in live if data.coverage_rows(zone_id=a.zone_id, layer=a.layer)]
    if covered:
        for alert_id, responder_id in session.execute(queries.NOTIFIED, {"ids": covered}).all():
            data.notified.setdefault(alert_id, set()).add(responder_id)
    return data


def _coverage(rows: Sequence[Any]) -> list[Coverage]:
    return [
        Coverage(
            responder_id=r.id, phone=r.phone, tier=r.tier, opted_out=r.opted_out,
            zone_ids=frozenset({r.zone_id}) if r.zone_id is not None else None, layers=frozenset({r.layer}),
            on_call=_schedule(r.on_call, r.timezone) if r.on_call else None,
        )
        for r in rows
    ]


def _tiers(coverage: Sequence[Coverage], chosen: Sequence[Any]) -> dict[Any, int]:
    tiers: dict[Any, int] = {}
    for c in coverage:
        if c.responder_id in chosen:
            tiers[c.responder_id] = min(c.tier, tiers.get(c.responder_id, c.tier))
    return tiers


@dataclass(frozen=True)
class _Decision:
    """Who one event pages, decided without touching the database."""

    alert: Any
    chosen: list[Any]
    tiers: dict[Any, int]
    body: str


def _decide(*, alert_id: int | None, kind: str, rules: Callable[[], Sequence[Any]], config: FanoutConfig,
            now: datetime, data: Prefetched) -> _Decision | None:
    """Route one event from prefetched data; None when nobody is to be paged. Runs no statement."""
    if kind not in ROUTABLE_KINDS or alert_id is None:
        return None
    alert = data.alerts.get(alert_id)
    if alert is None or alert.state == "resolved":
        return None
    rule = next((r for r in rules() if r.name == alert.rule), None)
    escalate_after_s = getattr(rule, "escalate_after_s", None)
    window_s = getattr(rule, "window_s", None) or DEFAULT_WINDOW_S
    coverage = _coverage([r for r in data.coverage_rows(zone_id=alert.zone_id, layer=alert.layer)
                          if data.agencies_allow(r, alert)])
    chosen = route(zone_id=alert.zone_id, layer=alert.layer, opened_at=alert.opened_at,
                   acknowledged=alert.state != "open", escalate_after_s=escalate_after_s,
                   coverage=coverage, already_notified=data.notified.get(alert_id, set()), now=now,
                   escalations=alert.escalation_ticks)
    if not chosen:
        return None
    body = render_sms(severity=alert.severity, category=alert.category, zone_name=alert.zone_name,
                      zone_code=alert.code, evidence_count=alert.evidence_count, window_s=window_s,
                      ack_code=alert.ack_code, link=f"{config.public_base_url.rstrip('/')}/a/{alert_id}")
    return _Decision(alert, chosen, _tiers(coverage, chosen), body)


def _write(session: Session, decision: _Decision, *, outbox_id: int, event_id: Any, kind: str,
           config: FanoutConfig, now: datetime) -> Planned:
    """Insert a decision's deliveries and check the queue ceiling."""
    alert_id, chosen, body = decision.alert.id, decision.chosen, decision.body
    session.execute(queries.INSERT_DELIVERIES, [
        {"event_id": event_id, "alert_id": alert_id, "responder_id": rid, "channel": CHANNEL,
         "tier": decision.tiers[rid], "body": body, "now": now}
        for rid in chosen
    ])
    backlog = session.execute(queries.PENDING).scalar_one()
    drain_s = queue_drain_s(messages=backlog, segments_each=segments(body), mps=config.mps)
    warn = drain_s > config.queue_ceiling_s
    if warn:
        metrics.increment(session, metrics.QUEUE_CEILING_WARNINGS)
        log.warning(
            "SMS backlog of %d messages x %d segment(s) at %.2f msg/s needs %.0fs, beyond Twilio's queue "
            "ceiling of %.0fs (alert %s): raise the account's MPS or expect failures",
            backlog, segments(body), config.mps, drain_s, config.queue_ceiling_s, alert_id,
        )
    log.info("alert %s event %s (%s): %d SMS planned", alert_id, outbox_id, kind, len(chosen))
    return Planned(outbox_id, alert_id, len(chosen), warn)


def plan_event(session: Session, *, outbox_id: int, event_id: Any, alert_id: int | None, kind: str,
               rules: Callable[[], Sequence[Any]], config: FanoutConfig, now: datetime,
               prefetched: Prefetched | None = None) -> Planned:
    """Create the deliveries one outbox event calls for (possibly none).

    `prefetched` is data from `prefetch` covering this alert (as `plan_batch` passes); without it
    the alert, its coverage and who was already notified are read here. Prefetched data must have
    been read after any earlier plan of the same alert, or its "already notified" is stale.
    """
    if kind not in ROUTABLE_KINDS or alert_id is None:
        return Planned(outbox_id, alert_id, 0)
    data = prefetched if prefetched is not None else prefetch(session, [alert_id])
    decision = _decide(alert_id=alert_id, kind=kind, rules=rules, config=config, now=now, data=data)
    if decision is None:
        return Planned(outbox_id, alert_id, 0)
    return _write(session, decision, outbox_id=outbox_id, event_id=event_id, kind=kind, config=config, now=now)


def plan_batch(session: Session, *, rules: Callable[[], Sequence[Any]], config: FanoutConfig, now: datetime,
               limit: int = 500) -> list[Planned]:
    """Plan up to `limit` queued events; several dispatchers can run this at once (SKIP LOCKED).

    Routing depends on the alert and `now`, not on which of its events arrived, so a burst of
    events for one alert is planned once (on its latest event) rather than once per event.

    Set-based: the claim, one read each of the alerts, their coverage and who was already
    notified (`prefetch`), and the queue delete, whatever the batch size. Only an event that pages
    someone costs statements of its own, in a savepoint so that one unplannable event does not
    block the rest; an event that pages nobody costs none.
    """
    rows = session.execute(queries.CLAIM, {"limit": limit}).all()
    latest = {r.alert_id: r for r in rows if r.kind in ROUTABLE_KINDS and r.alert_id is not None}
    data = prefetch(session, list(latest))
    planned = []
    for row in latest.values():
        try:
            decision = _decide(alert_id=row.alert_id, kind=row.kind, rules=rules, config=config, now=now, data=data)
            if decision is None:
                planned.append(Planned(row.outbox_id, row.alert_id, 0))
                continue
            with session.begin_nested():
                planned.append(_write(session, decision, outbox_id=row.outbox_id, event_id=row.event_id,
                                      kind=row.kind, config=config, now=now))
        except Exception:
            # One unplannable event must not block every later page; it is counted and logged loudly.
            log.exception("could not plan SMS for outbox event %s (alert %s); skipped", row.outbox_id, row.alert_id)
            metrics.increment(session, metrics.FANOUT_ERRORS)
    if rows:
        session.execute(queries.DEQUEUE, {"ids": [r.outbox_id for r in rows]})
    done = {p.outbox_id for p in planned}
    return planned + [Planned(r.outbox_id, r.alert_id, 0) for r in rows if r.outbox_id not in done]
