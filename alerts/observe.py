"""Rule evaluation for a batch of signals in a fixed handful of statements, whatever the batch size.

One utility report and a 10,000-post batch take the same path (a database round trip costs far more
than the Python between them, so statements are counted, not (rule, zone) pairs):

1. (before `evaluate`) record the signals and lock their zones (an advisory lock per zone, in zone
   order, held to commit): alerts.signals, in a statement of its own (`observe_many`) or in the caller's;
2. read, for every (rule, zone) pair, the window counts, the unresolved alert (row-locked), the
   cooldown, an ack-code number and an alert id where the pair may open, the notification log, and
   the active silences;
3. decide in Python (alerts.evaluate, `notify.decide`: pure);
4. open the new alerts (one INSERT, with the ids step 2 drew);
5. link evidence (one INSERT), which also returns the evidence counted by source;
6. write alert updates, history, outbox events and notification-log rows (one statement).
When a batch's only changes are alerts opened by immediate rules, 4-6 are one statement (OPEN_AND_WRITE).
Steps 4-6 are alerts.observe_write.

The zone lock makes a second worker wait and then count the first one's signals too, so two
concurrent writers never both miss each other's evidence; reads start after it, in statements of their own.
"""

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import orjson
from sqlalchemy.orm import Session

from alerts import ackcodes
from alerts import observe_write as writes
from alerts import observe_sql as sql
from alerts.baselines import window_baseline
from alerts.slices import event_slices
from alerts.events import AlertRow
from alerts.incidents import AlertChange, Incident, Pair, incidents_of, pairs_of
from alerts.evaluate import EPS, WindowStats, in_cooldown, severity_rank
from alerts.evaluate import evaluate as evaluate_rule
from alerts.notify import AlertView, Sent, SilenceView, decide
from alerts.rules import Rule
from alerts.signals import SignalIn, record_and_lock
from db import raw

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- 2. read every pair's state in one statement

def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _read(session: Session, incidents: list[Incident], now: datetime) -> list[SilenceView]:
    """Fill each pair's live window, cooldown and ack-code sequence, and each incident's unresolved alert (with
    the rules on it) and log; returns the active silences."""
    pairs = [p for inc in incidents for p in inc.pairs]
    of_pair = [inc for inc in incidents for _ in inc.pairs]
    rules = {id(p.rule): p.rule for p in pairs}
    index = {key: i for i, key in enumerate(rules)}
    rule_rows = [{
        "ri": index[key], "name": r.name, "incident": r.incident_category, "categories": list(r.categories),
        "sources": list(r.sources), "min_confidence": r.min_confidence, "min_weight": r.min_zone_weight,
        "since": (now - timedelta(seconds=r.hysteresis_window_s)).isoformat(),
        # A pair can only open when this much is in the window (no threshold is below min_count).
        "open_count": 0.0 if r.immediate else r.min_count,
        "open_authors": 0 if r.immediate else r.min_distinct_authors,
    } for key, r in rules.items()]
    rows = raw.execute(session, sql.READ, {
        "rules": orjson.dumps(rule_rows).decode(), "pi": list(range(len(pairs))),
        "pri": [index[id(p.rule)] for p in pairs], "pzone": [p.match.zone_id for p in pairs], "now": now,
    }).fetchall()
    silences: list[SilenceView] = []
    for row in rows:
        p, inc = pairs[row.pi], of_pair[row.pi]
        p.live = WindowStats(weighted_count=float(row.w), distinct_authors=int(row.authors), count=int(row.n))
        p.cooldown_until, p.seq, p.new_id = row.cooldown_until, row.seq, row.new_id
        if row.id is not None and inc.alert is None:
            fired = {name: severity for name, severity in row.alert_rules or ()} or {row.rule: row.severity}
            inc.alert = AlertRow(id=row.id, rule=row.rule, category=row.category, severity=row.severity,
                                 state=row.state, ack_code=row.ack_code, evidence_count=row.evidence_count,
                                 distinct_authors=row.distinct_authors, opened_at=row.opened_at,
                                 updated_at=row.updated_at, expires_at=row.expires_at,
                                 quiet_since=row.quiet_since, rules=fired)
            inc.log_rows = [Sent(_ts(at), reason, state, severity) for at, reason, state, severity in row.log or ()]
        silences = [SilenceView(m, _ts(a), _ts(b)) for m, a, b in row.silences or ()]
    return silences


# ---------------------------------------------------------------- 3. decide (pure)

def _view(inc: Incident) -> AlertView:
    a = inc.alert
    assert a is not None
    return AlertView(id=a.id, rule=a.rule, layer=inc.match.layer, zone=inc.match.code, category=a.category,
                     state=a.state, severity=a.severity)


