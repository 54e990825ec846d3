"""Observe signals, open and update alerts, acknowledge and resolve them.

Every change that notifies writes its outbox event and notification-log row in the caller's
transaction; services never commit.
"""

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from alerts import observe_sql, outbox
from alerts.errors import InvalidTransition, UnknownAlert
from alerts.events import ESCALATION_REASON, EventKind, Tick
from alerts.evaluate import WindowStats, escalation_ticks_due
from alerts.lifecycle import AlertState, check_transition
from alerts.models import Alert, AlertHistory, AlertNotification
from alerts.notify import Decision, Sent, SilenceView, decide
from alerts.incidents import AlertChange  # noqa: F401  (the service's interface)
from alerts.observe import evaluate, observe_many  # noqa: F401  (the service's interface)
from alerts.rules import Rule
from alerts.signals import SignalIn  # noqa: F401  (the service's interface)
from alerts.silences import active_silences, create_silence, expire_silence, list_silences  # noqa: F401
from alerts.queries import AlertDetail, alert_view, get_alert, list_alerts, zone_ref  # noqa: F401
from db import raw

log = logging.getLogger(__name__)


def observe(session: Session, *, signal: SignalIn, rules: Sequence[Rule], now: datetime) -> list[AlertChange]:
    """Record a signal in every zone it matched, evaluate the rules it can feed, and open or update alerts."""
    return observe_many(session, signals=[signal], rules=rules, now=now)


def window_stats_many(session: Session, items: Sequence[tuple[Rule, int, float]],
                      now: datetime) -> list[WindowStats]:
    """What each rule counts in its zone over (now - window_s, now], for many (rule, zone_id, window_s) at
    once, in one statement, in order (the sweeper's windows)."""
    if not items:
        return []
    rows = raw.execute(session, observe_sql.WINDOWS, {"now": now, "items": json.dumps([
        {"i": i, "zone_id": zone_id, "categories": list(rule.categories), "sources": list(rule.sources),
         "min_confidence": rule.min_confidence, "min_weight": rule.min_zone_weight,
         "since": (now - timedelta(seconds=window_s)).isoformat()}
        for i, (rule, zone_id, window_s) in enumerate(items)])}).fetchall()
    out = [WindowStats(0.0, 0, 0)] * len(items)
    for r in rows:
        out[r.i] = WindowStats(weighted_count=float(r.w), distinct_authors=int(r.authors), count=int(r.n),
                               oldest=r.oldest)
    return out


def record_change(session: Session, *, alert: Alert, from_state: str | None, actor: str, reason: str,
                  now: datetime, agency: str | None = None) -> AlertHistory:
    """An audit row for a state or severity change: who (and for an operator, their agencies) and why."""
    row = AlertHistory(alert_id=alert.id, at=now, from_state=from_state, to_state=alert.state,
                       severity=alert.severity, actor=actor, reason=reason, agency=agency)
    session.add(row)
    return row


def notification_log(session: Session, alert_id: int) -> list[Sent]:
    return notification_logs(session, [alert_id]).get(alert_id, [])


def notification_logs(session: Session, alert_ids: Sequence[int]) -> dict[int, list[Sent]]:
    """Each alert's notification log, oldest first, in one query."""
    rows = session.execute(
        select(AlertNotification.alert_id, AlertNotification.at, AlertNotification.reason, AlertNotification.state,
               AlertNotification.severity)
        .where(AlertNotification.alert_id.in_(list(alert_ids)))
        .order_by(AlertNotification.alert_id, AlertNotification.at, AlertNotification.id)
    ).all()
    out: dict[int, list[Sent]] = {}
    for alert_id, *rest in rows:
        out.setdefault(alert_id, []).append(Sent(*rest))
    return out


