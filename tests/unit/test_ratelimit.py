"""Token buckets per key, driven by an explicit clock."""

import pytest

from accounts.ratelimit import KeyRateLimiter


def test_burst_then_exact_wait():
    rl = KeyRateLimiter(per_min=2)
    assert rl.take(1, now_s=0.0) is None
    assert rl.take(1, now_s=0.0) is None
    assert rl.take(1, now_s=0.0) == 30  # one token refills in 60/2 s
    assert rl.take(1, now_s=20.0) == 10
    assert rl.take(1, now_s=30.0) is None


def test_keys_are_independent_and_zero_disables():
    rl = KeyRateLimiter(per_min=1)
    assert rl.take(1, now_s=0.0) is None
    assert rl.take(2, now_s=0.0) is None
    assert rl.take(1, now_s=0.0) == 60
    off = KeyRateLimiter(per_min=0)
    assert all(off.take(1, now_s=0.0) is None for _ in range(100))


@pytest.mark.parametrize("elapsed, allowed", [(59.0, False), (60.0, True)])
def test_refill_boundary(elapsed, allowed):
    rl = KeyRateLimiter(per_min=1)
    rl.take(7, now_s=0.0)
    assert (rl.take(7, now_s=elapsed) is None) is allowed
