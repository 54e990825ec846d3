"""Rule evaluation for a batch of signals in a fixed handful of statements, whatever the batch size.

One utility report and a 10,000-post batch take the same path (a database round trip costs far more
than the Python between them, so statements are counted, not (rule, zone) pairs):

1. lock the zones (an advisory lock per zone, in zone order, held to commit), writing the signals in
   the same statement when the caller has not;
2. read, for every (rule, zone) pair, the window counts, the unresolved alert (row-locked), the
   cooldown, the notification log, and the active silences;
3. decide in Python (`evaluate`, `in_cooldown`, `notify.decide`: pure);
4. open the new alerts (one INSERT);
5. link evidence (one INSERT), which also returns the evidence counted by source;
6. write alert updates, history, outbox events and notification-log rows (one statement).

The zone lock makes a second worker wait and then count the first one's signals too, so two
concurrent writers never both miss each other's evidence.
"""

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from alerts import ackcodes, outbox
from alerts import observe_sql as sql
from alerts.baselines import window_baseline
from alerts.evaluate import WindowStats, conditions_hold, evaluate, in_cooldown, severity_rank
from alerts.models import Alert
from alerts.notify import AlertView, Decision, Sent, SilenceView, decide
from alerts.rules import Rule
from db import raw
from geo.matching import ZoneMatch

log = logging.getLogger(__name__)

ZONE_LOCK = 7_100_5  # advisory lock class: rule evaluation in one zone
_EPS = 1e-9


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


@dataclass
class AlertRow:
    """The columns of an alert that evaluation reads and the outbox payload shows."""

    id: int
    rule: str
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


@dataclass
class _Pair:
    rule: Rule
    match: ZoneMatch
    feeding: list[SignalIn]
    live: WindowStats | None = None
    alert: AlertRow | None = None
    cooldown_until: datetime | None = None
    seq: int | None = None
    log_rows: list[Sent] = field(default_factory=list)
    # What the decision made of it.
    opening: bool = False
    changed_severity: bool = False
    reason: str = ""
    decision: Decision | None = None
    added: dict[str, int] = field(default_factory=dict)  # new evidence by source
    by_source: dict[str, int] = field(default_factory=dict)  # all evidence by source, when notifying

    @property
    def observation_ids(self) -> list[int]:
        return sorted({s.observation_id for s in self.feeding})


def feeds(rule: Rule, signal: SignalIn, match: ZoneMatch) -> bool:
    return (rule.matches(category=signal.category, source=signal.source, confidence=signal.confidence)
            and match.layer == rule.layer and match.weight >= rule.min_zone_weight
            and (not rule.immediate or conditions_hold(rule, signal.attributes)))


def layers_fed(rules: Sequence[Rule], *, source: str, category: str, confidence: float,
               attributes: Mapping[str, Any]) -> list[str]:
    """The zone layers where such a signal can feed a rule: the zones a writer locks before evaluating."""
    return sorted({r.layer for r in rules if r.matches(category=category, source=source, confidence=confidence)
                   and (not r.immediate or conditions_hold(r, attributes))})


def pairs_of(signals: Sequence[SignalIn], rules: Sequence[Rule]) -> dict[tuple[str, int], _Pair]:
    """(rule, zone) -> the zone match and the signals that feed it, in arrival order."""
    pairs: dict[tuple[str, int], _Pair] = {}
    for s in signals:
        for rule in rules:
            for m in s.zones:
                if feeds(rule, s, m):
                    pairs.setdefault((rule.name, m.zone_id), _Pair(rule, m, [])).feeding.append(s)
    return pairs


# ---------------------------------------------------------------- 1. signals and zone locks

_SIGNAL_COLUMNS = ("observation_id", "zone_id", "source", "category", "confidence", "weight", "author_key",
                   "observed_at")


def _signal_columns(signals: Sequence[SignalIn]) -> dict[str, list]:
    cols: dict[str, list] = {k: [] for k in _SIGNAL_COLUMNS}
    for s in signals:
        for m in s.zones:
            for k, v in (("observation_id", s.observation_id), ("zone_id", m.zone_id), ("source", s.source),
                         ("category", s.category), ("confidence", s.confidence), ("weight", m.weight),
                         ("author_key", s.author_key), ("observed_at", s.observed_at)):
                cols[k].append(v)
    return cols


