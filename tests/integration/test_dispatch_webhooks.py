"""Twilio webhooks (signed like Twilio signs), the ack round trip, /metrics and the parked-outbox API."""

import json
import threading

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from accounts import operators
from db.session import transaction
from dispatch import responders as responder_service
from dispatch.schemas import CoverageSpec
from dispatch.twilio_signature import compute_twilio_signature
from tests.fakes.twilio_server import run_fake_twilio
from tests.integration.dispatch_support import T0, open_alert, wait_until
from tests.integration.metrics_support import families, samples, value

# The app, on the engine its lifespan opens.
pytestmark = [pytest.mark.integration, pytest.mark.committing]
TOKEN = "f" * 32
ANA = "+12125550101"


@pytest.fixture
def twilio_settings(settings):
    return settings.model_copy(update={"twilio_auth_token": SecretStr(TOKEN)})


@pytest.fixture
def tw_client(twilio_settings, districts):
    from tocsin.app import create_app

    with TestClient(create_app(twilio_settings)) as c:
        yield c


def post_signed(client, path, params, *, token=TOKEN, url_base="http://tocsin.test"):
    signature = compute_twilio_signature(url_base + path, params, token)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def ana(session_factory, districts):
    with transaction(session_factory) as session:
        return responder_service.create_responder(session, name="Ana", phone=ANA, now=T0,
                                                  coverage=[CoverageSpec(layer="district", zone="A")]).id


def alert_row(factory, alert_id):
    with factory() as session:
        return session.execute(text("SELECT state, acknowledged_by FROM alerts WHERE id = :id"), {"id": alert_id}).one()


@pytest.mark.parametrize("path", ["/v1/twilio/status", "/v1/twilio/inbound"])
def test_forged_or_missing_signature_is_403(tw_client, path):
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "From": ANA, "Body": "ACK BCD"}
    r = tw_client.post(path, data=params, headers={"X-Twilio-Signature": "forged+signature="})
    assert r.status_code == 403 and "X-Twilio-Signature forged+signa..." in r.json()["detail"]
    assert tw_client.post(path, data=params).status_code == 403
    r = post_signed(tw_client, path, params, url_base="http://elsewhere.test")  # signed for another URL
    assert r.status_code == 403 and f"http://tocsin.test{path}" in r.json()["detail"]
    assert post_signed(tw_client, path, params, token="0" * 32).status_code == 403


def test_webhooks_refused_without_a_twilio_token(client):
    r = client.post("/v1/twilio/inbound", data={"From": ANA, "Body": "STOP"})
    assert r.status_code == 403 and "TOCSIN_TWILIO_AUTH_TOKEN" in r.json()["detail"]


def test_status_callbacks_update_the_delivery_and_never_go_backwards(tw_client, session_factory, ana):
    alert = open_alert(session_factory, now=T0)
    with transaction(session_factory) as session:
        session.execute(text(
            "INSERT INTO deliveries (event_id, alert_id, responder_id, body, status, provider_sid, attempts, "
            "next_attempt_at, created_at, updated_at) VALUES (gen_random_uuid(), :a, :r, 'x', 'sent', 'SM1', 1, "
            ":t, :t, :t)"), {"a": alert.id, "r": ana, "t": T0})

    def status():
        with session_factory() as session:
            return session.execute(text("SELECT status, last_error FROM deliveries")).one()

    for twilio_status, expected in [("sent", "sent"), ("delivered", "delivered"), ("sent", "delivered")]:
        r = post_signed(tw_client, "/v1/twilio/status", {"MessageSid": "SM1", "MessageStatus": twilio_status})
        assert r.status_code == 204, r.text
        assert status()[0] == expected
    r = post_signed(tw_client, "/v1/twilio/status", {"MessageSid": "SM1", "MessageStatus": "undelivered",
                                                     "ErrorCode": "30003"})
    assert r.status_code == 204 and status() == ("undelivered", "twilio error 30003")
    r = post_signed(tw_client, "/v1/twilio/status", {"MessageStatus": "sent"})
    assert r.status_code == 422 and "'MessageSid'" in r.json()["detail"]


