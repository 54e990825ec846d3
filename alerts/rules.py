"""Threshold rules: YAML in, validated Rule objects out."""

import re
from pathlib import Path
from typing import Literal

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
    expire_after_s: float = Field(default=6 * 3600, gt=0)

    @field_validator("window_s", "expire_after_s", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration_s(v)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            for short, full in (("window", "window_s"), ("expire_after", "expire_after_s")):
                if short in data:
                    data[full] = data.pop(short)
        return data

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
