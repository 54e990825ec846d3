"""A worker process for the post pipeline's Python stage (ingest.posts.chunks.work).

The stage (classify, geotag, zone weights, the stored JSON) is pure Python and holds the GIL. In a
thread beside the request's own Python (dedup, packing, the rules) the two take turns on one core,
and a batch of 10,000 posts spent most of its time waiting for the GIL. In a process of its own the
stage runs on the other core.

The process is forked, so it starts with the parent's caches as they are at that moment: the
gazetteer index, the lexicon, the zones as matched and the zone weights of the gazetteer's outlines
(ingest.posts.warmup), which take seconds to build and would take as long again in a fresh interpreter.
It is forked on first use and again whenever a batch brings a different context (a reloaded
gazetteer or zone layer: other objects). A `WorkerPool` (one per server, in ingest.posts.state.PostState)
holds the context's objects while the process lives, so that their ids, which identify the context,
cannot be reused by new objects. In the forked process itself, the context it was forked with is that
process's only state (`_forked`).

Nothing is lost when the process dies: a chunk whose process broke is done again in the calling
thread, and the next batch forks a new process. The process closes the sockets and pipes it inherits
from the server (a copy held open there would keep their other ends from seeing them closed), not
the pool's own, and exits within a second of the server. Where fork or /proc is unavailable (not
Linux), or `TOCSIN_POST_WORKER_PROCESS=false`, the stage runs in a thread as before.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from geo import match_memory as zone_match
from geo.gazetteer import GazetteerIndex
from ingest.posts import chunks as post_chunks
from ingest.posts.classify import Lexicon

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What post_chunks.work needs besides the posts."""

    index: GazetteerIndex
    lexicon: Lexicon
    zones: zone_match.ZoneSet
    bounds: tuple[float, float, float, float]
    min_confidence: float

    def key(self) -> tuple:
        return id(self.index), id(self.lexicon), id(self.zones), self.bounds, self.min_confidence

    def work(self, items: list[post_chunks.Item]) -> post_chunks.Chunk:
        return post_chunks.work(items, index=self.index, lexicon=self.lexicon, zones=self.zones,
                                bounds=self.bounds, min_confidence=self.min_confidence)


PARENT_CHECK_S = 1.0  # how often the process checks that the server is still there
_forked: Context | None = None  # in a forked worker process only: the context it was forked with


def available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and os.path.isdir("/proc/self/fd")


def _work(items: list[post_chunks.Item]) -> post_chunks.Chunk:
    """In the process: the stage, with the context it was forked with."""
    assert _forked is not None
    return _forked.work(items)


def _started() -> int:
    return os.getpid()


def _sockets_and_pipes() -> dict[int, str]:
    """This process's open sockets and pipes: {descriptor: its kernel object, as "pipe:[inode]"}."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the listing's own descriptor, closed already
        if target.startswith(("socket:", "pipe:")):
            out[int(name)] = target
    return out


def _start_in_process(context: Context, server_fds: dict[int, str]) -> None:
    """In the process, first thing (the pool's initializer).

    Close the sockets and pipes it inherited from the server (its listening socket, database
    connections, a browser driver's pipes in tests): a copy held open here would keep their other ends
    from ever seeing them closed. The pool's own pipes are newer, so not among them (same descriptor
    and same kernel object: a number reused since is left alone); files stay open, since libraries read
    theirs (pyproj's proj.db).

    Take back the server's signal handlers (uvicorn's would make SIGTERM set a flag nobody reads
    here): SIGTERM ends the process, and SIGINT (Ctrl-C reaches the whole process group) is left to
    the server. And leave when the server does: the process also holds the write end of its own work
    queue, so a dead server's queue never reads as closed here. A thread looks at the parent's pid
    every second.

    `context` and `server_fds` (the parent's sockets and pipes just before it made the pool) reach the
    process through fork, not pickling."""
    global _forked
    _forked = context
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd, target in _sockets_and_pipes().items():
        if server_fds.get(fd) == target:
            try:
                os.close(fd)
            except OSError:
                pass
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)  # the server is gone (this process was handed to init): nothing is waiting for us

    threading.Thread(target=watch, name="post-worker-parent-watch", daemon=True).start()


class WorkerPool:
    """The post pipeline's worker process for one server: forked on first use with a context, and again
    when a batch brings another context or the process broke."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._context: Context | None = None  # held while its process lives: its ids identify it

    def pool_for(self, context: Context) -> ProcessPoolExecutor:
        """The worker process, forked with this context (again, if the last one had another context or broke)."""
        with self._lock:
            if self._pool is not None and self._context is not None and self._context.key() == context.key() \
                    and not getattr(self._pool, "_broken", False):
                return self._pool
            old = self._pool
            self._context = context
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_start_in_process,
                                             initargs=(context, _sockets_and_pipes()))
            self._pool.submit(_started).result()  # fork now, from this context, not at some later submit
            if old is not None:
                old.shutdown(wait=False)  # work already sent to it still finishes
            return self._pool

    def submit(self, context: Context, items: list[post_chunks.Item]) -> Future:
        """post_chunks.work(items) in the worker process; if the process breaks, done here instead."""
        try:
            future = self.pool_for(context).submit(_work, items)
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            log.warning("post worker process unavailable (%s); this chunk runs in the caller", exc)
            return _done(context, items)
        return _Fallback(future, context, items)

    def work_all(self, context: Context, parts: list[list[post_chunks.Item]]) -> Iterator[post_chunks.Chunk]:
        """post_chunks.work for each part, in order, every part sent to the process now.

        The caller does not take parts back to do them itself while it waits: measured with two
        concurrent batches, that was slower, because the serving process's request threads already
        share one GIL."""
        futures = [self.submit(context, part) for part in parts]
        return (future.result() for future in futures)

    def shutdown(self) -> None:
        """Stop the worker process (a server at exit; tests)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._context = None, None


class _Fallback:
    """A future whose result, if the worker process died before giving it, is computed in the caller."""

    def __init__(self, future: Future, context: Context, items: list[post_chunks.Item]) -> None:
        self._future, self._context, self._items = future, context, items

    def result(self) -> post_chunks.Chunk:
        try:
            return self._future.result()
        except BrokenProcessPool:
            log.warning("post worker process died; its chunk of %d posts runs in the caller", len(self._items))
            return self._context.work(self._items)


def _done(context: Context, items: list[post_chunks.Item]) -> Future:
    future: Future = Future()
    future.set_result(context.work(items))
    return future
