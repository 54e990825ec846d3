"""Warm the post pipeline's per-process caches when a server starts, instead of in its first batches.

The gazetteer index, the zones as matched (geo.match_memory.ZoneSets) and the zone weights of the
gazetteer's detailed outlines (ingest.posts.zones.warm: about 30 ms an outline, some 450 in the NYC demo
gazetteer) are built once per process, in the server's ingest.posts.state.PostState. Built lazily, they made the first post batch after a start
take seconds longer; `tocsin serve` builds them in a background thread as it starts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from ingest.posts import zones as post_zones
from ingest.posts.state import PostState

log = logging.getLogger(__name__)


def warm_post_caches(factory: Callable[[], Session], state: PostState) -> int:
    """Build the caches; returns how many outlines have their zone weights cached."""
    with factory() as session:
        index = state.gazetteer.get(session)
        zones = state.zones.get(session)
    return post_zones.warm(zones, [entry.geometry for entry in index.entries])


def start_warming(factory: Callable[[], Session], state: PostState, *,
                  then: Callable[[], object] | None = None) -> threading.Thread:
    """warm_post_caches in a daemon thread; a failure is logged, never fatal (the caches fill lazily).
    `then` runs after a warm-up that succeeded (the app freezes its heap with it: tocsin.heap)."""

    def run() -> None:
        started = time.perf_counter()
        try:
            n = warm_post_caches(factory, state)
        except Exception:
            log.warning("warming the post caches failed; they will fill as posts arrive", exc_info=True)
            return
        log.info("post caches warm: %d outlines' zone weights in %.1f s", n, time.perf_counter() - started)
        if then is not None:
            then()

    thread = threading.Thread(target=run, name="warm-post-caches", daemon=True)
    thread.start()
    return thread
