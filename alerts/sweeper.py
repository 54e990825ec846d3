"""The sweeper: resolve alerts on hysteresis or expiry, send due repeats, emit escalation ticks, fold baselines.

The worker runs a `Schedule` pass every few seconds with `now`; tests call it (or `sweep`) with chosen times
and never sleep. A pass sweeps only the alerts that can be due (`Schedule`), a full pass now and then.
Alerts are claimed with SKIP LOCKED, so several workers can sweep at once without doing anything twice.
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from alerts import baselines, outbox
from accounts import sessions
from alerts import service as alert_service
from alerts.evaluate import (
    WindowStats, escalation_ticks_due, incident_hysteresis, incident_severity, severity_rank, sweep_due,
)
from alerts.events import ESCALATION_REASON, EventKind, Tick
from alerts.lifecycle import UNRESOLVED, AlertState
from alerts.models import Alert
from alerts.notify import SilenceView, is_silenced
from alerts.rules import Rule
from alerts.silences import active_silences
from alerts.queries import zone_refs
from db.outage import Outage, run_passes

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    swept: int = 0
    resolved: list[int] = field(default_factory=list)
    notified: list[tuple[int, str]] = field(default_factory=list)  # (alert id, reason)
    escalation_ticks: list[int] = field(default_factory=list)
    baseline_hours: int = 0
    last_id: int | None = None  # the highest alert id this call swept; None when it found none
    # Each alert swept and left unresolved: when a sweep of it can next do anything (evaluate.sweep_due)
    due: dict[int, datetime | None] = field(default_factory=dict)
    skipped: int = 0  # a Schedule pass: unresolved alerts it left alone, nothing being due
    full: bool = False  # a Schedule pass that swept every alert

    def add(self, other: "SweepResult") -> None:
        self.swept += other.swept
        self.resolved += other.resolved
        self.notified += other.notified
        self.escalation_ticks += other.escalation_ticks
        self.baseline_hours += other.baseline_hours
        self.due.update(other.due)
        self.last_id = other.last_id if other.last_id is not None else self.last_id


SWEEP_CHUNK = 100  # alerts per transaction of a pass: their row locks are held for one chunk, not the pass


def _once_a_pass(session: Session, *, now: datetime) -> int:
    """What a pass does once, whatever it sweeps: fold the past hours into the spike baselines (returns how
    many), and purge ended operator sessions, so that their table stays small."""
    hours = baselines.fold_hours(session, now=now)
    sessions.purge_ended(session, now=now)
    return hours


def sweep(session: Session, *, rules: Sequence[Rule], now: datetime, limit: int = 500, after_id: int = 0,
          fold_baselines: bool = True, ids: Sequence[int] | None = None,
          silences: list[SilenceView] | None = None) -> SweepResult:
    """Sweep unresolved alerts with ids above `after_id` (at most `limit`, oldest first; only those of `ids`
    when given) in the caller's transaction. Alerts locked by someone else (rule evaluation) are skipped
    until the next pass. `silences`: those in force at `now`, when the caller has read them."""
    result = SweepResult(baseline_hours=_once_a_pass(session, now=now) if fold_baselines else 0)
    if ids is not None and not ids:
        return result
    which = select(Alert).where(Alert.state.in_(UNRESOLVED), Alert.id > after_id)
    if ids is not None:
        which = which.where(Alert.id.in_(list(ids)))
    alerts = session.scalars(which.order_by(Alert.id).limit(limit).with_for_update(skip_locked=True)).all()
    if not alerts:  # the end of a pass: nothing more to read
        return result
    result.last_id = alerts[-1].id
    by_name = {r.name: r for r in rules}
    if silences is None:
        silences = active_silences(session, now=now)
    zones = zone_refs(session, sorted({a.zone_id for a in alerts}))
    logs = alert_service.notification_logs(session, [a.id for a in alerts])
    # One incident, one alert: every rule that fired for it holds it open (alerts.observe).
    fired = alert_service.rules_fired(session, [a.id for a in alerts])
    held = {a.id: [by_name[n] for n in {a.rule: None, **fired.get(a.id, {})} if n in by_name] for a in alerts}
    # Every live window in one statement: hundreds of unresolved alerts must not cost a round trip each.
    items = [(a.id, r) for a in alerts for r in held[a.id]]
    stats = alert_service.window_stats_many(
        session, [(r, a.zone_id, r.hysteresis_window_s) for a in alerts for r in held[a.id]], now)
    windows: dict[int, list[tuple[Rule, WindowStats]]] = {}
    for (alert_id, r), live in zip(items, stats):
        windows.setdefault(alert_id, []).append((r, live))
    for alert in alerts:
        result.swept += 1
        due = _sweep_one(session, alert=alert, rule=by_name.get(alert.rule), silences=silences, now=now,
                         result=result, zone=zones[alert.zone_id], log_rows=logs.get(alert.id, []),
                         windows=windows.get(alert.id, []), fired=fired.get(alert.id, {}))
        if alert.id not in result.resolved:
            result.due[alert.id] = due
    return result


def _sweep_one(session: Session, *, alert: Alert, rule: Rule | None, silences: list, now: datetime,
               result: SweepResult, zone: dict[str, str], log_rows: list,
               windows: list[tuple[Rule, WindowStats]], fired: dict[str, str]) -> datetime | None:
    """`windows`: each rule on the alert (the leading `rule` and every other that fired) with its window;
    `fired`: every rule that fired for it (rule -> severity), for its events. Returns when a sweep of it can
    next do anything (evaluate.sweep_due; None: only a change can, or it resolved)."""
    if alert.expires_at is not None and now >= alert.expires_at:
        alert_service.close(session, alert=alert, rule=rule, actor="sweeper", now=now,
                            reason=f"expired: no new evidence since {alert.last_evidence_at.isoformat()}")
        result.resolved.append(alert.id)
        return None
    live = [(r, w.weighted_count) for r, w in windows]
    if live:
        step = incident_hysteresis(live, quiet_since=alert.quiet_since, now=now)
        if step.resolve:
            assert step.quiet_since is not None
            counts = ", ".join(f"{w:g} below {r.resolve_threshold:g}" + (f" ({r.name})" if len(live) > 1 else "")
                               for r, w in live)
            alert_service.close(session, alert=alert, rule=rule, actor="sweeper", now=now,
                                reason=f"quiet: weighted count {counts} since {step.quiet_since.isoformat()}")
            result.resolved.append(alert.id)
            return None
        alert.quiet_since = step.quiet_since
        if any(r.ladder and not r.immediate for r, _ in live):
            _follow_ladder_down(session, alert=alert, live=live, now=now)
    decision = alert_service.notify(session, alert=alert, rule=rule, zone=zone, now=now, silences=silences,
                                    log_rows=log_rows)
    if decision.notify:
        result.notified.append((alert.id, decision.reason))
    if rule is not None and alert.state == AlertState.OPEN and not is_silenced(
            alert_service.alert_view(alert, zone), silences, now) and alert.last_notified_at is not None:
        _escalate(session, alert=alert, rule=rule, zone=zone, fired=fired, now=now, result=result)
    return sweep_due(expires_at=alert.expires_at, live=windows, quiet_since=alert.quiet_since, state=alert.state,
                     rule=rule, last_notified=now if decision.notify else log_rows[-1].at if log_rows else None,
                     opened_at=alert.opened_at, escalation_ticks=alert.escalation_ticks)


def _follow_ladder_down(session: Session, *, alert: Alert, live: list[tuple[Rule, float]], now: datetime) -> None:
    """Lower the severity when the counts fall to a lower rung (still above the resolve threshold); a rule
    without a ladder on the same alert holds it at that rule's severity."""
    rung = incident_severity(live)
    if severity_rank(rung) >= severity_rank(alert.severity):
        return
    alert.severity = rung
    alert.updated_at = now
    why = ", ".join(f"{w:g} in {r.window_s:g}s" + (f" ({r.name})" if len(live) > 1 else "") for r, w in live)
    alert_service.record_change(session, alert=alert, from_state=alert.state, actor="sweeper", now=now,
                                reason=f"severity lowered: weighted count {why}")


