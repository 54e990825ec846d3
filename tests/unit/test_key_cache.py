"""accounts.key_cache: which callers it keeps, for how long, and what it forgets."""

from accounts.key_cache import KeyCache
from accounts.keys import Caller

UTILITY = Caller(key_id=1, role="utility", utility_id=7, utility_name="Test Power")


def test_a_utility_key_is_kept_for_its_ttl():
    cache = KeyCache(ttl_s=60)
    cache.put("tk_a", UTILITY, now_s=100.0)
    assert cache.get("tk_a", now_s=159.9) == UTILITY
    assert cache.get("tk_a", now_s=160.0) is None
    assert cache.get("tk_b", now_s=100.0) is None


def test_only_utility_keys_are_kept():
    cache = KeyCache()
    cache.put("tk_p", Caller(key_id=2, role="partner", utility_id=None, utility_name=None), now_s=0.0)
    assert cache.get("tk_p", now_s=0.0) is None and len(cache) == 0


def test_a_ttl_of_zero_keeps_nothing():
    cache = KeyCache(ttl_s=0)
    cache.put("tk_a", UTILITY, now_s=0.0)
    assert cache.get("tk_a", now_s=0.0) is None


def test_forget_drops_every_entry_of_the_key_id():
    cache = KeyCache()
    cache.put("tk_a", UTILITY, now_s=0.0)
    cache.put("tk_b", Caller(key_id=3, role="utility", utility_id=7, utility_name="Test Power"), now_s=0.0)
    cache.forget(1)
    assert cache.get("tk_a", now_s=0.0) is None
    assert cache.get("tk_b", now_s=0.0) is not None


def test_the_oldest_lookup_goes_first_when_full():
    cache = KeyCache(max_keys=2)
    for i, key in enumerate(("tk_1", "tk_2", "tk_1", "tk_3")):  # tk_1 looked up again: tk_2 is now the oldest
        cache.put(key, Caller(key_id=i, role="utility", utility_id=7, utility_name="P"), now_s=float(i))
    assert len(cache) == 2
    assert cache.get("tk_2", now_s=3.0) is None
    assert cache.get("tk_1", now_s=3.0) is not None and cache.get("tk_3", now_s=3.0) is not None


def test_keys_are_kept_by_digest_not_in_clear():
    cache = KeyCache()
    cache.put("tk_secret", UTILITY, now_s=0.0)
    assert "tk_secret" not in repr(cache._entries)
