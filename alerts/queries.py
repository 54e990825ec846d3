"""Read side of alerts for the control room: lists, and one alert with its evidence, history and notifications."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from accounts.agencies import EVERYTHING, Coverage
from alerts.access import alert_filter
from alerts.errors import UnknownAlert
from alerts.models import Alert, AlertHistory, AlertNotification
from alerts.notify import AlertView, is_silenced
from alerts.silences import active_silences
from geo.match_postgis import ZoneMatch

AUTHOR_PREFIX_LEN = 8  # enough to tell authors apart in a list; the full hash stays in the database


@dataclass(frozen=True)
class EvidenceItem:
    observation_id: int
    source: str
    category: str
    text: str | None  # post text or utility report description
    observed_at: datetime
    weight: float | None  # share of the observation's location inside the alert's zone
    author: str | None  # prefix of the author hash


@dataclass(frozen=True)
class HistoryItem:
    at: datetime
    from_state: str | None
    to_state: str
    severity: str
    actor: str
    reason: str
    agency: str | None = None  # the acting operator's agencies


@dataclass(frozen=True)
class NotificationItem:
    at: datetime
    reason: str
    kind: str
    state: str
    severity: str
    event_id: str


@dataclass(frozen=True)
class RuleFired:
    """A rule that fired for an alert: one incident, one alert, however many rules saw it."""

    rule: str
    severity: str  # the severity it last raised
    first_fired_at: datetime
    last_fired_at: datetime


_RULES_SQL = text("SELECT alert_id, rule, severity, first_fired_at, last_fired_at FROM alert_rules "
                  "WHERE alert_id = ANY(:ids) ORDER BY alert_id, first_fired_at, rule")


def rules_of(session: Session,
             alerts: Sequence[tuple[int, str, str, datetime, datetime]]) -> dict[int, list[RuleFired]]:
    """The rules that fired for each (id, rule, severity, opened_at, last_evidence_at) alert, in one query; an
    alert written before migration 0017 or outside the engine lists its own rule."""
    out: dict[int, list[RuleFired]] = {}
    for alert_id, *rest in session.execute(_RULES_SQL, {"ids": [a[0] for a in alerts]}):
        out.setdefault(alert_id, []).append(RuleFired(*rest))
    for alert_id, rule, severity, opened_at, last_at in alerts:
        out.setdefault(alert_id, [RuleFired(rule, severity, opened_at, last_at)])
    return out


@dataclass(frozen=True)
class AlertDetail:
    alert: Alert
    zone: dict[str, str]
    evidence: list[EvidenceItem]
    history: list[HistoryItem]
    notifications: list[NotificationItem]
    evidence_by_source: dict[str, int]
    silenced: bool | None  # None when no `now` was given
    rules: list[RuleFired] = field(default_factory=list)  # every rule that fired for it, in the order they did


def zone_ref(session: Session, zone_id: int, *, match: ZoneMatch | None = None) -> dict[str, str]:
    """{"layer", "code", "name"} of a zone (from the match when the caller has it)."""
    if match is not None:
        return {"layer": match.layer, "code": match.code, "name": match.name}
    layer, code, name = session.execute(
        text("SELECT l.name, z.code, z.name FROM zones z JOIN zone_layers l ON l.id = z.layer_id WHERE z.id = :id"),
        {"id": zone_id},
    ).one()
    return {"layer": layer, "code": code, "name": name}


def zone_refs(session: Session, zone_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """zone_ref for many zones in one query."""
    rows = session.execute(
        text("SELECT z.id, l.name, z.code, z.name FROM zones z JOIN zone_layers l ON l.id = z.layer_id "
             "WHERE z.id = ANY(:ids)"),
        {"ids": list(zone_ids)},
    ).all()
    return {zid: {"layer": layer, "code": code, "name": name} for zid, layer, code, name in rows}


_EVIDENCE_SQL = text(
    """
    SELECT o.id, o.source, o.category, o.text, o.observed_at,
           (SELECT max(s.weight) FROM signals s WHERE s.observation_id = o.id AND s.zone_id = :zone_id),
           left(o.author_hash, :prefix)
    FROM alert_evidence e JOIN observations o ON o.id = e.observation_id
    WHERE e.alert_id = :alert_id
    ORDER BY o.observed_at, o.id
    """
)


def get_alert(session: Session, *, alert_id: int, now: datetime | None = None) -> AlertDetail:
    """One alert with its zone, evidence (both kinds, posts and utility reports), history and notifications."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise UnknownAlert(f"no alert with id {alert_id}", alert_id=alert_id)
    zone = zone_ref(session, alert.zone_id)
    evidence = [
        EvidenceItem(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else float(r[5]), r[6])
        for r in session.execute(_EVIDENCE_SQL, {"zone_id": alert.zone_id, "alert_id": alert.id,
                                                 "prefix": AUTHOR_PREFIX_LEN})
    ]
    history = [
        HistoryItem(h.at, h.from_state, h.to_state, h.severity, h.actor, h.reason, h.agency)
        for h in session.scalars(select(AlertHistory).where(AlertHistory.alert_id == alert.id)
                                 .order_by(AlertHistory.at, AlertHistory.id))
    ]
    notifications = [
        NotificationItem(n.at, n.reason, n.kind, n.state, n.severity, str(n.event_id))
        for n in session.scalars(select(AlertNotification).where(AlertNotification.alert_id == alert.id)
                                 .order_by(AlertNotification.at, AlertNotification.id))
    ]
    by_source: dict[str, int] = {}
    for item in evidence:
        by_source[item.source] = by_source.get(item.source, 0) + 1
    silenced = None
    if now is not None:
        silenced = is_silenced(alert_view(alert, zone), active_silences(session, now=now), now)
    rules = rules_of(session, [(alert.id, alert.rule, alert.severity, alert.opened_at, alert.last_evidence_at)])
    return AlertDetail(alert, zone, evidence, history, notifications, by_source, silenced, rules[alert.id])