def _escalate(session: Session, *, alert: Alert, rule: Rule, zone: dict[str, str], fired: dict[str, str],
              now: datetime, result: SweepResult) -> None:
    """One escalation_tick event per elapsed escalate_after period while unacknowledged and not silenced (the
    caller checks both); dispatch pages the tier. It carries every field the other events do."""
    due = escalation_ticks_due(rule, opened_at=alert.opened_at, now=now)
    if due <= alert.escalation_ticks:
        return
    if rule.escalate_after_s is None:  # escalation_ticks_due is 0 without it; this tells the type checker
        return
    alert.escalation_ticks = due
    tick = Tick(tick=due, escalate_after_s=rule.escalate_after_s,
                minutes_since_open=(now - alert.opened_at).total_seconds() / 60)
    outbox.emit(session, alert=alert, kind=EventKind.ESCALATION_TICK, reason=ESCALATION_REASON, zone=zone, now=now,
                evidence_by_source=alert_service.evidence_by_source(session, alert.id), rules=fired,
                silenced=False, tick=tick)
    result.escalation_ticks.append(alert.id)
    log.info("alert %s escalation tick %s", alert.id, due)


def sweep_pass(factory: sessionmaker[Session], *, rules: Sequence[Rule], now: datetime,
               chunk: int = SWEEP_CHUNK) -> SweepResult:
    """Every unresolved alert, `chunk` at a time in ascending id order, one transaction each.

    A pass used to be one transaction over the oldest 500: while those stayed unresolved, an alert past
    them was never swept (no expiry, no repeat, no escalation tick), and the 500 row locks were held for
    the whole pass, so a report in one of those zones waited for it to end."""
    total = SweepResult()
    after = 0
    while True:
        with factory() as session, session.begin():
            result = sweep(session, rules=rules, now=now, limit=chunk, after_id=after, fold_baselines=after == 0)
        total.add(result)
        if result.last_id is None:
            return total
        after = result.last_id


