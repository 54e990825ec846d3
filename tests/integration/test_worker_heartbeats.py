"""Each worker role writes a heartbeat; /readyz and /metrics show its age and a stalled role; the supervisor
restarts a role whose loop raised."""

import re
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tocsin import worker
from tocsin.app import create_app

# The worker and the app, on engines of their own.
pytestmark = [pytest.mark.integration, pytest.mark.committing]


def wait_until(predicate, *, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def metric(body: str, name: str, role: str) -> float:
    found = re.search(rf'^{name}{{role="{role}"}} (\S+)$', body, re.M)
    assert found, f"{name} for {role} missing from /metrics"
    return float(found[1])


@pytest.fixture
def live(settings, session_factory):
    """Settings with a short stall threshold; the tables start empty (session_factory)."""
    return settings.model_copy(update={"worker_stall_s": 2.0, "sweep_interval_s": 0.2})


def start_worker(settings, roles=worker.ROLES):
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(settings,), kwargs={"stop": stop, "roles": roles},
                              daemon=True)
    thread.start()
    return stop, thread


def test_readyz_and_metrics_show_each_role_then_a_stopped_worker_as_stalled(live, districts):
    stop, thread = start_worker(live)
    with TestClient(create_app(live)) as client:
        try:
            def all_up():
                body = client.get("/readyz").json()
                workers = body.get("workers", {})
                return body if all(r in workers and workers[r]["state"] == "ok" and not workers[r]["stalled"]
                                   for r in worker.ROLES) else None

            body = wait_until(all_up, what="every role's heartbeat")
            assert body["status"] == "ok" and body["stalled"] == []
            metrics = client.get("/metrics").text
            for role in worker.ROLES:
                assert metric(metrics, "tocsin_worker_role_up", role) == 1
        finally:
            stop.set()
            thread.join(timeout=30)
        assert not thread.is_alive()

        def all_stalled():
            r = client.get("/readyz")
            return r if r.json()["stalled"] == sorted(worker.ROLES) else None

        ready = wait_until(all_stalled, what="the stopped worker's roles to show as stalled")
        # A stalled worker degrades readiness but does not take the API out of rotation.
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert {w["state"] for w in ready.json()["workers"].values()} == {"stopped"}
        metrics = client.get("/metrics").text
        for role in worker.ROLES:
            assert metric(metrics, "tocsin_worker_role_up", role) == 0
            assert metric(metrics, "tocsin_worker_heartbeat_age_seconds", role) > live.worker_stall_s


def test_a_role_whose_loop_raises_is_restarted_and_its_heartbeat_says_why(live, session_factory, monkeypatch,
                                                                          caplog):
    from alerts import sweeper

    real = sweeper.Schedule.run_pass
    calls = []

    def run_pass_failing_once(self, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected sweeper bug")
        return real(self, **kwargs)

    monkeypatch.setattr(sweeper.Schedule, "run_pass", run_pass_failing_once)
    stop, thread = start_worker(live, roles=("sweeper",))
    try:
        def recovered():
            with session_factory() as session:
                row = session.execute(text(
                    "SELECT state, last_error FROM worker_heartbeats WHERE role = 'sweeper'")).one_or_none()
            return row if row is not None and row.state == "ok" and len(calls) > 1 else None

        row = wait_until(recovered, what="the sweeper to run again after its crash")
        assert "injected sweeper bug" in row.last_error  # written as the role died, kept after its restart
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert "worker role sweeper died" in caplog.text


def test_a_relay_without_its_broker_beats_but_degrades_readiness(live, districts):
    from tests.integration.dispatch_support import free_port

    nobody = live.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{free_port()}"})  # nothing listens there
    stop, thread = start_worker(nobody, roles=("relay",))
    try:
        # An API whose own broker answers: the relay's state alone degrades readiness.
        with TestClient(create_app(live)) as client:
            def broker_down():
                r = client.get("/readyz")
                relay = r.json().get("workers", {}).get("relay")
                return r if relay and relay["state"] == "broker_down" else None

            ready = wait_until(broker_down, what="the relay to report its broker down")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            assert ready.json()["stalled"] == []  # it is alive and beating, just not delivering
            assert thread.is_alive()
        # An API that probes the same broker as the relay: 503 naming it, the relay's heartbeat still listed.
        with TestClient(create_app(nobody)) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            assert ready.json()["mqtt"].startswith(f"mqtt broker 127.0.0.1:{nobody.mqtt_url.rsplit(':', 1)[1]} ")
            assert ready.json()["workers"]["relay"]["state"] == "broker_down"
    finally:
        stop.set()
        thread.join(timeout=30)
