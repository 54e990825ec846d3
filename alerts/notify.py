"""Does this alert need a notification now? A pure function of the alert, its notify log, silences and `now`.

Alertmanager's gaps, closed here: the repeat interval is exact (never rounded to a group
interval), acknowledgement is a state of its own, a silenced alert still sends "resolved" when it
was announced before (configurable per rule), and resolution has its own threshold (evaluate.py).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.evaluate import severity_rank
from alerts.events import KIND_FOR_REASON, EventKind
from alerts.rules import Rule

MATCHER_KEYS = ("layer", "zone", "category", "rule")


@dataclass(frozen=True)
class AlertView:
    id: int
    rule: str
    layer: str
    zone: str  # zone code
    category: str
    state: str
    severity: str

    @property
    def labels(self) -> dict[str, str]:
        return {"layer": self.layer, "zone": self.zone, "category": self.category, "rule": self.rule}


@dataclass(frozen=True)
class Sent:
    """One entry of an alert's notification log."""

    at: datetime
    reason: str
    state: str
    severity: str


@dataclass(frozen=True)
class SilenceView:
    matchers: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Every matcher equals the alert's label; an empty matcher set matches nothing."""
        return bool(self.matchers) and all(labels.get(k) == v for k, v in self.matchers.items())


@dataclass(frozen=True)
class Decision:
    notify: bool
    reason: str
    silenced: bool = False

    @property
    def kind(self) -> EventKind | None:
        """The event a notifying decision writes (every reason `decide` notifies for has one)."""
        return KIND_FOR_REASON[self.reason] if self.notify else None


def is_silenced(alert: AlertView, silences: Sequence[SilenceView], now: datetime) -> bool:
    return any(s.active(now) and s.matches(alert.labels) for s in silences)


def decide(alert: AlertView, log: Sequence[Sent], silences: Sequence[SilenceView], rule: Rule | None,
           now: datetime) -> Decision:
    """Whether to notify now, and why (or why not). `log` is oldest first; `rule` None means it was removed."""
    silenced = is_silenced(alert, silences, now)
    last = log[-1] if log else None
    reasons_sent = {n.reason for n in log}

    if alert.state == "resolved":
        if "resolved" in reasons_sent:
            return Decision(False, "already_sent", silenced)
        if last is None:
            return Decision(False, "never_notified", silenced)  # nobody heard of it: nothing to take back
        send_when_silenced = rule.send_resolved_when_silenced if rule else True
        if silenced and not send_when_silenced:
            return Decision(False, "silenced", True)
        return Decision(True, "resolved", silenced)

    if silenced:
        return Decision(False, "silenced", True)
    if alert.state == "acknowledged" and "acknowledged" not in reasons_sent:
        return Decision(True, "acknowledged")
    if last is None:
        return Decision(True, "first_notification")

    rank, last_rank = severity_rank(alert.severity), severity_rank(last.severity)
    if rank > last_rank:
        return Decision(True, "severity_raised")
    if rank < last_rank and rule is not None and rule.notify_on_lower:
        return Decision(True, "severity_lowered")
    if (rule is not None and rule.repeat_interval_s is not None and alert.state == "open"
            and now - last.at >= timedelta(seconds=rule.repeat_interval_s)):
        return Decision(True, "repeat_interval_elapsed")
    return Decision(False, "up_to_date")