FULL_EVERY_S = 60.0  # a Schedule sweeps every alert at least this often (the backstop)
_GOLDEN = 0.6180339887498949  # spreads the backstop's moments over ids: consecutive ids land far apart

# Every unresolved alert's row version, and whether a retirement hinted at its zone (taking the hints).
_SCAN = text("""
    WITH hinted AS (DELETE FROM alert_sweep_hints RETURNING zone_id)
    SELECT a.id, a.xmin::text::bigint AS version, a.zone_id IN (SELECT zone_id FROM hinted) AS hinted
    FROM alerts a WHERE a.state IN (""" + ", ".join(f"'{state.value}'" for state in UNRESOLVED) + """)
""")
_VERSIONS = text("SELECT id, xmin::text::bigint FROM alerts WHERE id = ANY(:ids)")


class Schedule:
    """Sweep passes that sweep only the alerts that can be due, in one worker.

    Sweeping an alert costs about 70 µs (its windows, log and decisions), and a pass used to sweep every
    unresolved alert every 5 s: with thousands open, the sweeper was a tenth of a core when nothing
    happened. Now each swept alert's next due time is kept in memory (evaluate.sweep_due) with its row
    version (`xmin`), and a pass sweeps an alert when
    - its due time has come, or
    - its row changed (new evidence, an acknowledgement, a notification: every writer's change is a new
      row version, this sweeper's own included, read back after its changes), or
    - its zone's counts fell without its row changing (`alert_sweep_hints`, left by retire_evidence), or
    - it is new to this worker, or a sweep skipped it (locked by a writer);
    and every alert when the rules or the silences in force changed. The backstop, for whatever changes a
    count without any of these (a late post older than its alert, stored without joining it), as the 5 s
    passes were for a count that rose and fell between two of them: each alert is swept again at most
    FULL_EVERY_S after its last sweep, at 75-100% of it by its id, so that the alerts of one full pass (a
    start, a rules reload) come back spread over a quarter of it rather than all in one pass.

    The in-memory state is only ever a reason to skip: a new worker or a restart sweeps everything once."""

    def __init__(self, factory: sessionmaker[Session], *, full_every_s: float = FULL_EVERY_S,
                 chunk: int = SWEEP_CHUNK) -> None:
        self.factory, self.full_every_s, self.chunk = factory, full_every_s, chunk
        self._known: dict[int, tuple[int, datetime]] = {}  # alert id -> (row version, due)
        self._basis: tuple | None = None  # the rules and the silences in force at the last full pass
        self._last_now: datetime | None = None

    def run_pass(self, *, rules: Sequence[Rule], now: datetime) -> SweepResult:
        rules = tuple(rules)
        with self.factory() as session, session.begin():
            total = SweepResult(baseline_hours=_once_a_pass(session, now=now))
            rows = session.execute(_SCAN).all()
            silences = active_silences(session, now=now)
        basis = (rules, sorted((sorted(v.matchers.items()), v.starts_at, v.ends_at) for v in silences))
        if basis != self._basis or self._last_now is None or now < self._last_now:  # or the clock went back
            self._known.clear()
            self._basis, total.full = basis, True
        self._last_now = now
        unresolved = {row.id for row in rows}
        for gone in self._known.keys() - unresolved:
            del self._known[gone]
        due = [row.id for row in rows if row.hinted or self._due(row.id, row.version, now)]
        total.skipped = len(rows) - len(due)
        for alert_id in due:  # unknown until swept: a pass that fails part way (its hints taken) loses nothing
            self._known.pop(alert_id, None)
        for start in range(0, len(due), self.chunk):
            chunk = due[start:start + self.chunk]
            with self.factory() as session, session.begin():
                result = sweep(session, rules=rules, now=now, limit=len(chunk), ids=chunk, fold_baselines=False,
                               silences=silences)
                session.flush()  # its own changes are new row versions: read them back, under its row locks
                versions = dict(session.execute(_VERSIONS, {"ids": list(result.due)}).all())
            for alert_id, at in result.due.items():  # one skipped (locked) stays unknown: swept next pass
                backstop = now + timedelta(seconds=self.full_every_s * (0.75 + 0.25 * (alert_id * _GOLDEN % 1)))
                self._known[alert_id] = (versions[alert_id], backstop if at is None else min(at, backstop))
            total.add(result)
        return total

    def _due(self, alert_id: int, version: int, now: datetime) -> bool:
        known = self._known.get(alert_id)
        return known is None or known[0] != version or known[1] <= now


