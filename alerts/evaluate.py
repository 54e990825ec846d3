"""Pure rule evaluation: window statistics in, severity (or nothing) out; hysteresis and cooldown steps."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.rules import SEVERITIES, Rule

EPS = 1e-9  # weights are floats: 0.1 * 10 must reach a threshold of 1


@dataclass(frozen=True)
class WindowStats:
    weighted_count: float  # sum of the signals' zone weights in the window
    distinct_authors: int
    count: int  # raw number of signals
    oldest: datetime | None = None  # the oldest counted signal's time (the sweeper's windows only)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def threshold(rule: Rule, *, baseline: float = 0.0) -> float:
    """The weighted count that fires the rule; spike rules scale with the zone's baseline for the window."""
    if rule.spike_factor is not None:
        return max(rule.min_count, rule.spike_factor * baseline)
    return rule.min_count


def ladder_severity(rule: Rule, weighted_count: float) -> str:
    """The highest ladder rung the count reaches (the rule's severity when it has no ladder or none is reached)."""
    if not rule.ladder:
        return rule.severity
    reached = [s for s in SEVERITIES if s in rule.ladder and weighted_count + EPS >= rule.ladder[s]]
    return reached[-1] if reached else min(rule.ladder, key=severity_rank)


def conditions_hold(rule: Rule, attributes: Mapping[str, Any]) -> bool:
    return all(cond.holds(attributes.get(name)) for name, cond in rule.conditions.items())


def evaluate(rule: Rule, stats: WindowStats, *, baseline: float = 0.0,
             attributes: Mapping[str, Any] | None = None) -> str | None:
    """The severity the rule raises for these statistics, or None when it does not fire.

    `baseline` is the zone's expected weighted count for one window of this rule (spike rules only);
    `attributes` are the triggering signal's (immediate rules with conditions only).
    """
    if rule.immediate:
        if stats.count < 1 or not conditions_hold(rule, attributes or {}):
            return None
        return rule.severity
    if stats.weighted_count + EPS < threshold(rule, baseline=baseline):
        return None
    if stats.distinct_authors < rule.min_distinct_authors:
        return None
    return ladder_severity(rule, stats.weighted_count)


@dataclass(frozen=True)
class QuietStep:
    resolve: bool
    quiet_since: datetime | None


def hysteresis(rule: Rule, *, weighted_count: float, quiet_since: datetime | None, now: datetime) -> QuietStep:
    """Resolve only after the count has stayed below the resolve threshold for the whole quiet period.

    `quiet_since` is when the count was first seen below it (None while it is not); evidence
    bringing the count back up clears it, so the quiet period starts again.
    """
    if weighted_count + EPS >= rule.resolve_threshold:
        return QuietStep(resolve=False, quiet_since=None)
    since = quiet_since or now
    return QuietStep(resolve=now - since >= timedelta(seconds=rule.quiet_period_s), quiet_since=since)


def in_cooldown(cooldown_until: datetime | None, now: datetime) -> bool:
    """Whether a rule may not re-open in a zone yet (the last alert there resolved too recently)."""
    return cooldown_until is not None and now < cooldown_until


def escalation_ticks_due(rule: Rule, *, opened_at: datetime, now: datetime) -> int:
    """How many escalate_after periods have fully elapsed since the alert opened (0 without escalation)."""
    if rule.escalate_after_s is None:
        return 0
    return int(max((now - opened_at).total_seconds(), 0.0) // rule.escalate_after_s)


def incident_hysteresis(counts: Sequence[tuple[Rule, float]], *, quiet_since: datetime | None,
                        now: datetime) -> QuietStep:
    """An alert that several rules fired for resolves once every one of them has stayed below its resolve
    threshold for the longest of their quiet periods (one rule: `hysteresis` exactly)."""
    if not counts or any(w + EPS >= rule.resolve_threshold for rule, w in counts):
        return QuietStep(resolve=False, quiet_since=None)
    since = quiet_since or now
    period = max(rule.quiet_period_s for rule, _ in counts)
    return QuietStep(resolve=now - since >= timedelta(seconds=period), quiet_since=since)


def incident_severity(counts: Sequence[tuple[Rule, float]]) -> str:
    """The severity the rules on an alert hold it at: a ladder rule its rung for the count, any other rule its
    severity (only ladders come down)."""
    return max((ladder_severity(rule, w) if rule.ladder and not rule.immediate else rule.severity
                for rule, w in counts), key=severity_rank)


def sweep_due(*, expires_at: datetime | None, live: Sequence[tuple[Rule, WindowStats]],
              quiet_since: datetime | None, state: str, rule: Rule | None, last_notified: datetime | None,
              opened_at: datetime, escalation_ticks: int) -> datetime | None:
    """The earliest time a sweep of this alert, just swept, can do anything, as long as nothing it reads
    changes meanwhile (its row, its rules, the signals in its windows, the silences in force); None when
    only such a change can make it do something.

    Each is a moment a sweep's decision turns on: the expiry; the oldest counted signal leaving each live
    window (the count falls: quiet, or a lower rung); the end of the quiet period; the next repeat; the next
    escalation tick."""
    times = [expires_at] if expires_at is not None else []
    times += [s.oldest + timedelta(seconds=r.hysteresis_window_s) for r, s in live if s.oldest is not None]
    if quiet_since is not None and live:
        times.append(quiet_since + timedelta(seconds=max(r.quiet_period_s for r, _ in live)))
    if state == "open" and rule is not None:
        if rule.repeat_interval_s is not None and last_notified is not None:
            times.append(last_notified + timedelta(seconds=rule.repeat_interval_s))
        if rule.escalate_after_s is not None:
            times.append(opened_at + timedelta(seconds=rule.escalate_after_s * (escalation_ticks + 1)))
    return min(times, default=None)
