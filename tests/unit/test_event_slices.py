"""alerts.slices.event_slices: the time each signal is evaluated at, independent of how batches are cut."""

from datetime import UTC, datetime, timedelta

from alerts.signals import SignalIn
from alerts.slices import LIVE_S, event_slices

NOW = datetime(2026, 12, 3, 18, 0, 30, tzinfo=UTC)


def _signal(oid: int, at: datetime) -> SignalIn:
    return SignalIn(observation_id=oid, source="post", category="flood", confidence=0.9, author_key=str(oid),
                    observed_at=at, zones=())


def test_a_live_batch_is_one_slice_at_now():
    signals = [_signal(k, NOW - timedelta(seconds=5 * k)) for k in range(LIVE_S // 5)]
    [(at, part)] = event_slices(signals, NOW)
    assert at == NOW and len(part) == LIVE_S // 5


def test_older_signals_are_evaluated_at_their_minute_end_oldest_first():
    signals = [_signal(1, datetime(2026, 12, 3, 17, 20, 10, tzinfo=UTC)),
               _signal(2, datetime(2026, 12, 3, 17, 5, 59, tzinfo=UTC)),
               _signal(3, datetime(2026, 12, 3, 17, 20, 50, tzinfo=UTC))]
    slices = event_slices(signals, NOW)
    assert [(at, [s.observation_id for s in part]) for at, part in slices] == [
        (datetime(2026, 12, 3, 17, 6, tzinfo=UTC), [2]), (datetime(2026, 12, 3, 17, 21, tzinfo=UTC), [1, 3])]


def test_the_evaluation_time_does_not_depend_on_the_batch():
    signals = [_signal(k, datetime(2026, 12, 3, 16, 0, tzinfo=UTC) + timedelta(seconds=37 * k)) for k in range(40)]
    whole = {s.observation_id: at for at, part in event_slices(signals, NOW) for s in part}
    cut = {s.observation_id: at for k in range(0, 40, 7) for at, part in event_slices(signals[k:k + 7], NOW)
           for s in part}
    assert whole == cut
