"""Nothing is lost on the MQTT side: zone state, a broker restart, a killed relay, a slow subscriber."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from alerts import service as alert_service
from db.session import transaction
from tests.integration.dispatch_support import (
    REPO, PersistentSubscriber, emit_many, event_ids, free_port, open_alert, wait_until,
)

# The worker (in a thread or a process), on engines of its own.
pytestmark = [pytest.mark.integration, pytest.mark.committing, pytest.mark.heavy]
TEST_RULES = REPO / "tests" / "data" / "rules.yaml"


def now():
    """Wall-clock time: a live worker runs the sweeper, and MQTT message expiry counts from the alert's expiry."""
    return datetime.now(UTC)


def unpublished(factory) -> int:
    with factory() as session:
        return session.execute(text("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")).scalar_one()


def test_zone_state_is_retained_and_cleared(session_factory, districts, relay, subscriber_factory, topic_prefix,
                                            mqtt_url):
    sub = subscriber_factory(f"{topic_prefix}/zones/#")
    alert = open_alert(session_factory, code="A", now=now())
    topic, payload = sub.take(1, timeout=10)[0]
    state = json.loads(payload)
    assert topic == f"{topic_prefix}/zones/district/A/state"
    assert state["schema"] == "tocsin.zone_state/1" and state["zone"]["code"] == "A"
    assert state["alert_count"] == 1 and state["max_severity"] == "critical"
    assert [(a["alert_id"], a["state"], a["ack_code"]) for a in state["alerts"]] == [(alert.id, "open", alert.ack_code)]

    # A late subscriber gets the retained state at once.
    late = subscriber_factory(f"{topic_prefix}/zones/#")
    assert json.loads(late.take(1, timeout=5)[0][1])["alerts"][0]["alert_id"] == alert.id

    with transaction(session_factory) as session:
        alert_service.resolve(session, alert_id=alert.id, actor="test", note=None, now=now())
    # (The live worker's sweeper may republish the open state first; the last word is the clearing.)
    wait_until(lambda: sub.take(1, timeout=10)[0][1] == b"", what="an empty retained payload")
    after = subscriber_factory(f"{topic_prefix}/zones/#")
    assert after.drain(wait=0.5) == []  # nothing retained any more


# --- a throwaway broker we may stop and start ------------------------------------------------


class Broker:
    """A private Mosquitto started with scripts/services.sh (PostgreSQL skipped), stoppable at will."""

    def __init__(self) -> None:
        if not shutil.which("mosquitto") and not os.path.exists("/usr/sbin/mosquitto"):
            pytest.skip("mosquitto is not installed")
        (REPO / "var").mkdir(exist_ok=True)
        self.var = Path(tempfile.mkdtemp(prefix="test-broker-", dir=REPO / "var"))
        self.port = free_port()
        self.env = {**os.environ, "TOCSIN_VAR_DIR": str(self.var), "TOCSIN_MQTT_PORT": str(self.port),
                    "TOCSIN_DATABASE_URL": "postgresql+psycopg://external/skip"}
        self.env.pop("TOCSIN_MQTT_URL", None)
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def _script(self, action: str) -> None:
        done = subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), action], env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        """SIGTERM by pid file, as services.sh does: mosquitto saves its persistence and exits."""
        self._script("stop")

    def close(self) -> None:
        self._script("stop")
        shutil.rmtree(self.var, ignore_errors=True)


@pytest.fixture
def broker():
    b = Broker()
    b.start()
    yield b
    b.close()


def test_broker_restart_mid_burst_loses_nothing(session_factory, districts, settings, broker):
    from tocsin import worker

    sub = PersistentSubscriber(broker.url, f"{settings.mqtt_topic_prefix}/alerts/#")
    live = settings.model_copy(update={"mqtt_url": broker.url})
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(live,), kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        alerts = [open_alert(session_factory, code=code, rule=f"burst_{code}", now=now()) for code in "ABC"]
        for i in range(60):
            emit_many(session_factory, alerts[i % 3].id, 5, now=now())
            if i == 20:
                broker.stop()  # mid-burst: the relay holds the rest in the outbox
            if i == 40:
                broker.start()
            time.sleep(0.01)
        wanted = event_ids(session_factory)
        assert len(wanted) >= 3 + 300  # (plus any the live sweeper adds)
        seen, received = sub.collect(wanted, timeout=60)
        assert seen == wanted, f"{len(wanted - seen)} of {len(wanted)} events never arrived"
        assert received >= len(wanted)  # duplicates are allowed (QoS 1); consumers dedupe on event_id
        wait_until(lambda: unpublished(session_factory) == 0, what="every event marked published")
        with session_factory() as session:
            assert session.execute(text("SELECT count(*) FROM outbox_events WHERE parked_at IS NOT NULL")
                                   ).scalar_one() == 0
    finally:
        stop.set()
        thread.join(10)
        sub.close()


def _worker_process(settings, client_id: str) -> subprocess.Popen:
    env = {**os.environ, "TOCSIN_DATABASE_URL": settings.database_url, "TOCSIN_MQTT_URL": settings.mqtt_url,
           "TOCSIN_MQTT_TOPIC_PREFIX": settings.mqtt_topic_prefix, "TOCSIN_MQTT_CLIENT_ID": client_id,
           "TOCSIN_RULES_FILE": str(TEST_RULES), "TOCSIN_RELAY_POLL_S": "0.5", "TOCSIN_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "tocsin.cli", "worker"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_relay_process_killed_mid_batch_loses_nothing(session_factory, districts, settings, subscriber_factory):
    sub = PersistentSubscriber(settings.mqtt_url, f"{settings.mqtt_topic_prefix}/alerts/#")
    try:
        alert = open_alert(session_factory, now=now())
        emit_many(session_factory, alert.id, 4999, now=now())
        wanted = event_ids(session_factory)
        client_id = f"tocsin-kill-{os.getpid()}"
        first = _worker_process(settings, client_id)
        try:
            wait_until(lambda: sub.messages.qsize() >= 300, timeout=30, interval=0.002,
                       what="the first relay publishing")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        left = unpublished(session_factory)
        assert 0 < left < len(wanted), f"kill was not mid-batch ({left} unpublished)"
        second = _worker_process(settings, client_id)
        try:
            seen, received = sub.collect(wanted, timeout=60)
            assert seen == wanted, f"{len(wanted - seen)} of {len(wanted)} events never arrived"
            wait_until(lambda: unpublished(session_factory) == 0, what="every event marked published")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(15)
    finally:
        sub.close()


def test_slow_subscriber_receives_all_5000(session_factory, districts, settings, relay):
    sub = PersistentSubscriber(settings.mqtt_url, f"{settings.mqtt_topic_prefix}/alerts/#", delay_s=0.001)
    try:
        alert = open_alert(session_factory, now=now())
        emit_many(session_factory, alert.id, 4999, now=now())
        wanted = event_ids(session_factory)
        assert len(wanted) >= 5000
        seen, received = sub.collect(wanted, timeout=120)
        assert seen == wanted, f"{len(wanted - seen)} of 5000 events never arrived"
    finally:
        sub.close()
