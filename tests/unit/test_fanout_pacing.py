"""The SMS sender's pacing (a token bucket of one) and the queue-ceiling arithmetic, with a fake clock."""

import threading

import pytest

from dispatch.fanout import FanoutConfig, queue_drain_s
from dispatch.fanout_worker import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class RecordingStop(threading.Event):
    """A stop event whose wait() advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout=None) -> bool:
        self.waits.append(round(timeout, 6))
        self.clock.t += timeout
        return self.is_set()


def test_sends_are_spaced_one_interval_apart():
    clock = FakeClock()
    limiter = RateLimiter(4.0, monotonic=clock)
    stop = RecordingStop(clock)
    assert all(limiter.acquire(stop) for _ in range(5))
    assert stop.waits == [0.25, 0.25, 0.25, 0.25]  # the first goes at once, then 1/mps apart
    assert clock.t == pytest.approx(101.0)


def test_an_idle_limiter_does_not_bank_a_burst():
    clock = FakeClock()
    limiter = RateLimiter(2.0, monotonic=clock)
    stop = RecordingStop(clock)
    limiter.acquire(stop)
    clock.t += 60  # a quiet minute
    limiter.acquire(stop)
    limiter.acquire(stop)
    assert stop.waits == [0.5]


def test_refund_gives_the_slot_back():
    clock = FakeClock()
    limiter = RateLimiter(1.0, monotonic=clock)
    stop = RecordingStop(clock)
    limiter.acquire(stop)
    limiter.refund()  # nothing was due: the next send need not wait
    limiter.acquire(stop)
    assert stop.waits == []


def test_stop_interrupts_the_wait():
    clock = FakeClock()
    limiter = RateLimiter(1.0, monotonic=clock)
    stop = RecordingStop(clock)
    limiter.acquire(stop)
    stop.set()
    assert limiter.acquire(stop) is False


@pytest.mark.parametrize("mps", [0, -1])
def test_rate_must_be_positive(mps):
    with pytest.raises(ValueError, match=f"mps {mps}"):
        RateLimiter(mps)
    with pytest.raises(ValueError, match=f"mps {mps}"):
        FanoutConfig(public_base_url="http://x", mps=mps)


def test_twilio_default_ceiling_is_four_hours_of_queue():
    config = FanoutConfig(public_base_url="http://x")
    assert config.queue_ceiling_s == 14_400
    assert queue_drain_s(messages=14_400, segments_each=1, mps=1.0) <= config.queue_ceiling_s
    assert queue_drain_s(messages=14_401, segments_each=1, mps=1.0) > config.queue_ceiling_s


@pytest.mark.parametrize("lead", [True, False], ids=["lead", "follower"])
def test_a_sender_ends_when_the_stop_and_its_wake_up_came_before_it_cleared_the_wake_up(lead):
    """run_forever stops its senders by setting `stop`, then the wake-up event. A sender that had just found
    nothing clears the wake-up before it looks once more; had both come before that clear, an idle follower
    waited FOLLOWER_WAIT_S (60 s) for a wake-up that would never come."""
    from datetime import UTC, datetime

    from dispatch.fanout_worker import FanoutWorker

    worker = FanoutWorker(None, None, rules=list, config=FanoutConfig(public_base_url="http://t", mps=1000.0),
                          clock=lambda: datetime.now(UTC))
    stop = threading.Event()
    looks = []

    def send_once():
        looks.append(1)
        if len(looks) == 1:  # the planner stops between this sender's two looks, before its clear()
            stop.set()
            worker._wake.set()
        return None

    worker.send_once = send_once
    worker._seconds_until_due = lambda cap_s: 60.0
    sender = threading.Thread(target=worker._sender_loop, args=(stop, 1.0), kwargs={"lead": lead}, daemon=True)
    sender.start()
    sender.join(timeout=5)
    assert not sender.is_alive()
    assert len(looks) == 2