def _why_opened(rule: Rule, stats: WindowStats, baseline: float) -> str:
    if rule.immediate:
        return "immediate rule: one matching signal"
    why = (f"threshold reached: weighted count {stats.weighted_count:g} from {stats.distinct_authors} authors "
           f"in {rule.window_s:g}s")
    return why + (f" (baseline {baseline:.2f} per window)" if rule.spike_factor else "")


def _fires(session: Session, p: Pair) -> tuple[str | None, str]:
    """The severity the pair's rule raises on this batch (None: it does not fire), and why."""
    rule, live = p.rule, p.live
    assert live is not None
    ids = p.observation_ids
    stats = WindowStats(p.match.weight * len(ids), 1, len(ids)) if rule.immediate else live
    baseline = (window_baseline(session, zone_id=p.match.zone_id, categories=rule.categories,
                                window_s=rule.window_s) if rule.spike_factor else 0.0)
    zone_attributes = p.feeding[-1].attributes_in(p.match.zone_id)
    return evaluate_rule(rule, stats, baseline=baseline, attributes=zone_attributes), _why_opened(rule, stats, baseline)


def _most_severe(pairs: list[Pair]) -> Pair:
    """The first pair with the highest severity: it leads the alert."""
    return max(pairs, key=lambda p: severity_rank(p.fires or "minor"))


def _decide_open(session: Session, inc: Incident, now: datetime) -> bool:
    """Whether the incident opens an alert: one, whichever of its rules fire; severity the highest of them."""
    why: dict[int, str] = {}
    for p in inc.pairs:
        if p.seq is None:  # the read saw the window below min_count or min_distinct_authors: no threshold is lower
            continue
        severity, why[id(p)] = _fires(session, p)
        if severity is not None and not in_cooldown(p.cooldown_until, now):
            p.fires = severity
    firing = [p for p in inc.pairs if p.fires is not None]
    if not firing:
        return False
    lead = _most_severe(firing)
    assert lead.seq is not None and lead.new_id is not None and lead.live is not None
    inc.alert = AlertRow(id=lead.new_id, rule=lead.rule.name, category=inc.category, severity=lead.fires or "minor",
                         state="open", ack_code=ackcodes.new_ack_code(lead.seq), evidence_count=0,
                         distinct_authors=max(p.live.distinct_authors for p in firing if p.live), opened_at=now,
                         updated_at=now, expires_at=max(now + timedelta(seconds=p.rule.expire_after_s)
                                                        for p in firing),
                         quiet_since=None,  # rules fired together are listed by name, as alert_rules orders them
                         rules={p.rule.name: p.fires or "minor" for p in sorted(firing, key=lambda p: p.rule.name)})
    inc.lead, inc.active, inc.joined, inc.opening = lead.rule, firing, firing, True
    others = [p.rule.name for p in firing if p is not lead]
    inc.reason = why[id(lead)] + (f"; rules also firing: {', '.join(others)}" if others else "")
    return True


def _decide_update(session: Session, inc: Incident, lead: Rule | None, now: datetime, *,
                   event_time: bool = False) -> bool:
    """Evidence for an unresolved alert: rules already on it extend it (as one rule's alert always did), a rule
    firing for the first time joins it, and the severity rises to the highest any of them raises."""
    a = inc.alert
    assert a is not None
    inc.lead = lead
    for p in inc.pairs if event_time else ():
        # A post observed before the alert's incident began (its opening minus the rule's window) is another
        # incident's: stored, but it neither joins nor extends this alert. (A utility report's observed time
        # is when its outage started, which may well precede the alert: it is evaluated at `now`.)
        p.feeding = [s for s in p.feeding
                     if s.observed_at > a.opened_at - timedelta(seconds=p.rule.window_s)]
    for p in sorted((p for p in inc.pairs if p.feeding), key=lambda p: p.rule.name):  # joiners by name
        if p.rule.name in a.rules:
            p.fires = p.rule.severity if p.rule.immediate else evaluate_rule(p.rule, p.live) if p.live else None
            inc.active.append(p)
            continue
        severity, _ = _fires(session, p)
        if severity is not None:  # a rule joins an open incident even in its cooldown: it re-opens nothing
            p.fires = severity
            inc.active.append(p)
            inc.joined.append(p)
            a.rules[p.rule.name] = severity
    if not inc.active:
        return False
    for p in inc.active:
        live = p.live
        assert live is not None
        a.distinct_authors = max(a.distinct_authors, live.distinct_authors)
        expires = now + timedelta(seconds=p.rule.expire_after_s)
        # The longest-lived rule on the alert keeps it: a short-lived rule's evidence never shortens it.
        a.expires_at = expires if a.expires_at is None else max(a.expires_at, expires)
        if live.weighted_count + EPS >= p.rule.resolve_threshold:
            a.quiet_since = None
        if p.fires is not None:
            a.rules[p.rule.name] = p.fires
    a.updated_at = max(a.updated_at, now)  # late evidence never moves a time backwards
    raising = [p for p in inc.active if p.fires is not None and (p.rule.name in {q.rule.name for q in inc.joined}
                                                                  or not p.rule.immediate)]
    if raising:
        top = _most_severe(raising)
        if top.fires is not None and severity_rank(top.fires) > severity_rank(a.severity):
            assert top.live is not None
            a.severity, inc.changed_severity, inc.raised_by = top.fires, True, top.rule.name
            a.rule, inc.lead = top.rule.name, top.rule  # the most severe rule leads
            inc.reason = (f"severity raised: weighted count {top.live.weighted_count:g} in {top.rule.window_s:g}s"
                          if not top.rule.immediate else f"severity raised: rule {top.rule.name} fired")
    return True


