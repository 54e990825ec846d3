"""Observe signals, open and update alerts, acknowledge and resolve them.

Every change that notifies writes its outbox event and notification-log row in the caller's
transaction; services never commit.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from alerts import ackcodes, outbox
from alerts.baselines import window_baseline
from alerts.errors import UnknownAlert
from alerts.evaluate import WindowStats, conditions_hold, evaluate, in_cooldown, severity_rank
from alerts.lifecycle import AlertState, check_transition
from alerts.models import Alert, AlertHistory, AlertNotification
from alerts.notify import Decision, Sent, SilenceView, decide
from alerts.rules import Rule
from alerts.silences import active_silences, create_silence, expire_silence, list_silences  # noqa: F401
from alerts.views import AlertDetail, alert_view, get_alert, list_alerts, zone_ref  # noqa: F401
from geo.matching import ZoneMatch

log = logging.getLogger(__name__)

_ZONE_LOCK = 7_100_5  # advisory lock class: rule evaluation in one zone


@dataclass(frozen=True)
class SignalIn:
    """An observation as evidence: what, how sure, who, when, where (zones with weights), and attributes."""

    observation_id: int
    source: str
    category: str
    confidence: float
    author_key: str | None
    observed_at: datetime
    zones: Sequence[ZoneMatch]
    # Facts immediate rules can test, e.g. {"customers_affected": 1200} for a utility report.
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertChange:
    alert_id: int
    kind: str  # opened | updated
    rule: str
    zone_code: str
    severity: str


_WINDOW_FILTER = """
    zone_id = :zone_id AND category = ANY(:categories) AND source = ANY(:sources)
    AND confidence >= :min_confidence AND weight >= :min_weight
    AND observed_at > :since AND observed_at <= :now AND retired_at IS NULL
