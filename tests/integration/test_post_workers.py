"""The post pipeline's worker process (ingest.posts.workers): the same answers as the stage run here, a
new process for a new context, and no chunk lost when the process dies."""

import os
import signal

import numpy as np
import pytest

from tests.integration.posts_support import entries

pytestmark = pytest.mark.integration

BOUNDS = (-74.3, 40.45, -73.65, 40.95)


@pytest.fixture
def pool():
    from ingest.posts import workers as post_workers

    pool = post_workers.WorkerPool()
    yield pool
    pool.shutdown()


@pytest.fixture
def context(session_factory, districts, lexicon):
    from geo import match_memory as zone_match
    from geo.gazetteer import GazetteerIndex
    from ingest.posts import workers as post_workers

    with session_factory() as s:
        zones = zone_match.ZoneSets().get(s)
    return post_workers.Context(GazetteerIndex(entries(), context_regions={}), lexicon, zones, BOUNDS, 0.5)


def _items(n=40):
    from ingest.posts import chunks as post_chunks
    from ingest.posts.parse import PostIn

    texts = ["Street flooding in Alphaville", "Fire near Betaburg Station", "gas smell at Cedar Hill",
             "lovely brunch in Midway", "power out in Roundtown"]
    return post_chunks.items([PostIn(source="t", external_id=str(i), author="a", text=texts[i % len(texts)],
                                     created_at="2026-11-25T21:00:00Z",
                                     coordinates=(-73.97, 40.72) if i % 3 == 2 else None) for i in range(n)])


def _same(a, b):
    assert (a.categories, a.confidences, a.located, a.wkb, a.uncertainty_m, a.geotag_method, a.raw) == (
        b.categories, b.confidences, b.located, b.wkb, b.uncertainty_m, b.geotag_method, b.raw)
    for name in ("incident", "link_pos", "link_zone", "link_weight"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def _worker_pid(pool, context):
    return pool.pool_for(context).submit(os.getpid).result()


def test_the_process_gives_the_stage_s_own_answers(pool, context):

    items = _items()
    here = context.work(items)
    assert sum(here.located) >= 20 and len(here.link_pos) > 0  # the fixture locates and links posts
    _same(pool.submit(context, items).result(), here)
    assert _worker_pid(pool, context) != os.getpid()


def test_a_new_context_forks_a_new_process_that_sees_it(pool, context):
    from dataclasses import replace

    from geo.gazetteer import GazetteerIndex

    first = _worker_pid(pool, context)
    assert _worker_pid(pool, context) == first  # the same context keeps its process
    # A gazetteer without "Alphaville": the new process must not answer from the old one.
    smaller = replace(context, index=GazetteerIndex([e for e in entries() if e.name != "Alphaville"],
                                                    context_regions={}))
    items = _items(5)
    chunk = pool.submit(smaller, items).result()
    assert _worker_pid(pool, smaller) != first
    assert context.work(items).located[0] is True  # "Street flooding in Alphaville", without coordinates
    assert chunk.located[0] is False
    _same(chunk, smaller.work(items))


def test_a_dead_process_loses_no_chunk(pool, context):

    items = _items()
    pid = _worker_pid(pool, context)
    os.kill(pid, signal.SIGKILL)
    # The chunk sent to the dead process is done here instead; the next one gets a new process.
    _same(pool.submit(context, items).result(), context.work(items))
    assert _worker_pid(pool, context) not in (pid, os.getpid())


def test_the_process_lets_go_of_the_server_s_pipes(pool, context):
    """A pipe the server holds when the process is forked is closed there: else its reader would never
    see end-of-file when the server closes its end (a browser driver in the tests hung on exactly that)."""

    r, w = os.pipe()
    try:
        executor = pool.pool_for(context)
        with pytest.raises(OSError):
            executor.submit(os.fstat, w).result()  # EBADF in the process
        os.close(w)
        os.set_blocking(r, False)  # with a copy of the write end open somewhere, this read raises instead
        assert os.read(r, 1) == b""  # end-of-file
    finally:
        os.close(r)


def test_the_process_leaves_when_the_server_dies(tmp_path):
    """A server killed outright (no atexit, no pool shutdown) leaves no worker process behind."""
    import subprocess
    import sys
    import time

    script = (
        "import os, sys\n"
        "from ingest.posts import workers as post_workers\n"
        "context = post_workers.Context(object(), object(), object(), (0.0, 0.0, 1.0, 1.0), 0.5)\n"
        "print(post_workers.WorkerPool().pool_for(context).submit(os.getpid).result(), flush=True)\n"
        "os._exit(0)\n"  # as a SIGKILL would leave it: nothing shuts the pool down
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    worker = int(out.stdout.strip())
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{worker}") and time.monotonic() < deadline:
        time.sleep(0.1)
    state = open(f"/proc/{worker}/stat").read().split()[2] if os.path.exists(f"/proc/{worker}") else "gone"
    assert state in ("gone", "Z"), f"worker {worker} still running ({state})"


def test_sigterm_ends_the_process_whatever_the_server_s_handlers(pool, context):
    """The server (uvicorn) handles SIGTERM with a flag; the forked process must not inherit that."""
    import signal
    import time


    previous = signal.signal(signal.SIGTERM, lambda *a: None)  # as a server's handler would
    try:
        pid = _worker_pid(pool, context)
    finally:
        signal.signal(signal.SIGTERM, previous)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}") \
            and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