# ---------------------------------------------------------------- 2. read every pair's state in one statement

def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _read(session: Session, pairs: list[_Pair], now: datetime) -> list[SilenceView]:
    """Fill each pair's live window, alert, cooldown, ack-code sequence and log; returns active silences."""
    rules = {id(p.rule): p.rule for p in pairs}
    index = {key: i for i, key in enumerate(rules)}
    rule_rows = [{
        "ri": index[key], "name": r.name, "categories": list(r.categories), "sources": list(r.sources),
        "min_confidence": r.min_confidence, "min_weight": r.min_zone_weight,
        "since": (now - timedelta(seconds=r.hysteresis_window_s)).isoformat(),
        # A pair can only open when this much is in the window (no threshold is below min_count).
        "open_count": 0.0 if r.immediate else r.min_count,
        "open_authors": 0 if r.immediate else r.min_distinct_authors,
    } for key, r in rules.items()]
    rows = raw.execute(session, sql.READ, {
        "rules": json.dumps(rule_rows), "pi": list(range(len(pairs))),
        "pri": [index[id(p.rule)] for p in pairs], "pzone": [p.match.zone_id for p in pairs], "now": now,
    }).fetchall()
    silences: list[SilenceView] = []
    for row in rows:
        p = pairs[row.pi]
        p.live = WindowStats(weighted_count=float(row.w), distinct_authors=int(row.authors), count=int(row.n))
        p.cooldown_until, p.seq = row.cooldown_until, row.seq
        if row.id is not None:
            p.alert = AlertRow(id=row.id, rule=p.rule.name, category=row.category, severity=row.severity,
                               state=row.state, ack_code=row.ack_code, evidence_count=row.evidence_count,
                               distinct_authors=row.distinct_authors, opened_at=row.opened_at,
                               updated_at=row.updated_at, expires_at=row.expires_at, quiet_since=row.quiet_since)
        p.log_rows = [Sent(_ts(at), reason, state, severity) for at, reason, state, severity in row.log or ()]
        silences = [SilenceView(m, _ts(a), _ts(b)) for m, a, b in row.silences or ()]
    return silences


# ---------------------------------------------------------------- 3. decide (pure)

def _view(p: _Pair) -> AlertView:
    a = p.alert
    assert a is not None
    return AlertView(id=a.id, rule=a.rule, layer=p.match.layer, zone=p.match.code, category=a.category,
                     state=a.state, severity=a.severity)


def _why_opened(rule: Rule, stats: WindowStats, baseline: float) -> str:
    if rule.immediate:
        return "immediate rule: one matching signal"
    why = (f"threshold reached: weighted count {stats.weighted_count:g} from {stats.distinct_authors} authors "
           f"in {rule.window_s:g}s")
    return why + (f" (baseline {baseline:.2f} per window)" if rule.spike_factor else "")


def _decide_open(session: Session, p: _Pair, now: datetime) -> bool:
    """Whether the pair opens an alert; sets its severity and reason."""
    rule, live = p.rule, p.live
    assert live is not None
    if p.seq is None:  # the read saw the window below min_count or min_distinct_authors: no threshold is lower
        return False
    ids = p.observation_ids
    stats = WindowStats(p.match.weight * len(ids), 1, len(ids)) if rule.immediate else live
    baseline = (window_baseline(session, zone_id=p.match.zone_id, categories=rule.categories,
                                window_s=rule.window_s) if rule.spike_factor else 0.0)
    severity = evaluate(rule, stats, baseline=baseline, attributes=p.feeding[-1].attributes)
    if severity is None or in_cooldown(p.cooldown_until, now):
        return False
    p.alert = AlertRow(id=0, rule=rule.name, category=p.feeding[-1].category, severity=severity, state="open",
                       ack_code=ackcodes.new_ack_code(p.seq), evidence_count=0,
                       distinct_authors=live.distinct_authors, opened_at=now, updated_at=now,
                       expires_at=now + timedelta(seconds=rule.expire_after_s), quiet_since=None)
    p.opening, p.reason = True, _why_opened(rule, stats, baseline)
    return True