"""
_WINDOW_SQL = text(
    "SELECT count(*), coalesce(sum(weight), 0), count(DISTINCT coalesce(author_key, observation_id::text)) "
    f"FROM signals WHERE {_WINDOW_FILTER}"
)
_ATTACH_WINDOW = text(
    "INSERT INTO alert_evidence (alert_id, observation_id, added_at) "
    f"SELECT DISTINCT CAST(:alert_id AS bigint), observation_id, CAST(:now AS timestamptz) FROM signals "
    f"WHERE {_WINDOW_FILTER} ON CONFLICT DO NOTHING"
)
_ATTACH = text(
    "INSERT INTO alert_evidence (alert_id, observation_id, added_at) "
    "SELECT :alert_id, unnest(CAST(:ids AS bigint[])), :now ON CONFLICT DO NOTHING"
)
_INSERT_ALERT = text(
    """
    INSERT INTO alerts (rule, zone_id, category, severity, state, ack_code, evidence_count, distinct_authors,
                        opened_at, updated_at, last_evidence_at, expires_at)
    VALUES (:rule, :zone_id, :category, :severity, 'open', :ack_code, 0, :authors,
            :now, :now, :now, :expires_at)
    ON CONFLICT (rule, zone_id) WHERE state <> 'resolved' DO NOTHING
    RETURNING id
    """
)


def _window_params(rule: Rule, zone_id: int, now: datetime, window_s: float) -> dict[str, Any]:
    return {
        "zone_id": zone_id, "categories": list(rule.categories), "sources": list(rule.sources),
        "min_confidence": rule.min_confidence, "min_weight": rule.min_zone_weight,
        "since": now - timedelta(seconds=window_s), "now": now,
    }


def window_stats(session: Session, rule: Rule, zone_id: int, now: datetime, *,
                 window_s: float | None = None) -> WindowStats:
    """What the rule counts in the zone over (now - window, now]."""
    count, weighted, authors = session.execute(
        _WINDOW_SQL, _window_params(rule, zone_id, now, window_s or rule.window_s)
    ).one()
    return WindowStats(weighted_count=float(weighted), distinct_authors=int(authors), count=int(count))


def _unresolved(session: Session, *, rule: str, zone_id: int) -> Alert | None:
    return session.scalar(
        select(Alert).where(Alert.rule == rule, Alert.zone_id == zone_id, Alert.state != AlertState.RESOLVED)
        .with_for_update()
    )


def _cooldown_until(session: Session, *, rule: str, zone_id: int) -> datetime | None:
    return session.execute(
        text("SELECT max(cooldown_until) FROM alerts WHERE rule = :rule AND zone_id = :zone_id AND state = 'resolved'"),
        {"rule": rule, "zone_id": zone_id},
    ).scalar()


def _feeds(rule: Rule, signal: SignalIn, match: ZoneMatch) -> bool:
    return (rule.matches(category=signal.category, source=signal.source, confidence=signal.confidence)
            and match.layer == rule.layer and match.weight >= rule.min_zone_weight
            and (not rule.immediate or conditions_hold(rule, signal.attributes)))


def observe(session: Session, *, signal: SignalIn, rules: Sequence[Rule], now: datetime,
            recorded: bool = False) -> list[AlertChange]:
    """Record a signal in every zone it matched, evaluate the rules it can feed, and open or update alerts."""
    return observe_many(session, signals=[signal], rules=rules, now=now, recorded=recorded)


def observe_many(session: Session, *, signals: Sequence[SignalIn], rules: Sequence[Rule], now: datetime,
                 recorded: bool = False) -> list[AlertChange]:
    """Record signals (unless `recorded`: the caller wrote the signals rows) and evaluate each (rule, zone) once.

    Evaluation in a zone holds an advisory lock on it until commit, so two workers never both count
    without seeing each other's evidence: the second waits and then counts the first one's signals too.
    """
    if not recorded:
        _insert_signals(session, signals)
    # (rule, zone) -> the zone match and the signals that feed it, in arrival order.
    pairs: dict[tuple[str, int], tuple[Rule, ZoneMatch, list[SignalIn]]] = {}
    for s in signals:
        for rule in rules:
            for m in s.zones:
                if _feeds(rule, s, m):
                    pairs.setdefault((rule.name, m.zone_id), (rule, m, []))[2].append(s)
    for zone_id in sorted({zone_id for _, zone_id in pairs}):
        session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _ZONE_LOCK, "b": zone_id})
    changes: list[AlertChange] = []
    for rule, match, feeding in pairs.values():
        change = _evaluate_pair(session, rule=rule, match=match, feeding=feeding, now=now)
        if change is not None:
            changes.append(change)
    return changes


def _evaluate_pair(session: Session, *, rule: Rule, match: ZoneMatch, feeding: list[SignalIn],
                   now: datetime) -> AlertChange | None:
    observation_ids = sorted({s.observation_id for s in feeding})
    live = window_stats(session, rule, match.zone_id, now, window_s=rule.hysteresis_window_s)
    stats = WindowStats(match.weight * len(observation_ids), 1, len(observation_ids)) if rule.immediate else live
    alert = _unresolved(session, rule=rule.name, zone_id=match.zone_id)
    zone = zone_ref(session, match.zone_id, match=match)
    if alert is None:
        baseline = (window_baseline(session, zone_id=match.zone_id, categories=rule.categories,
                                    window_s=rule.window_s) if rule.spike_factor else 0.0)
        severity = evaluate(rule, stats, baseline=baseline, attributes=feeding[-1].attributes)
        if severity is None or in_cooldown(_cooldown_until(session, rule=rule.name, zone_id=match.zone_id), now):
            return None
        alert = _open(session, rule=rule, zone_id=match.zone_id, category=feeding[-1].category, severity=severity,
                      stats=live, now=now)
        if alert is not None:
            _attach(session, rule=rule, alert=alert, zone_id=match.zone_id, observation_ids=observation_ids,
                    now=now)
            record_change(session, alert=alert, from_state=None, actor=f"rule:{rule.name}",
                          reason=_why_opened(rule, stats, baseline), now=now)
            notify(session, alert=alert, rule=rule, zone=zone, now=now, log_rows=[])  # new: nothing sent yet
            log.info("alert %s opened rule=%s zone=%s/%s", alert.id, rule.name, match.layer, match.code)
            return AlertChange(alert.id, "opened", rule.name, match.code, alert.severity)
        alert = _unresolved(session, rule=rule.name, zone_id=match.zone_id)  # another worker won the race
        if alert is None:
            return None
    _attach(session, rule=rule, alert=alert, zone_id=match.zone_id, observation_ids=observation_ids, now=now)
    alert.distinct_authors = max(alert.distinct_authors, live.distinct_authors)
    alert.last_evidence_at = alert.updated_at = now
    alert.expires_at = now + timedelta(seconds=rule.expire_after_s)
    if live.weighted_count + 1e-9 >= rule.resolve_threshold:
        alert.quiet_since = None
    severity = None if rule.immediate else evaluate(rule, live)
    if severity is None or severity_rank(severity) <= severity_rank(alert.severity):
        return None
    alert.severity = severity
    record_change(session, alert=alert, from_state=alert.state, actor=f"rule:{rule.name}",
                  reason=f"severity raised: weighted count {live.weighted_count:g} in {rule.window_s:g}s", now=now)
    notify(session, alert=alert, rule=rule, zone=zone, now=now)
    return AlertChange(alert.id, "updated", rule.name, match.code, severity)


def _why_opened(rule: Rule, stats: WindowStats, baseline: float) -> str:
    if rule.immediate:
        return "immediate rule: one matching signal"
    why = (f"threshold reached: weighted count {stats.weighted_count:g} from {stats.distinct_authors} authors "
           f"in {rule.window_s:g}s")
    return why + (f" (baseline {baseline:.2f} per window)" if rule.spike_factor else "")


def _open(session: Session, *, rule: Rule, zone_id: int, category: str, severity: str, stats: WindowStats,
          now: datetime) -> Alert | None:
    """Open the (rule, zone) alert; None when a concurrent worker already has (the partial unique index)."""
    seq = session.execute(text("SELECT nextval('ack_code_seq')")).scalar_one()
    new_id = session.execute(
        _INSERT_ALERT,
        {"rule": rule.name, "zone_id": zone_id, "category": category, "severity": severity,
         "ack_code": ackcodes.new_ack_code(seq), "authors": stats.distinct_authors, "now": now,
         "expires_at": now + timedelta(seconds=rule.expire_after_s)},
    ).scalar()
    return None if new_id is None else session.get_one(Alert, new_id)


def _attach(session: Session, *, rule: Rule, alert: Alert, zone_id: int, observation_ids: list[int],
            now: datetime) -> None:
    """Link evidence: on opening, everything the window counted; afterwards, the new observations."""
    if alert.evidence_count == 0 and not rule.immediate:
        params = {**_window_params(rule, zone_id, now, rule.window_s), "alert_id": alert.id}
        added = session.execute(_ATTACH_WINDOW, params).rowcount or 0
    else:
        added = 0
    added += session.execute(_ATTACH, {"alert_id": alert.id, "ids": observation_ids, "now": now}).rowcount or 0
    alert.evidence_count += added


def record_change(session: Session, *, alert: Alert, from_state: str | None, actor: str, reason: str,
                  now: datetime) -> AlertHistory:
    """An audit row for a state or severity change: who and why."""
    row = AlertHistory(alert_id=alert.id, at=now, from_state=from_state, to_state=alert.state,
                       severity=alert.severity, actor=actor, reason=reason)
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


def notify(session: Session, *, alert: Alert, rule: Rule | None, zone: Mapping[str, str], now: datetime,
           silences: Sequence[SilenceView] | None = None, log_rows: Sequence[Sent] | None = None) -> Decision:
    """Decide (notify.decide) and, when it says so, write one outbox event and one notification-log row.

    Callers that already hold the active silences or the alert's notification log may pass them in."""
    session.flush()
    if silences is None:
        silences = active_silences(session, now=now)
    if log_rows is None:
        log_rows = notification_log(session, alert.id)
    decision = decide(alert_view(alert, zone), log_rows, silences, rule, now)
    if not decision.notify:
        return decision
    event = outbox.emit(session, alert=alert, kind=decision.kind or decision.reason, reason=decision.reason,
                        zone=dict(zone), now=now)
    event.payload = {**event.payload, "evidence_by_source": evidence_by_source(session, alert.id),
                     "silenced": decision.silenced}
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
                rules: Sequence[Rule] | None = None) -> Alert:
    """An operator or responder takes the alert: repeats and escalation stop. Pass `rules` for per-rule settings."""
    alert = _locked(session, alert_id)
    previous = alert.state
    alert.state = check_transition(alert.id, previous, AlertState.ACKNOWLEDGED).value
    alert.acknowledged_at = alert.updated_at = now
    alert.acknowledged_by = actor
    record_change(session, alert=alert, from_state=previous, actor=actor, reason=note or "acknowledged", now=now)
    notify(session, alert=alert, rule=_rule_named(rules, alert.rule), zone=zone_ref(session, alert.zone_id), now=now)
    return alert


