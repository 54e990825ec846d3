"""/metrics through prometheus_client: request durations by route template, report commit latency, the relay's
acknowledgement latency against the real Mosquitto, SMS send latency against the fake Twilio, and the worker's
own /metrics on TOCSIN_WORKER_METRICS_PORT."""

import json
import threading
import uuid
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from dispatch.relay import Relay
from dispatch.senders.base import DeliveryError
from dispatch.senders.mqtt import MqttConfig, MqttPublisher
from dispatch.senders.sms import TwilioSender
from dispatch.worker_metrics import WorkerMetrics
from tests.integration.dispatch_support import T0, free_port, open_alert, wait_until
from tests.integration.metrics_support import samples, value
from tests.integration.reports_support import auth, make_client, report  # noqa: F401 - make_client: a fixture
from tests.integration.test_dispatch_fanout import ANA, add, zone

pytestmark = pytest.mark.integration


def scrape(client) -> str:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    return r.text


@pytest.mark.committing
def test_a_report_post_is_timed_by_route_template_and_from_arrival_to_commit(client, utility_key):
    before = scrape(client)
    r = client.post("/v1/reports", json=report(external_id="M1"), headers=auth(utility_key))
    assert r.status_code == 201, r.text
    report_id = r.json()["id"]
    assert client.get(f"/v1/reports/{report_id}", headers=auth(utility_key)).status_code == 200
    assert client.get("/v1/reports/987654321", headers=auth(utility_key)).status_code == 404
    after = scrape(client)

    def count(body, **labels):
        return value(body, "tocsin_http_request_duration_seconds_count", **labels)

    assert count(after, method="POST", route="/v1/reports", status="201") == \
        count(before, method="POST", route="/v1/reports", status="201") + 1
    assert count(after, method="GET", route="/v1/reports/{report_id}", status="200") == 1
    assert count(after, method="GET", route="/v1/reports/{report_id}", status="404") == 1
    assert value(after, "tocsin_http_request_duration_seconds_bucket", method="POST", route="/v1/reports",
                 status="201", le="+Inf") >= 1
    routes = {labels["route"] for labels, _ in samples(after, "tocsin_http_request_duration_seconds_count")}
    assert f"/v1/reports/{report_id}" not in routes and "/v1/reports/987654321" not in routes
    # The report's time from the group-commit writer's queue to its batch's commit, one sample per report.
    assert value(after, "tocsin_report_commit_seconds_count") == value(before, "tocsin_report_commit_seconds_count") + 1
    assert value(after, "tocsin_report_batch_reports_total") == value(before, "tocsin_report_batch_reports_total") + 1


@pytest.mark.committing
def test_two_apps_in_one_process_count_separately(client, make_client):
    """Each app owns its registry: a second app starts from nothing (a global registry would refuse to
    register the same metric names twice, or share the counts)."""
    client.get("/healthz")
    client.get("/healthz")
    other = make_client()
    other.get("/healthz")
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(scrape(client), "tocsin_http_request_duration_seconds_count", **labels) == 2
    assert value(scrape(other), "tocsin_http_request_duration_seconds_count", **labels) == 1


@pytest.mark.committing  # the relay commits on a connection of its own
def test_the_relay_observes_each_event_from_its_creation_to_the_brokers_ack(session_factory, engine, districts, mqtt_url,
                                                                            topic_prefix, subscriber_factory):
    sub = subscriber_factory(f"{topic_prefix}/alerts/#")
    open_alert(session_factory, code="A", now=T0)
    open_alert(session_factory, code="B", now=T0)
    metrics = WorkerMetrics()
    publisher = MqttPublisher(MqttConfig(url=mqtt_url, client_id=f"tocsin-test-{uuid.uuid4().hex[:8]}",
                                         topic_prefix=topic_prefix))
    assert publisher.start(), f"no MQTT broker at {mqtt_url}"
    try:
        with Relay(engine, publisher, topic_prefix=topic_prefix, public_base_url="http://tocsin.test",
                   observe_ack=metrics.observe_relay_ack, ack_timeout_s=10.0) as relay:
            # The relay runs 30 s after the events were written: each waited at least that long for its ack,
            # and at most that plus the relay's ack timeout.
            assert relay.run_once(now=T0 + timedelta(seconds=30)) == 2
    finally:
        publisher.stop()
    assert len(sub.take(2, timeout=10)) == 2
    body = metrics_text(metrics)
    assert value(body, "tocsin_relay_ack_seconds_count") == 2
    assert 60 <= value(body, "tocsin_relay_ack_seconds_sum") < 60 + 2 * 10.0
    assert value(body, "tocsin_relay_ack_seconds_bucket", le="10.0") == 0
    assert value(body, "tocsin_relay_ack_seconds_bucket", le="60.0") == 2


