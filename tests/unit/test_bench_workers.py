"""bench.http_load.wait_workers: a multi-worker server is loaded only once every worker has answered, told
apart by the pid it gives (`pid="123"` in /metrics, `"pid": 123` in the floor's /healthz)."""

import itertools

import pytest

from bench.http_load import ServerDidNotStart, wait_workers
from tests.fakes.http_thread import serve_in_thread


def _app(bodies):
    """An ASGI app answering each request with the next of `bodies`, as workers taking turns would."""
    turn = itertools.cycle(bodies)

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": next(turn).encode()})

    return app


@pytest.mark.parametrize("bodies", [
    ['tocsin_report_batches_total{pid="101"} 0\n', 'tocsin_report_batches_total{pid="202"} 0\n'],
    ['{"status":"ok","pid":101}', '{"status": "ok", "pid": 202}'],
])
def test_it_returns_once_each_worker_has_answered_and_waits_no_longer_than_its_timeout(bodies):
    with serve_in_thread(_app(bodies)) as base:
        wait_workers(base, 2, path="/metrics", timeout_s=5)  # 101, then 202
        with pytest.raises(ServerDidNotStart, match="2 of 3 workers"):
            wait_workers(base, 3, path="/metrics", timeout_s=0.5)  # only two pids ever answer