def evaluate(session: Session, *, signals: Sequence[SignalIn], rules: Sequence[Rule], now: datetime,
             event_time: bool = False) -> list[AlertChange]:
    """Evaluate each (rule, zone) the signals feed once, each (zone, category) being one alert.

    The signals are recorded and their zones locked already (alerts.signals: `record_and_lock`, `lock`, or
    its fragments in the caller's statement, which also set generic plans, db.plans); `observe_many` does
    all three. `event_time`: evaluate the rules at the signals' own time (`event_slices`), not at `now`, so
    a window holds what it held when the evidence was observed."""
    session.flush()
    by_name = {r.name: r for r in rules}
    if not event_time:
        pairs = pairs_of(signals, rules)
        return _evaluate(session, incidents_of(list(pairs.values())), by_name, now) if pairs else []
    changes: list[AlertChange] = []
    for at, part in event_slices(signals, now):
        pairs = pairs_of(part, rules)
        if pairs:
            changes += _evaluate(session, incidents_of(list(pairs.values())), by_name, at, event_time=True)
    return changes


def observe_many(session: Session, *, signals: Sequence[SignalIn], rules: Sequence[Rule], now: datetime,
                 event_time: bool = False) -> list[AlertChange]:
    """Record the signals, lock their zones (one statement, alerts.signals) and `evaluate` them: for callers
    with no statement of their own to write the signals in. Every zone is locked once, first, in zone order."""
    session.flush()
    record_and_lock(session, signals=signals, rules=rules)
    return evaluate(session, signals=signals, rules=rules, now=now, event_time=event_time)


def _evaluate(session: Session, incidents: list[Incident], by_name: Mapping[str, Rule], now: datetime, *,
              retry: bool = True, event_time: bool = False) -> list[AlertChange]:
    silences = _read(session, incidents, now)
    active: list[Incident] = []
    for inc in incidents:
        if inc.alert is None:
            if _decide_open(session, inc, now):
                active.append(inc)
        elif _decide_update(session, inc, by_name.get(inc.alert.rule), now, event_time=event_time):
            active.append(inc)
    fused = writes.only_immediate_openings(active)
    lost = [] if fused else writes.open_alerts(session, [inc for inc in active if inc.opening], now)
    if lost:  # another writer opened these first (not through observe, which holds the zone lock)
        active = [inc for inc in active if inc not in lost]
    for inc in active:
        if inc.opening:
            inc.decision = decide(_view(inc), [], silences, inc.lead, now)  # new: nothing sent yet
        elif inc.changed_severity:
            inc.decision = decide(_view(inc), inc.log_rows, silences, inc.lead, now)
    changes: list[AlertChange] = []
    if fused:
        written = writes.open_and_write(session, active, now)
        lost = [inc for inc in active if inc.alert is not None and inc.alert.id not in written]
        active = [inc for inc in active if inc not in lost]
    elif active:
        writes.link_evidence(session, active,
                             [inc for inc in active if inc.decision is not None and inc.decision.notify], now)
        writes.write(session, active, now)
    if active:
        writes.expire_cached(session, {inc.alert.id for inc in active if inc.alert is not None})
        for inc in active:
            assert inc.alert is not None
            if inc.opening:
                log.info("alert %s opened rule=%s zone=%s/%s", inc.alert.id, inc.alert.rule, inc.match.layer,
                         inc.match.code)
                changes.append(AlertChange(inc.alert.id, "opened", inc.alert.rule, inc.match.code,
                                           inc.alert.severity, tuple(inc.observation_ids)))
            elif inc.changed_severity or inc.joined:
                changes.append(AlertChange(inc.alert.id, "updated", inc.alert.rule, inc.match.code,
                                           inc.alert.severity, tuple(inc.observation_ids)))
    if lost and retry:
        again = [Incident(inc.match, inc.category, [Pair(p.rule, p.match, p.feeding) for p in inc.pairs])
                 for inc in lost]
        changes += _evaluate(session, again, by_name, now, retry=False, event_time=event_time)
    return changes
