"""PostgreSQL stops in the middle of a burst of reports that raise alerts, then starts again.

A private cluster (scripts/services.sh with its own TOCSIN_VAR_DIR and ports), the real API and
`tocsin worker` as subprocesses, the real broker under a private topic prefix. While the database is
down the API answers 503 with Retry-After (never a 500 or a reset); the worker process stays alive; once
the database is back, every alert whose report was accepted reaches an MQTT subscriber, with no restart.
"""

import asyncio
import concurrent.futures
import glob
import re
import time

import httpx
import pytest
import websockets

from bench.faults.stack import Burst, outage_stack

pytestmark = [pytest.mark.integration, pytest.mark.heavy]


# (method, path, request arguments, needs the database). Some answer without it (static files, Open311's
# service list, a refusal that needs no lookup); none may answer 5xx other than 503.
PROBES = [
    ("GET", "/readyz", {}, True), ("GET", "/metrics", {}, True), ("GET", "/v1/reports", {}, True),
    ("POST", "/v1/reports:batch", {"json": []}, True), ("POST", "/v1/posts:batch", {"json": []}, True),
    ("GET", "/open311/v2/requests.json", {}, True), ("GET", "/open311/v2/services.json", {}, False),
    ("GET", "/v1/zones/layers", {}, True), ("GET", "/v1/zones?layer=cell", {}, True),
    ("GET", "/v1/alerts", {}, True), ("GET", "/v1/alerts/1.cap", {}, True), ("GET", "/v1/responders", {}, True),
    ("GET", "/v1/outbox", {}, True), ("GET", "/v1/observations", {}, True), ("GET", "/v1/map/config", {}, False),
    ("GET", "/", {}, False),
]


def probe_every_kind_of_endpoint(base: str, key: str) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for method, path, kwargs, needs_db in PROBES:
            r = http.request(method, path, **kwargs)
            if needs_db:
                assert r.status_code == 503, (method, path, r.status_code, r.text[:300])
                assert r.headers.get("retry-after"), (method, path)
                assert "database unavailable" in (r.json().get("detail") or "") or path == "/readyz", r.text
            else:
                assert r.status_code < 500, (method, path, r.status_code, r.text[:300])

    async def live_socket() -> tuple[int, str]:
        url = base.replace("http://", "ws://") + f"/v1/live?token={key}"
        try:
            async with websockets.connect(url) as ws:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code, closed.rcvd.reason
        return 0, "no close"

    # In a thread of its own: a session-scoped Playwright browser (tests/e2e) keeps an event loop running
    # in the main thread, where asyncio.run() refuses to start another.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        code, reason = pool.submit(asyncio.run, live_socket()).result()
    assert code == 1013 and "database unavailable" in reason  # try again later, not a crash
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200


@pytest.fixture
def stack(mqtt_url):
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.fail("PostgreSQL server binaries are missing: run `make services` once")
    with outage_stack(mqtt_url) as parts:
        yield parts


def test_database_restart_mid_burst_loses_no_alert_and_answers_503(stack):
    pg, procs, key, arrivals = stack
    procs.start_api()
    procs.start_worker()
    assert procs.wait_roles_up(("relay", "sms", "sweeper")), procs.log("worker")[-3000:]
    burst = Burst(procs.base, key, gap_s=0.03).start()
    try:
        assert burst.wait_statuses(201, 30), f"no reports accepted before the outage: {burst.statuses[-5:]}"
        pg.stop()  # mid-burst
        assert burst.wait_statuses(503, 5), f"the API never said 503 while the database was down: " \
                                            f"{burst.statuses[-10:]}"
        probe_every_kind_of_endpoint(procs.base, key)
        assert procs.worker.poll() is None, "the worker exited when the database went away"
        pg.start()
        # The API recovers on its own: reports are accepted again, with no restart.
        assert burst.wait_statuses(201, 15), f"the API did not recover: {burst.statuses[-10:]}"
    finally:
        burst.stop()
    statuses = set(burst.statuses)
    assert statuses <= {201, 503}, f"answers other than 201/503: {sorted(statuses)}, 5xx: {burst.bodies_5xx[:3]}"
    assert burst.unavailable_without_retry_after == 0
    assert any("database unavailable" in body for body in burst.bodies_5xx)
    missing = arrivals.wait_for(burst.accepted_alerts, timeout_s=40)
    assert not missing, f"{len(missing)} of {len(burst.accepted_alerts)} accepted alerts never reached MQTT"
    assert procs.worker.poll() is None and procs.worker_starts == 1
    # Each role says it recovered once its first pass after the outage is done (the relay's waits for
    # the broker's acknowledgements of what it published).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
            f"{role}: database: recovered after" in procs.log("worker") for role in ("relay", "sms", "sweeper")):
        time.sleep(0.2)
    worker_log = procs.log("worker")
    # One warning when the outage began and one line when it ended, not one per retry.
    for role in ("relay", "sweeper"):
        assert len(re.findall(rf"{role}: database: outage began", worker_log)) == 1, worker_log[-3000:]
        assert len(re.findall(rf"{role}: database: recovered after", worker_log)) == 1, worker_log[-3000:]
    ready = httpx.get(f"{procs.base}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["workers"]["relay"]["last_error"], ready.json()  # the outage it recovered from
    assert procs.stop_worker() == 0  # it ends on SIGTERM, and cleanly
