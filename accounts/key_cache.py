"""Utility callers of recently seen API keys, for POST /v1/reports: the write checks the key, not a lookup.

A report's key used to be looked up before every POST: a thread-pool hop, a pooled connection and a round
trip, about a sixth of the API's CPU at 200 reports/s. Now a process remembers who a utility key is (its
id, utility, name and whether the utility has a territory: none of them change while the key lives), and
the report's own insert checks that the key is still unrevoked, in the same statement (accounts.keys.
live_key_sql; ingest.reports.queries). So a key revoked since its last POST still gets 401 on its next
one, from any process, with no cache to invalidate: a revocation is a committed row the write reads.

What the cache cannot answer is a POST that never reaches the write. Such a request, with a key revoked
in the last `ttl_s`, gets the answer its body deserves (422, 429) instead of 401; the endpoint looks the
key up again before answering any error of its own (ingest.reports.api). Only utility keys are kept:
a partner key on this route is refused (403), and is looked up each time.
"""

from __future__ import annotations

from accounts.keys import Caller, hash_key

DEFAULT_TTL_S = 60.0
DEFAULT_MAX_KEYS = 4096


class KeyCache:
    """Key digest -> (Caller, when it was looked up). One per API process, used on its event loop only."""

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._entries: dict[str, tuple[Caller, float]] = {}

    def get(self, key: str, *, now_s: float) -> Caller | None:
        """The caller of `key` if it was looked up less than `ttl_s` ago (`now_s`: a monotonic clock)."""
        entry = self._entries.get(hash_key(key))
        if entry is None or now_s - entry[1] >= self.ttl_s:
            return None
        return entry[0]

    def put(self, key: str, caller: Caller, *, now_s: float) -> None:
        """Remember a utility key's caller (other roles are not kept)."""
        if caller.role != "utility" or self.ttl_s <= 0:
            return
        digest = hash_key(key)
        self._entries.pop(digest, None)
        if len(self._entries) >= self.max_keys:  # the oldest lookup goes first
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = (caller, now_s)

    def forget(self, key_id: int) -> None:
        """Drop a key the database has refused (revoked since it was kept)."""
        for digest in [d for d, (c, _) in self._entries.items() if c.key_id == key_id]:
            del self._entries[digest]

    def __len__(self) -> int:
        return len(self._entries)
