"""Who gets paged for an alert, and when: coverage, on-call hours and tiered escalation. Pure."""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "America/New_York"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

ResponderId = Hashable


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} {value.isoformat()} must be timezone-aware (UTC)")


@dataclass(frozen=True)
class WeeklySchedule:
    """On-call windows per weekday (0 = Monday), in wall-clock time of a named timezone.

    A window (start, end) with end <= start runs past midnight into the next day, so
    ``{4: [(time(22), time(6))]}`` is Friday 22:00 to Saturday 06:00, and (00:00, 00:00) is a
    whole day. Times are compared in local wall-clock time, so a window keeps its local hours
    across daylight-saving changes (06:00 stays 06:00 whether that is 10:00 or 11:00 UTC).
    """

    windows: Mapping[int, tuple[tuple[time, time], ...]]
    timezone: str = DEFAULT_TIMEZONE
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for day, spans in self.windows.items():
            if day not in range(7):
                raise ValueError(f"weekday {day!r} is not in 0..6 (0 = Monday)")
            for span in spans:
                if len(span) != 2 or not all(isinstance(t, time) for t in span):
                    raise ValueError(f"window {span!r} on weekday {day} is not a (start, end) pair of times")
        object.__setattr__(self, "windows", {d: tuple(tuple(s) for s in v) for d, v in self.windows.items()})
        object.__setattr__(self, "_tz", ZoneInfo(self.timezone))

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.windows.items())), self.timezone))

    @classmethod
    def parse(cls, spec: str, *, timezone: str = DEFAULT_TIMEZONE) -> WeeklySchedule:
        """Parse ``"mon-fri 08:00-18:00; sat,sun 22:00-06:00"`` (days, then one or more windows)."""
        windows: dict[int, list[tuple[time, time]]] = {}
        for clause in filter(None, (c.strip() for c in spec.split(";"))):
            days_part, _, spans_part = clause.partition(" ")
            days = _parse_days(days_part, clause)
            spans = [_parse_span(s, clause) for s in re.split(r"[\s,]+", spans_part.strip()) if s]
            if not spans:
                raise ValueError(f"schedule clause {clause!r} has no HH:MM-HH:MM window")
            for d in days:
                windows.setdefault(d, []).extend(spans)
        return cls({d: tuple(v) for d, v in windows.items()}, timezone)

    def is_on_call(self, now: datetime) -> bool:
        """Whether `now` (aware) falls inside a window."""
        _require_aware("now", now)
        local = now.astimezone(self._tz)
        t, today = local.time().replace(tzinfo=None), local.weekday()
        yesterday = (today - 1) % 7
        for start, end in self.windows.get(today, ()):
            if start <= t and (end <= start or t < end):
                return True
        for start, end in self.windows.get(yesterday, ()):
            if end <= start and t < end:  # overnight window started yesterday
                return True
        return False


def _parse_days(text: str, clause: str) -> list[int]:
    days: list[int] = []
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise ValueError(f"schedule clause {clause!r}: {part!r} is not a day or day range like mon-fri")
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        days.extend((a + i) % 7 for i in range((b - a) % 7 + 1))
    return days


def _parse_span(text: str, clause: str) -> tuple[time, time]:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", text)
    if not m:
        raise ValueError(f"schedule clause {clause!r}: {text!r} is not a window like 08:00-18:00")
    h1, m1, h2, m2 = map(int, m.groups())
    if h2 == 24 and m2 == 0:
        h2 = 0  # 24:00 means midnight at the end of the day
    try:
        return time(h1, m1), time(h2, m2)
    except ValueError:
        raise ValueError(f"schedule clause {clause!r}: {text!r} has an impossible time") from None


@dataclass(frozen=True)
class Coverage:
    """One coverage row: a responder covers some zones and/or layers at an escalation tier.

    ``zone_ids`` and ``layers`` restrict what the row covers; None means no restriction on that
    dimension (both None: every alert), an empty set means nothing. With both given, an alert
    must satisfy both. ``on_call`` None means always on call.
    """

    responder_id: ResponderId
    phone: str
    zone_ids: frozenset | None = None
    layers: frozenset | None = None
    tier: int = 1
    on_call: WeeklySchedule | None = None
    opted_out: bool = False

    def __post_init__(self) -> None:
        if self.tier < 1:
            raise ValueError(f"tier {self.tier} for responder {self.responder_id!r} must be >= 1")

    def covers(self, *, zone_id: Hashable, layer: str) -> bool:
        return (self.zone_ids is None or zone_id in self.zone_ids) and (
            self.layers is None or layer in self.layers
        )


def route(
    *,
    zone_id: Hashable,
    layer: str,
    opened_at: datetime,
    acknowledged: bool,
    escalate_after_s: float | None,
    coverage: Iterable[Coverage],
    already_notified: set,
    now: datetime,
    escalations: int = 0,
) -> list:
    """Responders to notify for an alert at `now`, in tier order; empty when nobody is due.

    - A responder is *eligible* when one of their coverage rows covers (zone_id, layer) and is
      on call at `now`. Their tier is the lowest tier among those rows. Anyone with any row
      marked opted out is never eligible.
    - Tiers are taken in ascending order, skipping tiers with nobody eligible (a tier that cannot
      acknowledge must not delay the next one). The n-th tier that has someone eligible is due
      once ``now - opened_at >= (n - 1) * escalate_after_s``, so the boundary itself is due.
    - While unacknowledged, every due tier is returned. Once acknowledged, or when
      `escalate_after_s` is None, only the first tier is ever due: escalation stops, but
      someone in tier 1 who comes on call later is still told.
    - `escalations` (the alert's escalation_ticks, which a manual Escalate raises) makes at least
      that many tiers beyond the first due while unacknowledged, whatever the time.
    - Anyone in `already_notified` is left out, so calling this again never pages twice.
    """
    _require_aware("now", now)
    _require_aware("opened_at", opened_at)
    if escalate_after_s is not None and escalate_after_s <= 0:
        raise ValueError(f"escalate_after_s {escalate_after_s} must be positive (or None for no escalation)")

    rows = list(coverage)
    opted_out = {c.responder_id for c in rows if c.opted_out}
    tier_of: dict = {}
    for c in rows:
        if c.responder_id in opted_out or not c.covers(zone_id=zone_id, layer=layer):
            continue
        if c.on_call is not None and not c.on_call.is_on_call(now):
            continue
        tier_of[c.responder_id] = min(c.tier, tier_of.get(c.responder_id, c.tier))

    tiers = sorted(set(tier_of.values()))
    if acknowledged:
        due_count = 1
    elif escalate_after_s is None:
        due_count = 1 + max(escalations, 0)
    else:
        elapsed_s = (now - opened_at) / timedelta(seconds=1)
        due_count = 1 + max(int(max(elapsed_s, 0.0) // escalate_after_s), escalations)
    due_tiers = set(tiers[:due_count])

    chosen = [r for r, t in tier_of.items() if t in due_tiers and r not in already_notified]
    return sorted(chosen, key=lambda r: (tier_of[r], str(r)))