def _decide_update(p: _Pair, now: datetime) -> None:
    """New evidence on an unresolved alert: extend it, and raise its severity when the window says so."""
    rule, live, a = p.rule, p.live, p.alert
    assert live is not None and a is not None
    a.distinct_authors = max(a.distinct_authors, live.distinct_authors)
    a.updated_at = now
    a.expires_at = now + timedelta(seconds=rule.expire_after_s)
    if live.weighted_count + _EPS >= rule.resolve_threshold:
        a.quiet_since = None
    severity = None if rule.immediate else evaluate(rule, live)
    if severity is not None and severity_rank(severity) > severity_rank(a.severity):
        a.severity, p.changed_severity = severity, True
        p.reason = f"severity raised: weighted count {live.weighted_count:g} in {rule.window_s:g}s"


# ---------------------------------------------------------------- 4-6. writes

def _open_alerts(session: Session, opening: list[_Pair], now: datetime) -> list[_Pair]:
    """Insert the new alerts; returns the pairs whose insert lost to a concurrent opener (none expected)."""
    if not opening:
        return []
    cols: dict[str, list] = {k: [] for k in ("rule", "zone_id", "category", "severity", "ack_code", "authors",
                                             "expires_at")}
    for p in opening:
        a = p.alert
        assert a is not None
        for k, v in (("rule", a.rule), ("zone_id", p.match.zone_id), ("category", a.category),
                     ("severity", a.severity), ("ack_code", a.ack_code), ("authors", a.distinct_authors),
                     ("expires_at", a.expires_at)):
            cols[k].append(v)
    ids = {(rule, zone_id): alert_id
           for alert_id, rule, zone_id in raw.execute(session, sql.INSERT_ALERTS, {**cols, "now": now})}
    lost = []
    for p in opening:
        alert_id = ids.get((p.rule.name, p.match.zone_id))
        if alert_id is None:
            lost.append(p)
        else:
            assert p.alert is not None
            p.alert.id = alert_id
    return lost


def _link_evidence(session: Session, pairs: list[_Pair], notifying: list[_Pair], now: datetime) -> None:
    """Evidence for every pair: on opening, all the rule window counted; afterwards the new observations."""
    alert_ids: list[int] = []
    observation_ids: list[int] = []
    window = []
    for p in pairs:
        assert p.alert is not None
        for oid in p.observation_ids:
            alert_ids.append(p.alert.id)
            observation_ids.append(oid)
        if p.opening and not p.rule.immediate:
            r = p.rule
            window.append({"alert_id": p.alert.id, "zone_id": p.match.zone_id, "categories": list(r.categories),
                           "sources": list(r.sources), "min_confidence": r.min_confidence,
                           "min_weight": r.min_zone_weight,
                           "since": (now - timedelta(seconds=r.window_s)).isoformat()})
    by_alert = {p.alert.id: p for p in pairs if p.alert is not None}
    old_of = [p.alert.id for p in notifying if p.alert is not None and not p.opening]
    for new, alert_id, source, n in raw.execute(session, sql.EVIDENCE, {
            "window": json.dumps(window), "alert_id": alert_ids, "observation_id": observation_ids, "now": now,
            "old_of": old_of}):
        p = by_alert[alert_id]
        if new:
            p.added[source] = p.added.get(source, 0) + int(n)
        p.by_source[source] = p.by_source.get(source, 0) + int(n)


