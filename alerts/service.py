"""Observe signals, open and update alerts; every change writes its outbox event in the same transaction."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from alerts import ackcodes, outbox
from alerts.evaluate import WindowStats, evaluate, severity_rank
from alerts.models import Alert, AlertEvidence, AlertHistory, Signal
from alerts.rules import Rule
from geo.matching import ZoneMatch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignalIn:
    """An observation as evidence: what, how sure, who, when, and where (zones with weights)."""

    observation_id: int
    source: str
    category: str
    confidence: float
    author_key: str | None
    observed_at: datetime
    zones: Sequence[ZoneMatch]


@dataclass(frozen=True)
class AlertChange:
    alert_id: int
    kind: str  # opened | updated
    rule: str
    zone_code: str
    severity: str


_WINDOW_SQL = text(
    """
    SELECT count(*), coalesce(sum(weight), 0), count(DISTINCT coalesce(author_key, observation_id::text))
    FROM signals
    WHERE zone_id = :zone_id AND category = ANY(:categories) AND source = ANY(:sources)
      AND confidence >= :min_confidence AND weight >= :min_weight
      AND observed_at > :since AND observed_at <= :now AND retired_at IS NULL
    """
)

_INSERT_ALERT = text(
    """
    INSERT INTO alerts (rule, zone_id, category, severity, state, ack_code, evidence_count, distinct_authors,
                        opened_at, updated_at, last_evidence_at, expires_at)
    VALUES (:rule, :zone_id, :category, :severity, 'open', :ack_code, :count, :authors,
            :now, :now, :now, :expires_at)
    ON CONFLICT (rule, zone_id) WHERE state <> 'resolved' DO NOTHING
    RETURNING id
    """
)


def _zone_ref(match: ZoneMatch) -> dict[str, str]:
    return {"layer": match.layer, "code": match.code, "name": match.name}


def _window_stats(session: Session, rule: Rule, zone_id: int, now: datetime) -> WindowStats:
    count, weighted, authors = session.execute(
        _WINDOW_SQL,
        {
            "zone_id": zone_id,
            "categories": list(rule.categories),
            "sources": list(rule.sources),
            "min_confidence": rule.min_confidence,
            "min_weight": rule.min_zone_weight,
            "since": now - timedelta(seconds=rule.window_s),
            "now": now,
        },
    ).one()
    return WindowStats(weighted_count=float(weighted), distinct_authors=int(authors), count=int(count))


def _open_or_get(session: Session, *, rule: Rule, zone_id: int, category: str, severity: str,
                 stats: WindowStats, now: datetime) -> tuple[Alert, bool]:
    """The unresolved alert for (rule, zone), opening it if needed; safe under concurrent workers."""
    existing = session.scalar(
        select(Alert).where(Alert.rule == rule.name, Alert.zone_id == zone_id, Alert.state != "resolved")
        .with_for_update()
    )
    if existing is not None:
        return existing, False
    seq = session.execute(text("SELECT nextval('ack_code_seq')")).scalar_one()
    new_id = session.execute(
        _INSERT_ALERT,
        {
            "rule": rule.name, "zone_id": zone_id, "category": category, "severity": severity,
            "ack_code": ackcodes.new_ack_code(seq), "count": stats.count, "authors": stats.distinct_authors,
            "now": now, "expires_at": now + timedelta(seconds=rule.expire_after_s),
        },
    ).scalar()
    if new_id is None:
        # Another worker opened it first and has committed; take theirs.
        raced = session.scalar(
            select(Alert).where(Alert.rule == rule.name, Alert.zone_id == zone_id, Alert.state != "resolved")
            .with_for_update()
        )
        assert raced is not None
        return raced, False
    return session.get_one(Alert, new_id), True


def observe(session: Session, *, signal: SignalIn, rules: Sequence[Rule], now: datetime) -> list[AlertChange]:
    """Record a signal in every zone it matched, evaluate the rules it can feed, and open or update alerts."""
    session.add_all(
        Signal(
            observation_id=signal.observation_id, zone_id=m.zone_id, source=signal.source,
            category=signal.category, confidence=signal.confidence, weight=m.weight,
            author_key=signal.author_key, observed_at=signal.observed_at,
        )
        for m in signal.zones
    )
    session.flush()
    changes: list[AlertChange] = []
    for rule in rules:
        if not rule.matches(category=signal.category, source=signal.source, confidence=signal.confidence):
            continue
        for match in signal.zones:
            if match.layer != rule.layer or match.weight < rule.min_zone_weight:
                continue
            stats = _window_stats(session, rule, match.zone_id, now)
            if rule.immediate:
                stats = WindowStats(weighted_count=match.weight, distinct_authors=1, count=1)
            severity = evaluate(rule, stats)
            if severity is None:
                continue
            change = _apply(session, rule=rule, match=match, signal=signal, severity=severity, stats=stats, now=now)
            if change:
                changes.append(change)
    return changes


def _apply(session: Session, *, rule: Rule, match: ZoneMatch, signal: SignalIn, severity: str,
           stats: WindowStats, now: datetime) -> AlertChange | None:
    alert, opened = _open_or_get(session, rule=rule, zone_id=match.zone_id, category=signal.category,
                                 severity=severity, stats=stats, now=now)
    session.merge(AlertEvidence(alert_id=alert.id, observation_id=signal.observation_id, added_at=now))
    zone = _zone_ref(match)
    if opened:
        session.add(AlertHistory(alert_id=alert.id, at=now, from_state=None, to_state="open",
                                 severity=severity, actor=f"rule:{rule.name}", reason="threshold reached"))
        outbox.emit(session, alert=alert, kind="opened", reason="first_notification", zone=zone, now=now)
        log.info("alert %s opened rule=%s zone=%s/%s", alert.id, rule.name, match.layer, match.code)
        return AlertChange(alert.id, "opened", rule.name, match.code, severity)
    raised = severity_rank(severity) > severity_rank(alert.severity)
    alert.evidence_count = max(alert.evidence_count + 1, stats.count)
    alert.distinct_authors = max(alert.distinct_authors, stats.distinct_authors)
    alert.last_evidence_at = now
    alert.updated_at = now
    if raised:
        alert.severity = severity
        session.add(AlertHistory(alert_id=alert.id, at=now, from_state=alert.state, to_state=alert.state,
                                 severity=severity, actor=f"rule:{rule.name}", reason="severity raised"))
        session.flush()
        outbox.emit(session, alert=alert, kind="updated", reason="severity_raised", zone=zone, now=now)
        return AlertChange(alert.id, "updated", rule.name, match.code, severity)
    return None


def list_alerts(session: Session, *, state: str | None = None, limit: int = 100) -> list[dict[str, object]]:
    """Alerts with their zone, newest first."""
    rows = session.execute(
        text(
            """
            SELECT a.id, a.rule, a.category, a.severity, a.state, a.ack_code, a.evidence_count,
                   a.distinct_authors, a.opened_at, a.updated_at, a.expires_at, l.name, z.code, z.name
            FROM alerts a JOIN zones z ON z.id = a.zone_id JOIN zone_layers l ON l.id = z.layer_id
            WHERE (CAST(:state AS text) IS NULL OR a.state = :state)
            ORDER BY a.id DESC LIMIT :limit
            """
        ),
        {"state": state, "limit": limit},
    ).all()
    keys = ("id", "rule", "category", "severity", "state", "ack_code", "evidence_count", "distinct_authors",
            "opened_at", "updated_at", "expires_at")
    return [
        {**dict(zip(keys, r[:11])), "zone": {"layer": r[11], "code": r[12], "name": r[13]}} for r in rows
    ]