def alert_view(alert: Alert, zone: dict[str, str]) -> AlertView:
    return AlertView(id=alert.id, rule=alert.rule, layer=zone["layer"], zone=zone["code"], category=alert.category,
                     state=alert.state, severity=alert.severity)


_LIST_KEYS = ("id", "rule", "category", "severity", "state", "ack_code", "evidence_count", "distinct_authors",
              "opened_at", "updated_at", "expires_at", "acknowledged_at", "acknowledged_by", "resolved_at",
              "resolved_by", "last_notified_at", "last_evidence_at")


def list_alerts(session: Session, *, state: str | None = None, layer: str | None = None, zone: str | None = None,
                category: str | None = None, since: datetime | None = None, limit: int = 100,
                now: datetime | None = None, coverage: Coverage = EVERYTHING) -> list[dict[str, Any]]:
    """Alerts with their zone, newest first; `since` keeps those updated at or after it; `now` adds `silenced`;
    `coverage` keeps those the caller's agencies cover."""
    visible, visible_params = alert_filter(coverage)
    rows = session.execute(
        text(
            f"""
            SELECT {', '.join('a.' + k for k in _LIST_KEYS)}, l.name, z.code, z.name
            FROM alerts a JOIN zones z ON z.id = a.zone_id JOIN zone_layers l ON l.id = z.layer_id
            WHERE (CAST(:state AS text) IS NULL OR a.state = :state)
              AND (CAST(:layer AS text) IS NULL OR l.name = :layer)
              AND (CAST(:zone AS text) IS NULL OR z.code = :zone)
              AND (CAST(:category AS text) IS NULL OR a.category = :category)
              AND (CAST(:since AS timestamptz) IS NULL OR a.updated_at >= :since)
              AND {visible}
            ORDER BY a.id DESC LIMIT :limit
            """
        ),
        {"state": state, "layer": layer, "zone": zone, "category": category, "since": since, "limit": limit,
         **visible_params},
    ).all()
    n = len(_LIST_KEYS)
    out = [{**dict(zip(_LIST_KEYS, r[:n])), "zone": {"layer": r[n], "code": r[n + 1], "name": r[n + 2]}}
           for r in rows]
    fired = rules_of(session, [(i["id"], i["rule"], i["severity"], i["opened_at"], i["last_evidence_at"])
                               for i in out]) if out else {}
    for item in out:
        item["rules"] = fired[item["id"]]
    if now is not None:
        silences = active_silences(session, now=now)
        for item in out:
            view = AlertView(id=item["id"], rule=item["rule"], layer=item["zone"]["layer"],
                             zone=item["zone"]["code"], category=item["category"], state=item["state"],
                             severity=item["severity"])
            item["silenced"] = is_silenced(view, silences, now)
    return out
