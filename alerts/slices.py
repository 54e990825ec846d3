"""When rules evaluate a batch's signals: at `now` for live ones, at the end of their minute for older ones
(event time: a replayed stream raises the same alerts at any speed)."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from alerts.signals import SignalIn

# Event-time evaluation grid: far shorter than any rule's window (the shortest default is 10 minutes), so
# evaluating at a cell's end rather than at the signal's own second loses nothing from the window.
SLICE_S = 60
# Signals observed this recently are evaluated together at `now`: a live batch (posts of the last minutes;
# bench.pipeline's span 500 s) stays one slice and one set of statements, as fast as before. The shortest
# default window: each such signal is still inside its own window at `now`. The price: a burst that a
# batch carries across now - LIVE_S may be split between its old slice and `now` (as every batch was).
LIVE_S = 600


def event_slices(signals: Sequence[SignalIn], now: datetime) -> list[tuple[datetime, list[SignalIn]]]:
    """The signals grouped by the time the rules evaluate them at, oldest first.

    A signal observed within the last LIVE_S is evaluated at `now` (the live path: one slice, as before);
    an older one at the end of its SLICE_S cell of the epoch (never past `now`). The cell end, not the
    batch's newest time, makes the evaluation time independent of how a replayed stream was cut into
    batches: replayed at any speed, the same windows are read at the same times."""
    out: dict[datetime, list[SignalIn]] = {}
    fresh_since = now - timedelta(seconds=LIVE_S)
    for s in signals:
        if s.observed_at >= fresh_since:
            at = now
        else:
            cell = int(s.observed_at.timestamp() // SLICE_S) + 1
            at = min(now, datetime.fromtimestamp(cell * SLICE_S, tz=s.observed_at.tzinfo or UTC))
        out.setdefault(at, []).append(s)
    return sorted(out.items(), key=lambda kv: kv[0])
