"""The shapes of one evaluation (alerts.observe): a rule in a zone with the signals that feed it (`Pair`), the
pairs of one (zone, category) that make one incident and one alert (`Incident`), the alert's columns as
evaluation reads them (`alerts.events.AlertRow`) and what changed (`AlertChange`)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alerts.evaluate import WindowStats
from alerts.events import AlertRow
from alerts.notify import Decision, Sent
from alerts.rules import Rule
from alerts.signals import SignalIn, feeds
from geo.match_postgis import ZoneMatch


@dataclass(frozen=True)
class AlertChange:
    alert_id: int
    kind: str  # opened | updated
    rule: str
    zone_code: str
    severity: str
    observation_ids: tuple[int, ...] = ()  # the evidence of this evaluation that fed it


@dataclass
class Pair:
    """One rule in one zone, with the signals of this batch that feed it."""

    rule: Rule
    match: ZoneMatch
    feeding: list[SignalIn]
    live: WindowStats | None = None
    cooldown_until: datetime | None = None
    seq: int | None = None
    new_id: int | None = None  # the id its alert takes if it opens (READ draws it with `seq`)
    fires: str | None = None  # the severity the rule raises now (None: it feeds the alert without firing)

    @property
    def observation_ids(self) -> list[int]:
        return sorted({s.observation_id for s in self.feeding})


@dataclass
class Incident:
    """Every pair of one (zone, category) in the batch: one incident, one alert, whichever rules fire."""

    match: ZoneMatch
    category: str
    pairs: list[Pair]
    alert: AlertRow | None = None
    log_rows: list[Sent] = field(default_factory=list)
    lead: Rule | None = None  # the rule leading the alert (None: removed from the rules)
    active: list[Pair] = field(default_factory=list)  # pairs whose rule is on the alert (fired now or before)
    joined: list[Pair] = field(default_factory=list)  # pairs whose rule fires for the first time on it
    # What the decision made of it.
    opening: bool = False
    changed_severity: bool = False
    reason: str = ""
    raised_by: str = ""  # the rule that raised the severity
    decision: Decision | None = None
    added: dict[str, int] = field(default_factory=dict)  # new evidence by source
    by_source: dict[str, int] = field(default_factory=dict)  # all evidence by source, when notifying

    @property
    def observation_ids(self) -> list[int]:
        return sorted({oid for p in self.active for oid in p.observation_ids})


def pairs_of(signals: Sequence[SignalIn], rules: Sequence[Rule]) -> dict[tuple[str, int], Pair]:
    """(rule, zone) -> the zone match and the signals that feed it, in arrival order."""
    pairs: dict[tuple[str, int], Pair] = {}
    for s in signals:
        for rule in rules:
            for m in s.zones:
                if feeds(rule, s, m):
                    pairs.setdefault((rule.name, m.zone_id), Pair(rule, m, [])).feeding.append(s)
    return pairs


def incidents_of(pairs: Sequence[Pair]) -> list[Incident]:
    """The pairs grouped by (zone, incident category), in first-seen order: each group is one alert."""
    out: dict[tuple[int, str], Incident] = {}
    for p in pairs:
        key = (p.match.zone_id, p.rule.incident_category)
        out.setdefault(key, Incident(p.match, key[1], [])).pairs.append(p)
    return list(out.values())
