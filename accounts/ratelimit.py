"""Per-API-key token buckets, in process memory.

Each worker process keeps its own buckets, so with N uvicorn workers a key can reach N times the
configured rate; that is acceptable for abuse protection. A shared limit would need Redis or a
database counter, which costs a round trip per request.
"""

import math
import threading
from dataclasses import dataclass


@dataclass
class Bucket:
    tokens: float
    updated_s: float


class KeyRateLimiter:
    """`per_min` requests per minute per key, with bursts up to one minute's allowance; 0 disables."""

    def __init__(self, *, per_min: int) -> None:
        self.per_min = per_min
        self._buckets: dict[int, Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int, *, now_s: float) -> int | None:
        """Spend one token; None when allowed, else the whole seconds to wait before retrying.

        now_s is a monotonic clock reading in seconds.
        """
        if self.per_min <= 0:
            return None
        rate_per_s = self.per_min / 60.0
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = Bucket(tokens=float(self.per_min), updated_s=now_s)
            elapsed = max(0.0, now_s - bucket.updated_s)
            bucket.tokens = min(float(self.per_min), bucket.tokens + elapsed * rate_per_s)
            bucket.updated_s = now_s
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            # The epsilon keeps float noise (10.000000001 s) from adding a whole second.
            return max(1, math.ceil((1.0 - bucket.tokens) / rate_per_s - 1e-9))
