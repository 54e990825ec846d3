"""Threshold rules: YAML in, validated Rule objects out."""

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.errors import RuleError

SEVERITIES = ("minor", "major", "critical")
SOURCES = ("post", "utility_report")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration_s(value: object) -> float:
    """Seconds from 600, '600', '10m', '2h' or '1d'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"duration {value!r} is not like 30s, 10m, 2h or 1d")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


_DURATIONS = ("window", "expire_after", "quiet_period", "cooldown", "repeat_interval", "escalate_after")


class Condition(BaseModel):
    """A test on one attribute of a signal (e.g. a utility report's customers_affected)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None
    eq: str | float | bool | None = None
    in_: tuple[str | float, ...] | None = Field(default=None, alias="in")

    @model_validator(mode="after")
    def _some_test(self) -> "Condition":
        if all(v is None for v in (self.gte, self.gt, self.lte, self.lt, self.eq, self.in_)):
            raise ValueError("a condition needs at least one of gte, gt, lte, lt, eq, in")
        return self

    def holds(self, value: Any) -> bool:
        """Whether `value` passes every test; a missing (None) value never does."""
        if value is None:
            return False
        if self.eq is not None and value != self.eq:
            return False
        if self.in_ is not None and value not in self.in_:
            return False
        bounds = ((self.gte, lambda v, b: v >= b), (self.gt, lambda v, b: v > b),
                  (self.lte, lambda v, b: v <= b), (self.lt, lambda v, b: v < b))
        for bound, test in bounds:
            if bound is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not test(value, bound):
                return False
        return True


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    description: str = ""
    categories: tuple[str, ...] = Field(min_length=1)
    sources: tuple[Literal["post", "utility_report"], ...] = SOURCES
    layer: str
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    # Signals whose location covers less than this share of a zone do not count there.
    min_zone_weight: float = Field(default=0.5, ge=0, le=1)
    immediate: bool = False
    window_s: float = Field(default=600, gt=0)
    min_count: float = Field(default=1, gt=0)
    min_distinct_authors: int = Field(default=1, ge=1)
    severity: Literal["minor", "major", "critical"] = "major"
    # Severity by weighted count: {minor: 3, major: 7, critical: 15}; the highest rung reached wins.
    ladder: dict[Literal["minor", "major", "critical"], float] | None = None
    # Immediate rules only: every condition must hold on the signal's attributes.
    conditions: dict[str, Condition] = Field(default_factory=dict)
    # Spike rules: fire when the count reaches max(min_count, spike_factor x the zone's baseline for the window).
    spike_factor: float | None = Field(default=None, gt=1)
    # Hysteresis: resolve once the count stays below resolve_below for quiet_period_s (default: below min_count).
    resolve_below: float | None = Field(default=None, gt=0)
    quiet_period_s: float = Field(default=600, ge=0)
    cooldown_s: float = Field(default=0, ge=0)
    expire_after_s: float = Field(default=6 * 3600, gt=0)
    # Notifications: repeat while open and unacknowledged; escalation ticks while unacknowledged.
    repeat_interval_s: float | None = Field(default=4 * 3600, gt=0)
    escalate_after_s: float | None = Field(default=None, gt=0)
    notify_on_lower: bool = False
    send_resolved_when_silenced: bool = True
    # One incident, one alert: rules firing for the same incident category in the same zone share an alert.
    incident: str | None = Field(default=None, min_length=1, max_length=32)

    @field_validator("window_s", "expire_after_s", "quiet_period_s", "cooldown_s", "repeat_interval_s",
                     "escalate_after_s", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float | None:
        return None if v is None else parse_duration_s(v)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            for short in _DURATIONS:
                if short in data:
                    data[f"{short}_s"] = data.pop(short)
            if data.get("ladder") and "min_count" not in data and isinstance(data["ladder"], dict):
                rungs = [v for v in data["ladder"].values() if isinstance(v, (int, float))]
                if rungs:
                    data["min_count"] = min(rungs)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        if self.ladder is not None:
            if not self.ladder:
                raise ValueError("ladder needs at least one rung, e.g. {minor: 3, major: 7}")
            ordered = [self.ladder[s] for s in SEVERITIES if s in self.ladder]
            if ordered != sorted(ordered) or len(set(ordered)) != len(ordered):
                raise ValueError(f"ladder {dict(self.ladder)} must rise strictly from minor to critical")
            if any(v <= 0 for v in ordered):
                raise ValueError(f"ladder {dict(self.ladder)} rungs must be positive")
        if self.conditions and not self.immediate:
            raise ValueError("conditions apply only to immediate rules (set immediate: true)")
        if self.immediate and (self.ladder is not None or self.spike_factor is not None):
            raise ValueError("an immediate rule fires on one signal; it takes no ladder or spike_factor")
        if self.incident is not None and self.incident not in self.categories:
            raise ValueError(f"incident {self.incident!r} must be one of the rule's categories {list(self.categories)}")
        if self.resolve_below is not None and not self.immediate and self.resolve_below > self.min_count:
            raise ValueError(f"resolve_below {self.resolve_below} must not exceed min_count {self.min_count}")
        return self

    @property
    def incident_category(self) -> str:
        """The category its alerts are filed under: the alert key is (zone, this)."""
        return self.incident or self.categories[0]

    @property
    def resolve_threshold(self) -> float:
        """The count below which the alert is quiet: resolve_below, else the opening threshold."""
        if self.resolve_below is not None:
            return self.resolve_below
        # An immediate rule holds while one counted signal remains: a signal counts from min_zone_weight on (a
        # report on a ZIP's polygon counts 0.6 in a zone), so 1.0 resolved a live report after quiet_period.
        return max(self.min_zone_weight, 1e-6) if self.immediate else self.min_count

    @property
    def hysteresis_window_s(self) -> float:
        """Immediate rules keep their evidence alive until it expires (or is retired), not for a window."""
        return self.expire_after_s if self.immediate else self.window_s

    def matches(self, *, category: str, source: str, confidence: float) -> bool:
        return category in self.categories and source in self.sources and confidence >= self.min_confidence


def parse_rules(document: object, *, origin: str = "<rules>") -> list[Rule]:
    """Validate a parsed YAML document; errors name the rule and the field."""
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise RuleError(f"{origin}: expected a mapping with a 'rules' list")
    rules: list[Rule] = []
    names: set[str] = set()
    for i, item in enumerate(document["rules"]):
        label = item.get("name", f"#{i}") if isinstance(item, dict) else f"#{i}"
        try:
            rule = Rule.model_validate(item)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(rule)'}: {e['msg']}" for e in exc.errors()
            )
            raise RuleError(f"{origin}: rule {label!r}: {problems}") from exc
        if rule.name in names:
            raise RuleError(f"{origin}: rule {rule.name!r} is defined twice")
        names.add(rule.name)
        rules.append(rule)
    return rules


def load_rules(path: str | Path) -> list[Rule]:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise RuleError(f"rules file {str(path)!r} does not exist") from exc
    except yaml.YAMLError as exc:
        raise RuleError(f"rules file {str(path)!r} is not valid YAML: {exc}") from exc
    return parse_rules(document, origin=str(path))