@pytest.mark.parametrize("template", ["ACK {code}", "{code}", "ack {low}", "  Ack: {low} "])
def test_inbound_ack_acknowledges_and_records_who(tw_client, session_factory, ana, template):
    alert = open_alert(session_factory, now=T0)
    body = template.format(code=alert.ack_code, low=alert.ack_code.lower())
    r = post_signed(tw_client, "/v1/twilio/inbound", {"From": ANA, "Body": body})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert f"<Message>Acknowledged gas leak alert {alert.ack_code}. Thank you, Ana.</Message>" in r.text
    state, by = alert_row(session_factory, alert.id)
    assert state == "acknowledged" and "Ana" in by
    with session_factory() as session:
        kinds = session.execute(text("SELECT kind FROM outbox_events WHERE alert_id = :a ORDER BY id"),
                                {"a": alert.id}).scalars().all()
    assert kinds == ["opened", "acknowledged"]

    again = post_signed(tw_client, "/v1/twilio/inbound", {"From": ANA, "Body": body})
    assert f"Alert {alert.ack_code} was already acknowledged by Ana." in again.text


def test_inbound_unknown_code_and_unknown_sender_get_helpful_replies(tw_client, session_factory, ana):
    alert = open_alert(session_factory, now=T0)
    r = post_signed(tw_client, "/v1/twilio/inbound", {"From": ANA, "Body": "ACK ZZZZ"})
    assert "Unknown code ZZZZ. Reply ACK and the code from your alert SMS" in r.text
    r = post_signed(tw_client, "/v1/twilio/inbound", {"From": ANA, "Body": "what is going on?"})
    assert "reply ACK and the code from your alert" in r.text
    r = post_signed(tw_client, "/v1/twilio/inbound", {"From": "+12125559999", "Body": f"ACK {alert.ack_code}"})
    assert "not on the Tocsin responder roster" in r.text
    assert alert_row(session_factory, alert.id)[0] == "open"


def test_stop_and_start(tw_client, session_factory, ana):
    def opted_out():
        with session_factory() as session:
            return session.execute(text("SELECT opted_out FROM responders WHERE id = :i"), {"i": ana}).scalar()

    r = post_signed(tw_client, "/v1/twilio/inbound", {"From": ANA, "Body": "STOP"})
    assert r.status_code == 200 and "Reply START to opt back in" in r.text and opted_out() is True
    r = post_signed(tw_client, "/v1/twilio/inbound", {"From": ANA, "Body": "start"})
    assert "Reply STOP to opt out" in r.text and opted_out() is False


def test_ack_round_trip(settings, session_factory, districts, utility_key, ana, subscriber_factory, topic_prefix):
    """Report -> alert -> SMS at the fake Twilio -> signed "ACK <code>" -> acknowledged -> MQTT event."""
    from tocsin import worker
    from tocsin.app import create_app

    with run_fake_twilio(auth_token=TOKEN) as fake:
        fake.callbacks_enabled = False
        live = settings.model_copy(update={
            "twilio_account_sid": fake.account_sid, "twilio_auth_token": SecretStr(TOKEN),
            "twilio_from": "+15005550006", "twilio_base_url": fake.base_url, "sms_mps": 50.0})
        sub = subscriber_factory(f"{topic_prefix}/alerts/#")
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(live,), kwargs={"stop": stop}, daemon=True)
        thread.start()
        try:
            with TestClient(create_app(live)) as client:
                feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.975, 40.725]},
                           "properties": {"external_id": "RT1", "category": "gas_leak"}}
                r = client.post("/v1/reports", json=feature, headers={"Authorization": f"Bearer {utility_key}"})
                assert r.status_code == 201, r.text
                opened = json.loads(sub.take(1, timeout=10)[0][1])
                assert opened["kind"] == "opened"
                [sms] = wait_until(lambda: list(fake.messages), what="an SMS at the fake Twilio")
                assert sms["to"] == ANA and f"ACK {opened['ack_code']}" in sms["body"]

                r = post_signed(client, "/v1/twilio/inbound", {"From": ANA, "Body": f"ACK {opened['ack_code']}"})
                assert "Acknowledged" in r.text
                acked = json.loads(sub.take(1, timeout=10)[0][1])
                assert (acked["kind"], acked["state"], acked["alert_id"]) == ("acknowledged", "acknowledged",
                                                                              opened["alert_id"])
                with session_factory() as session:
                    status = session.execute(text("SELECT status FROM deliveries")).scalar_one()
                assert status == "sent"
        finally:
            stop.set()
            thread.join(10)


