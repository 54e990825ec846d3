"""Keep the garbage collector's full passes off the request path of long-running processes.

CPython's collector walks every tracked object in a full (generation 2) pass. An API worker holds a
large, long-lived heap (FastAPI, SQLAlchemy, shapely, pandas, the rules and zone caches), so a full pass
stopped the process for 60 to 220 ms, at random moments, in the middle of reports: that was the tail of
bench.latency's report -> MQTT latency. `gc.freeze()` moves everything alive at that moment to a
permanent generation the collector no longer walks; later full passes look only at objects made since.
Garbage is collected first, so nothing unreachable is frozen (frozen objects are never freed).

Freeze once the process has built what it keeps (after start-up, and again after a cache warm-up).
Memory that becomes garbage later is still freed by reference counting; only cycles among frozen objects
would outlive their use, and start-up state lives as long as the process.
"""

import gc
import logging

log = logging.getLogger(__name__)


def freeze() -> int:
    """Collect, then freeze what is alive; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("heap frozen: %d objects out of the collector's full passes", frozen)
    return frozen