def run_forever(factory: sessionmaker[Session], *, rules: Callable[[], Sequence[Rule]],
                clock: Callable[[], datetime], stop: threading.Event, interval_s: float = 5.0,
                heartbeat: Callable[..., object] | None = None,
                observe: Callable[..., object] | None = None) -> None:
    """Sweep every `interval_s` until `stop` (a `Schedule` pass: a transaction per chunk of due alerts).

    A lost database is waited out with backoff (db.outage: one warning per outage, one info on
    recovery); any other error escapes, for the worker's supervisor to log and restart the role.
    `heartbeat(state, error)` is called after each pass, and `observe(seconds, swept=, skipped=, full=)`
    (dispatch.worker_metrics) after each that completes."""
    schedule = Schedule(factory)

    def one_pass() -> None:
        started = time.perf_counter()
        result = schedule.run_pass(rules=rules(), now=clock())
        if observe is not None:
            observe(time.perf_counter() - started, swept=result.swept, skipped=result.skipped, full=result.full)
        if result.resolved or result.notified or result.escalation_ticks:
            log.info("sweep: %d alerts, resolved %s, notified %s, escalation ticks %s", result.swept,
                     result.resolved, [a for a, _ in result.notified], result.escalation_ticks)

    run_passes(one_pass, retry=Outage("sweeper: database", log).retrier("sweeper"), stop=stop, wait_s=interval_s,
               heartbeat=heartbeat)