# --- admin views: parked outbox events and /metrics --------------------------------------------


@pytest.fixture
def admin_headers(session_factory):
    with transaction(session_factory) as session:
        _, token = operators.add_operator(session, name="root", role="admin", now=T0)
    return {"Authorization": f"Bearer {token}"}


def test_parked_events_are_listed_and_can_be_retried(client, session_factory, admin_headers):
    first = open_alert(session_factory, code="A", now=T0)
    open_alert(session_factory, code="B", now=T0)
    with transaction(session_factory) as session:
        session.execute(text("UPDATE outbox_events SET parked_at = now(), attempts = 12, last_error = 'broker gone' "
                             "WHERE alert_id = :a"), {"a": first.id})
    r = client.get("/v1/outbox?state=parked", headers=admin_headers)
    assert r.status_code == 200, r.text
    [parked] = r.json()
    assert (parked["alert_id"], parked["attempts"], parked["last_error"]) == (first.id, 12, "broker gone")
    assert [e["kind"] for e in client.get("/v1/outbox?state=pending", headers=admin_headers).json()] == ["opened"]
    assert client.get("/v1/outbox?state=lost", headers=admin_headers).status_code == 422
    assert client.get("/v1/outbox?state=parked").status_code == 401

    r = client.post(f"/v1/outbox/{parked['id']}/retry", headers=admin_headers)
    assert r.status_code == 200
    assert client.get("/v1/outbox?state=parked", headers=admin_headers).json() == []
    r = client.post(f"/v1/outbox/{parked['id']}/retry", headers=admin_headers)
    assert r.status_code == 409 and str(parked["id"]) in r.json()["detail"]


def test_metrics(client, session_factory):
    alert = open_alert(session_factory, now=T0)
    open_alert(session_factory, code="B", now=T0)
    with transaction(session_factory) as session:
        session.execute(text("UPDATE outbox_events SET parked_at = now() WHERE alert_id = :a"), {"a": alert.id})
        session.execute(text("INSERT INTO dispatch_counters VALUES ('fanout_queue_ceiling_warnings', 3)"))
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    body = r.text
    assert value(body, "tocsin_outbox_events", state="pending") == 1
    assert value(body, "tocsin_outbox_events", state="parked") == 1
    assert samples(body, "tocsin_deliveries", channel="sms", status="failed") == [
        ({"channel": "sms", "status": "failed"}, 0)]
    assert len(samples(body, "tocsin_deliveries", channel="sms")) == 8  # every status, even at 0
    assert value(body, "tocsin_fanout_queue_ceiling_warnings_total") == 3
    # Every series /metrics had before prometheus_client, under the same names and types.
    assert families(body).items() >= {
        "tocsin_outbox_events": "gauge", "tocsin_deliveries": "gauge",
        "tocsin_fanout_queue_ceiling_warnings": "counter", "tocsin_fanout_errors": "counter",
        "tocsin_sms_claims_recovered": "counter", "tocsin_worker_heartbeat_age_seconds": "gauge",
        "tocsin_worker_role_up": "gauge", "tocsin_report_batches": "counter",
        "tocsin_report_batch_reports": "counter"}.items()
    assert samples(body, "tocsin_report_batches_total")[0][0].keys() == {"pid"}