def _write(session: Session, pairs: list[_Pair], now: datetime) -> None:
    u: dict[str, list] = {k: [] for k in ("id", "added", "authors", "expires", "severity", "clear", "notified")}
    h: dict[str, list] = {k: [] for k in ("id", "from", "to", "severity", "actor", "reason")}
    e: dict[str, list] = {k: [] for k in ("event_id", "alert_id", "kind", "payload", "reason", "state", "severity")}
    for p in pairs:
        a = p.alert
        assert a is not None and p.live is not None
        a.evidence_count += sum(p.added.values())
        notified = p.decision is not None and p.decision.notify
        for k, v in (("id", a.id), ("added", sum(p.added.values())), ("authors", a.distinct_authors),
                     ("expires", a.expires_at), ("severity", a.severity),
                     ("clear", p.opening or p.live.weighted_count + _EPS >= p.rule.resolve_threshold),
                     ("notified", notified)):
            u[k].append(v)
        if p.opening or p.changed_severity:
            for k, v in (("id", a.id), ("from", None if p.opening else a.state), ("to", a.state),
                         ("severity", a.severity), ("actor", f"rule:{p.rule.name}"), ("reason", p.reason)):
                h[k].append(v)
        if notified:
            assert p.decision is not None
            kind = p.decision.kind or p.decision.reason
            event_id = uuid.uuid4()
            zone = {"layer": p.match.layer, "code": p.match.code, "name": p.match.name}
            payload = {**outbox.event_payload(event_id=event_id, kind=kind, reason=p.decision.reason, alert=a,
                                              zone=zone),
                       "evidence_by_source": dict(sorted(p.by_source.items())), "silenced": p.decision.silenced}
            for k, v in (("event_id", str(event_id)), ("alert_id", a.id), ("kind", kind),
                         ("payload", json.dumps(payload)), ("reason", p.decision.reason), ("state", a.state),
                         ("severity", a.severity)):
                e[k].append(v)
            log.info("alert %s notify %s", a.id, p.decision.reason)
    raw.execute(session, sql.WRITE, {"now": now, **{f"u_{k}": v for k, v in u.items()},
                                     **{f"h_{k}": v for k, v in h.items()}, **{f"e_{k}": v for k, v in e.items()}})


def _expire_cached(session: Session, alert_ids: set[int]) -> None:
    """Alerts this call changed with SQL: ORM copies the session already holds must reload."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Alert) and obj.id in alert_ids:
            session.expire(obj)


def observe_many(session: Session, *, signals: Sequence[SignalIn], rules: Sequence[Rule], now: datetime,
                 recorded: bool = False, locked: bool = False) -> list[AlertChange]:
    """Record signals (unless `recorded`: the caller wrote the signals rows) and evaluate each (rule, zone) once.

    `locked`: the caller's own statement took the zone locks (`layers_fed` says which layers)."""
    session.flush()
    by_key = pairs_of(signals, rules)
    zones = sorted({zone_id for _, zone_id in by_key})
    cols = {} if recorded else _signal_columns(signals)
    if cols.get("zone_id"):
        raw.execute(session, sql.INSERT_SIGNALS_AND_LOCK, {**cols, "lock_class": ZONE_LOCK, "lock_zones": zones})
    elif zones and not locked:
        raw.execute(session, sql.LOCK, {"lock_class": ZONE_LOCK, "lock_zones": zones})
    if not by_key:
        return []
    return _evaluate(session, list(by_key.values()), now)


def _evaluate(session: Session, pairs: list[_Pair], now: datetime, *, retry: bool = True) -> list[AlertChange]:
    silences = _read(session, pairs, now)
    active: list[_Pair] = []
    for p in pairs:
        if p.alert is None:
            if _decide_open(session, p, now):
                active.append(p)
        else:
            _decide_update(p, now)
            active.append(p)
    opening = [p for p in active if p.opening]
    lost = _open_alerts(session, opening, now)
    if lost:  # another writer opened these first (not through observe, which holds the zone lock)
        active = [p for p in active if p not in lost]
    for p in active:
        if p.opening:
            p.decision = decide(_view(p), [], silences, p.rule, now)  # new: nothing sent yet
        elif p.changed_severity:
            p.decision = decide(_view(p), p.log_rows, silences, p.rule, now)
    notifying = [p for p in active if p.decision is not None and p.decision.notify]
    changes: list[AlertChange] = []
    if active:
        _link_evidence(session, active, notifying, now)
        _write(session, active, now)
        _expire_cached(session, {p.alert.id for p in active if p.alert is not None})
        for p in active:
            assert p.alert is not None
            if p.opening:
                log.info("alert %s opened rule=%s zone=%s/%s", p.alert.id, p.rule.name, p.match.layer, p.match.code)
                changes.append(AlertChange(p.alert.id, "opened", p.rule.name, p.match.code, p.alert.severity))
            elif p.changed_severity:
                changes.append(AlertChange(p.alert.id, "updated", p.rule.name, p.match.code, p.alert.severity))
    if lost and retry:
        changes += _evaluate(session, [replace(p, alert=None, opening=False, seq=None) for p in lost], now,
                             retry=False)
    return changes