def evidence_by_source(session: Session, alert_id: int) -> dict[str, int]:
    rows = session.execute(
        text("SELECT o.source, count(*) FROM alert_evidence e JOIN observations o ON o.id = e.observation_id "
             "WHERE e.alert_id = :id GROUP BY o.source ORDER BY o.source"),
        {"id": alert_id},
    ).all()
    return {source: int(n) for source, n in rows}


def rules_fired(session: Session, alert_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """Every rule that fired for each alert, in the order they did (rule -> severity), in one query."""
    rows = session.execute(
        text("SELECT alert_id, rule, severity FROM alert_rules WHERE alert_id = ANY(:ids) "
             "ORDER BY alert_id, first_fired_at, rule"), {"ids": list(alert_ids)}).all()
    out: dict[int, dict[str, str]] = {}
    for alert_id, rule, severity in rows:
        out.setdefault(alert_id, {})[rule] = severity
    return out


def notify(session: Session, *, alert: Alert, rule: Rule | None, zone: Mapping[str, str], now: datetime,
           silences: Sequence[SilenceView] | None = None, log_rows: Sequence[Sent] | None = None) -> Decision:
    """Decide (notify.decide) and, when it says so, write one outbox event and one notification-log row.

    Callers that already hold the active silences or the alert's notification log may pass them in. No
    flush of its own: the sweeper calls this for hundreds of alerts in one session, and a flush walks all of
    them each time; the queries below autoflush when they run."""
    if silences is None:
        silences = active_silences(session, now=now)
    if log_rows is None:
        log_rows = notification_log(session, alert.id)
    decision = decide(alert_view(alert, zone), log_rows, silences, rule, now)
    if not decision.notify:
        return decision
    kind = decision.kind
    assert kind is not None
    event = outbox.emit(session, alert=alert, kind=kind, reason=decision.reason, zone=zone, now=now,
                        evidence_by_source=evidence_by_source(session, alert.id),
                        rules=rules_fired(session, [alert.id]).get(alert.id, {}), silenced=decision.silenced)
    session.add(AlertNotification(alert_id=alert.id, at=now, reason=decision.reason, kind=event.kind,
                                  state=alert.state, severity=alert.severity, event_id=event.event_id))
    alert.last_notified_at = now
    log.info("alert %s notify %s", alert.id, decision.reason)
    return decision


def _rule_named(rules: Sequence[Rule] | None, name: str) -> Rule | None:
    return next((r for r in rules or () if r.name == name), None)


def _locked(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id, with_for_update=True, populate_existing=True)
    if alert is None:
        raise UnknownAlert(f"no alert with id {alert_id}", alert_id=alert_id)
    return alert


def acknowledge(session: Session, *, alert_id: int, actor: str, note: str | None, now: datetime,
                rules: Sequence[Rule] | None = None, agency: str | None = None) -> Alert:
    """An operator or responder takes the alert: repeats and escalation stop. Pass `rules` for per-rule settings."""
    alert = _locked(session, alert_id)
    previous = alert.state
    alert.state = check_transition(alert.id, previous, AlertState.ACKNOWLEDGED).value
    alert.acknowledged_at = alert.updated_at = now
    alert.acknowledged_by = actor
    record_change(session, alert=alert, from_state=previous, actor=actor, reason=note or "acknowledged", now=now,
                  agency=agency)
    notify(session, alert=alert, rule=_rule_named(rules, alert.rule), zone=zone_ref(session, alert.zone_id), now=now)
    return alert


def escalate(session: Session, *, alert_id: int, actor: str, note: str | None, now: datetime,
             rules: Sequence[Rule] | None = None, agency: str | None = None) -> Alert:
    """Page the next responder tier now (an operator's call, ahead of `escalate_after`): one escalation_tick
    event, and a history row naming the operator. Only an open alert escalates (acknowledged stops it)."""
    alert = _locked(session, alert_id)
    if alert.state != AlertState.OPEN:
        raise InvalidTransition(alert.id, alert.state, "escalated")
    rule = _rule_named(rules, alert.rule)
    by_time = escalation_ticks_due(rule, opened_at=alert.opened_at, now=now) if rule else 0
    alert.escalation_ticks = max(alert.escalation_ticks or 0, by_time) + 1
    alert.updated_at = now
    tick = Tick(tick=alert.escalation_ticks, escalate_after_s=(rule.escalate_after_s if rule else None) or 0.0,
                minutes_since_open=(now - alert.opened_at).total_seconds() / 60)
    zone = zone_ref(session, alert.zone_id)
    outbox.emit(session, alert=alert, kind=EventKind.ESCALATION_TICK, reason=ESCALATION_REASON, zone=zone,
                now=now, evidence_by_source=evidence_by_source(session, alert.id),
                rules=rules_fired(session, [alert.id]).get(alert.id, {}), silenced=False, tick=tick)
    record_change(session, alert=alert, from_state=alert.state, actor=actor,
                  reason=f"escalated to tier {tick.tier_due}" + (f": {note}" if note else ""), now=now, agency=agency)
    log.info("alert %s escalated by hand to tier %s", alert.id, tick.tier_due)
    return alert


def resolve(session: Session, *, alert_id: int, actor: str, note: str | None, now: datetime,
            rules: Sequence[Rule] | None = None, agency: str | None = None) -> Alert:
    """Resolve by hand; the rule's cooldown starts now. Pass `rules` for per-rule settings."""
    alert = _locked(session, alert_id)
    close(session, alert=alert, rule=_rule_named(rules, alert.rule), actor=actor, reason=note or "resolved", now=now,
          agency=agency)
    return alert


def close(session: Session, *, alert: Alert, rule: Rule | None, actor: str, reason: str, now: datetime,
          agency: str | None = None) -> Decision:
    """Resolve a locked alert: state, cooldown, audit row and the "resolved" notification."""
    previous = alert.state
    alert.state = check_transition(alert.id, previous, AlertState.RESOLVED).value
    alert.resolved_at = alert.updated_at = now
    alert.resolved_by = actor
    alert.quiet_since = None
    alert.cooldown_until = now + timedelta(seconds=rule.cooldown_s if rule else 0)
    # Each rule on the alert starts its own cooldown in the zone (the leading rule's as configured now).
    session.execute(text(
        "UPDATE alert_rules SET cooldown_until = CAST(:now AS timestamptz) + make_interval(secs => CASE "
        "WHEN NOT :known THEN 0 WHEN rule = :lead THEN :lead_s ELSE cooldown_s END) WHERE alert_id = :id"),
        {"now": now, "known": rule is not None, "lead": alert.rule, "lead_s": rule.cooldown_s if rule else 0.0,
         "id": alert.id})
    record_change(session, alert=alert, from_state=previous, actor=actor, reason=reason, now=now, agency=agency)
    log.info("alert %s resolved by %s", alert.id, actor.split(":")[0])
    return notify(session, alert=alert, rule=rule, zone=zone_ref(session, alert.zone_id), now=now)


def retire_evidence(session: Session, *, observation_ids: Sequence[int], now: datetime) -> int:
    """Stop counting these observations in rule windows (a superseded or closed report); returns signals retired.

    Their zones are left a hint for the sweeper (`alert_sweep_hints`): the counts there fell without any
    alert's row changing, and the sweeper sweeps an alert only when it is due or its row changed. A hint
    rather than touching the alerts: their row locks would be taken before the zone locks the caller's
    evaluation takes next, the other way round from every writer's order."""
    if not observation_ids:
        return 0
    return session.execute(text(
        "WITH retired AS (UPDATE signals SET retired_at = :now WHERE observation_id = ANY(:ids) "
        "AND retired_at IS NULL RETURNING zone_id), "
        "hint AS (INSERT INTO alert_sweep_hints (zone_id) SELECT DISTINCT zone_id FROM retired) "
        "SELECT count(*) FROM retired"),
        {"now": now, "ids": list(observation_ids)},
    ).scalar_one()
