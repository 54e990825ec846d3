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

Freezing also raises the young generation's threshold from CPython's 700 to YOUNG_THRESHOLD. The count
it is compared with is allocations minus deallocations of tracked objects, so a request that builds and
drops a few hundred dicts and lists (a JSON body, a pydantic model, a row set) set off a collection most
of the time, of objects nearly all about to be freed anyway: bench.reports counted 1,100-1,800 young
collections per API worker in a run, and with the older generations they cost about 1 s of each worker's
CPU. At 20,000 the same run made 16, and the API spent 10-20 % less CPU per report. A cycle of garbage
waits a little longer to be freed: at most 20,000 objects' worth.
"""

import gc
import logging

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 20_000


def freeze() -> int:
    """Collect, then freeze what is alive, and raise the young generation's threshold (YOUNG_THRESHOLD);
    returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), older, oldest)
    frozen = gc.get_freeze_count()
    log.debug("heap frozen: %d objects out of the collector's full passes", frozen)
    return frozen