def resolve(session: Session, *, alert_id: int, actor: str, note: str | None, now: datetime,
            rules: Sequence[Rule] | None = None) -> Alert:
    """Resolve by hand; the rule's cooldown starts now. Pass `rules` for per-rule settings."""
    alert = _locked(session, alert_id)
    close(session, alert=alert, rule=_rule_named(rules, alert.rule), actor=actor, reason=note or "resolved", now=now)
    return alert


def close(session: Session, *, alert: Alert, rule: Rule | None, actor: str, reason: str, now: datetime) -> Decision:
    """Resolve a locked alert: state, cooldown, audit row and the "resolved" notification."""
    previous = alert.state
    alert.state = check_transition(alert.id, previous, AlertState.RESOLVED).value
    alert.resolved_at = alert.updated_at = now
    alert.resolved_by = actor
    alert.quiet_since = None
    alert.cooldown_until = now + timedelta(seconds=rule.cooldown_s if rule else 0)
    record_change(session, alert=alert, from_state=previous, actor=actor, reason=reason, now=now)
    log.info("alert %s resolved by %s", alert.id, actor.split(":")[0])
    return notify(session, alert=alert, rule=rule, zone=zone_ref(session, alert.zone_id), now=now)


def retire_evidence(session: Session, *, observation_ids: Sequence[int], now: datetime) -> int:
    """Stop counting these observations in rule windows (a superseded or closed report); returns signals retired."""
    if not observation_ids:
        return 0
    result = session.execute(
        text("UPDATE signals SET retired_at = :now WHERE observation_id = ANY(:ids) AND retired_at IS NULL"),
        {"now": now, "ids": list(observation_ids)},
    )
    return result.rowcount or 0


