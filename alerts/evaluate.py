"""Pure rule evaluation: window statistics in, severity (or nothing) out."""

from dataclasses import dataclass

from alerts.rules import SEVERITIES, Rule


@dataclass(frozen=True)
class WindowStats:
    weighted_count: float  # sum of the signals' zone weights in the window
    distinct_authors: int
    count: int  # raw number of signals


def evaluate(rule: Rule, stats: WindowStats) -> str | None:
    """The severity the rule raises for these statistics, or None when it does not fire."""
    if rule.immediate:
        return rule.severity if stats.count >= 1 else None
    if stats.weighted_count + 1e-9 >= rule.min_count and stats.distinct_authors >= rule.min_distinct_authors:
        return rule.severity
    return None


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)
