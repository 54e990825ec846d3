"""Backtest results: the alert timeline a run left in its (rolled-back) transaction, and the scoring of
labelled streams. The driver that feeds the stream through the post pipeline is tocsin.backtest.

Scoring (pure): each alert is attributed to the labelled incident most of its evidence belongs to; an
alert whose evidence carries no incident label is an alert on noise; a labelled incident with no alert
is missed; an incident with more than one alert has duplicates (one incident, one alert).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    kind: str  # opened | updated | resolved
    alert_id: int
    zone: str
    category: str
    rules: tuple[str, ...]
    severity: str
    reason: str


@dataclass
class Score:
    incidents: list[str]  # every labelled incident, sorted
    alerted: list[str]
    missed: list[str]
    noise_alerts: list[int]  # alert ids raised on evidence labelled noise only
    duplicates: dict[str, list[int]] = field(default_factory=dict)  # incident -> its alerts, when more than one

    @property
    def duplicate_alerts(self) -> int:
        return sum(len(ids) - 1 for ids in self.duplicates.values())

    def summary(self) -> str:
        return (f"bursts_alerted={len(self.alerted)}/{len(self.incidents)} noise_alerts={len(self.noise_alerts)} "
                f"duplicate_alerts={self.duplicate_alerts}")


def timeline(session: Session, *, after_id: int) -> list[TimelineEvent]:
    """The history of every alert with an id above `after_id` (those the run opened), in time order."""
    rows = session.execute(text(
        "SELECT h.at, h.from_state, h.to_state, h.severity, h.reason, a.id, z.code, a.category, "
        "       coalesce((SELECT array_agg(ar.rule ORDER BY ar.first_fired_at, ar.rule) FROM alert_rules ar "
        "                 WHERE ar.alert_id = a.id), ARRAY[a.rule]) AS rules "
        "FROM alert_history h JOIN alerts a ON a.id = h.alert_id JOIN zones z ON z.id = a.zone_id "
        "WHERE a.id > :after ORDER BY h.at, h.id"), {"after": after_id}).all()
    out = []
    for at, from_state, to_state, severity, reason, alert_id, zone, category, rules in rows:
        kind = "opened" if from_state is None else "resolved" if to_state == "resolved" else "updated"
        out.append(TimelineEvent(at, kind, alert_id, zone, category, tuple(rules), severity, reason or ""))
    return out


def evidence(session: Session, *, after_id: int) -> dict[int, list[int]]:
    """alert id -> the observations linked to it as evidence, for alerts above `after_id`."""
    out: dict[int, list[int]] = {}
    for alert_id, oid in session.execute(text(
            "SELECT alert_id, observation_id FROM alert_evidence WHERE alert_id > :after ORDER BY 1, 2"),
            {"after": after_id}):
        out.setdefault(alert_id, []).append(oid)
    return out


def rule_counts(events: Sequence[TimelineEvent]) -> dict[str, int]:
    """How many alerts each rule fired for (opened or joined)."""
    seen: dict[str, set[int]] = {}
    for e in events:
        for r in e.rules:
            seen.setdefault(r, set()).add(e.alert_id)
    return {r: len(ids) for r, ids in sorted(seen.items())}


def score(labels: Mapping[int, str | None], evidence_of: Mapping[int, Sequence[int]]) -> Score:
    """labels: observation id -> its incident (None: noise) for every labelled post of the stream;
    evidence_of: alert id -> its evidence observation ids."""
    incidents = sorted({v for v in labels.values() if v is not None})
    by_incident: dict[str, list[int]] = {}
    noise: list[int] = []
    for alert_id, oids in sorted(evidence_of.items()):
        named = Counter(labels[o] for o in oids if labels.get(o) is not None)
        if not named:
            if any(o in labels for o in oids):
                noise.append(alert_id)
            continue
        incident = min(named, key=lambda k: (-named[k], k))  # the most evidence; ties by name
        by_incident.setdefault(incident, []).append(alert_id)
    alerted = [i for i in incidents if i in by_incident]
    return Score(incidents=incidents, alerted=alerted, missed=[i for i in incidents if i not in by_incident],
                 noise_alerts=noise, duplicates={i: ids for i, ids in by_incident.items() if len(ids) > 1})