# ---------------------------------------------------------------- batches (the post pipeline): signals in one statement

_INSERT_SIGNALS = text(
    """
    INSERT INTO signals (observation_id, zone_id, source, category, confidence, weight, author_key, observed_at)
    SELECT * FROM unnest(CAST(:observation_id AS bigint[]), CAST(:zone_id AS integer[]), CAST(:source AS text[]),
                         CAST(:category AS text[]), CAST(:confidence AS float8[]), CAST(:weight AS float8[]),
                         CAST(:author_key AS text[]), CAST(:observed_at AS timestamptz[]))
    """
)


def _insert_signals(session: Session, signals: Sequence[SignalIn]) -> None:
    cols: dict[str, list] = {k: [] for k in ("observation_id", "zone_id", "source", "category", "confidence",
                                             "weight", "author_key", "observed_at")}
    for s in signals:
        for m in s.zones:
            for k, v in (("observation_id", s.observation_id), ("zone_id", m.zone_id), ("source", s.source),
                         ("category", s.category), ("confidence", s.confidence), ("weight", m.weight),
                         ("author_key", s.author_key), ("observed_at", s.observed_at)):
                cols[k].append(v)
    if cols["zone_id"]:
        session.execute(_INSERT_SIGNALS, cols)


# ---------------------------------------------------------------- batches: skip (rule, zone) pairs that cannot change

_WINDOW_BY_ZONE = text(
    "SELECT zone_id, coalesce(sum(weight), 0), count(DISTINCT coalesce(author_key, observation_id::text)) "
    "FROM signals WHERE zone_id = ANY(:zone_ids) AND category = ANY(:categories) AND source = ANY(:sources) "
    "AND confidence >= :min_confidence AND weight >= :min_weight "
    "AND observed_at > :since AND observed_at <= :now AND retired_at IS NULL GROUP BY zone_id"
)


def signals_that_matter(session: Session, *, signals: Sequence[SignalIn], rules: Sequence[Rule],
                        now: datetime) -> list[SignalIn]:
    """The (already recorded) signals trimmed to zones where `observe_many` can change something.

    A zone stays when a rule the signals feed there is immediate, has an unresolved alert there, or
    already reaches its min_count and min_distinct_authors in the window (no threshold is below
    min_count). Two queries per rule instead of several per (rule, zone): a batch of posts touches
    hundreds of zones, most of them far from any threshold."""
    keep: set[int] = set()
    for rule in rules:
        zones = {m.zone_id for s in signals for m in s.zones if _feeds(rule, s, m)}
        if not zones:
            continue
        if rule.immediate:
            keep |= zones
            continue
        params = _window_params(rule, 0, now, rule.hysteresis_window_s)
        params.pop("zone_id")
        for zone_id, weighted, authors in session.execute(_WINDOW_BY_ZONE, {**params, "zone_ids": sorted(zones)}):
            if float(weighted) + 1e-9 >= rule.min_count and int(authors) >= rule.min_distinct_authors:
                keep.add(zone_id)
        keep.update(session.scalars(select(Alert.zone_id).where(
            Alert.rule == rule.name, Alert.zone_id.in_(sorted(zones)), Alert.state != AlertState.RESOLVED)))
    out = []
    for s in signals:
        zones = [m for m in s.zones if m.zone_id in keep]
        if zones:
            out.append(SignalIn(observation_id=s.observation_id, source=s.source, category=s.category,
                                confidence=s.confidence, author_key=s.author_key, observed_at=s.observed_at,
                                zones=tuple(zones), attributes=s.attributes))
    return out
