"""Rolling baselines for spike rules: an exponentially weighted hourly signal rate per (zone, category).

The sweeper folds each completed hour once (guarded by an advisory lock, so several workers do not
fold twice); observe reads the rate and scales it to the rule's window.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

HALF_LIFE_H = 24.0 * 7  # a week: a busy day does not become the new normal by itself
ALPHA = 1 - 0.5 ** (1 / HALF_LIFE_H)
MAX_FOLD_HOURS = 24 * 28  # after four weeks without a sweep, older hours no longer matter (decay < 2%)
_LOCK = (7_100_6, 0)  # advisory lock: baseline folding

_SEED = text(
    """
    INSERT INTO zone_baselines (zone_id, category, rate_per_h, through_hour)
    SELECT DISTINCT zone_id, category, 0.0, CAST(:before AS timestamptz) FROM signals
    WHERE observed_at >= :start AND observed_at < :end AND retired_at IS NULL
    ON CONFLICT (zone_id, category) DO NOTHING
    """
)

_FOLD = text(
    """
    UPDATE zone_baselines b
    SET rate_per_h = (1 - :alpha) * b.rate_per_h + :alpha * coalesce(
            (SELECT sum(s.weight) FROM signals s
             WHERE s.zone_id = b.zone_id AND s.category = b.category
               AND s.observed_at >= :start AND s.observed_at < :end AND s.retired_at IS NULL), 0),
        through_hour = :end
    WHERE b.through_hour = :start
    """
)


def hour_floor(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return t.replace(minute=0, second=0, microsecond=0)


def fold_hours(session: Session, *, now: datetime) -> int:
    """Fold every completed hour not yet in the baselines; returns how many hours were folded."""
    if not session.execute(text("SELECT pg_try_advisory_xact_lock(:a, :b)"),
                           {"a": _LOCK[0], "b": _LOCK[1]}).scalar_one():
        return 0  # another worker is folding
    end = hour_floor(now)
    # All rows advance together, so the oldest through_hour is the watermark; without rows, the first signal.
    start = session.execute(text("SELECT min(through_hour) FROM zone_baselines")).scalar()
    if start is None:
        first_signal = session.execute(text("SELECT min(observed_at) FROM signals")).scalar()
        if first_signal is None:
            return 0
        start = hour_floor(first_signal)
    start = max(start, end - timedelta(hours=MAX_FOLD_HOURS))
    # Rows that fell behind the folding range (a long gap) jump to its start: their old rate has decayed anyway.
    session.execute(text("UPDATE zone_baselines SET rate_per_h = 0, through_hour = :start WHERE through_hour < :start"),
                    {"start": start})
    hours = 0
    while start < end:
        nxt = start + timedelta(hours=1)
        session.execute(_SEED, {"before": start, "start": start, "end": nxt})
        session.execute(_FOLD, {"alpha": ALPHA, "start": start, "end": nxt})
        start, hours = nxt, hours + 1
    return hours


def window_baseline(session: Session, *, zone_id: int, categories: Sequence[str], window_s: float) -> float:
    """The zone's expected weighted count for one window of these categories."""
    rate = session.execute(
        text("SELECT coalesce(sum(rate_per_h), 0) FROM zone_baselines "
             "WHERE zone_id = :zone_id AND category = ANY(:categories)"),
        {"zone_id": zone_id, "categories": list(categories)},
    ).scalar_one()
    return float(rate) * window_s / 3600.0