def metrics_text(metrics: WorkerMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


def test_sms_sends_are_timed_by_outcome(fake):
    metrics = WorkerMetrics()
    sender = TwilioSender(fake.account_sid, fake.auth_token, "+15005550006", base_url=fake.base_url, timeout_s=5,
                          observe_send=metrics.observe_sms_send)
    sender.send(ANA, "hello")
    fake.numbers_opted_out.add("+12125550102")
    with pytest.raises(DeliveryError) as permanent:
        sender.send("+12125550102", "hello")
    fake.fail_next(1, status=500)
    with pytest.raises(DeliveryError) as retryable:
        sender.send(ANA, "hello")
    assert (permanent.value.retryable, retryable.value.retryable) == (False, True)
    body = metrics_text(metrics)
    for outcome in ("accepted", "permanent", "retryable"):
        assert value(body, "tocsin_sms_send_seconds_count", outcome=outcome) == 1, outcome
    assert fake.attempts == 3


def test_port_zero_serves_nothing():
    assert WorkerMetrics().serve(host="127.0.0.1", port=0) is None


@pytest.mark.committing
def test_the_worker_serves_its_relay_sms_and_sweeper_metrics_on_its_own_port(settings, session_factory, districts,
                                                                              utility_key, fake, subscriber_factory,
                                                                              topic_prefix):
    """Report -> alert -> the worker publishes it (relay), texts Ana (fan-out) and sweeps it once, then skips
    it (sweeper) -> the worker's /metrics."""
    from fastapi.testclient import TestClient

    from tocsin import worker
    from tocsin.app import create_app

    add(session_factory, "Ana", ANA, zone("A"))
    port = free_port()
    live = settings.model_copy(update={
        "twilio_account_sid": fake.account_sid, "twilio_auth_token": SecretStr(fake.auth_token),
        "twilio_from": "+15005550006", "twilio_base_url": fake.base_url, "sms_mps": 50.0,
        "worker_metrics_port": port, "api_host": "127.0.0.1", "sweep_interval_s": 0.2})
    sub = subscriber_factory(f"{topic_prefix}/alerts/#")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(live,), kwargs={"stop": stop, "roles": ("relay", "sms", "sweeper")},
                              daemon=True)
    thread.start()
    try:
        with TestClient(create_app(live)) as client:
            r = client.post("/v1/reports", json=report(external_id="W1", category="gas_leak"),
                            headers=auth(utility_key))
            assert r.status_code == 201, r.text
        assert json.loads(sub.take(1, timeout=10)[0][1])["kind"] == "opened"
        wait_until(lambda: list(fake.messages), what="an SMS at the fake Twilio")

        def worker_metrics():
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.TransportError:
                return None
            done = value(body, "tocsin_relay_ack_seconds_count") >= 1 and \
                value(body, "tocsin_sms_send_seconds_count", outcome="accepted") == 1 and \
                value(body, "tocsin_sweeper_alerts_total", outcome="skipped") >= 1
            return body if done else None

        body = wait_until(worker_metrics, timeout=20,
                          what="the worker's /metrics to count the publish, the SMS and a sweeper pass skipping")
        assert value(body, "tocsin_sms_send_seconds_count", outcome="retryable") == 0
        # One alert: swept once, new to the sweeper (again after a full pass), and skipped otherwise.
        swept, passes = value(body, "tocsin_sweeper_alerts_total", outcome="swept"), \
            value(body, "tocsin_sweeper_pass_seconds_count")
        assert 1 <= swept <= value(body, "tocsin_sweeper_full_passes_total") + 1 and passes >= 2
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    with pytest.raises(httpx.TransportError):  # the worker stopped serving with it
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


# --- /healthz and /readyz ---------------------------------------------------------------------------------


@pytest.mark.committing
def test_readyz_is_200_when_the_database_and_the_broker_answer(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok" and "mqtt" not in r.json() and "database" not in r.json()


@pytest.mark.committing
def test_readyz_is_503_naming_the_broker_when_it_does_not_answer(make_client):
    port = free_port()  # nothing listens there: refused, as when Mosquitto is stopped
    client = make_client(mqtt_url=f"mqtt://127.0.0.1:{port}")
    r = client.get("/readyz")
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) > 0
    body = r.json()
    expected = f"mqtt broker 127.0.0.1:{port} unreachable: connection refused"
    assert (body["status"], body["detail"], body["mqtt"]) == ("unavailable", expected, expected)
    assert "database" not in body and body["workers"] == {}  # the database answered
    assert client.get("/healthz").status_code == 200
