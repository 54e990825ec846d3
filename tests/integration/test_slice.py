"""The thin slice end to end: POST a report, a real MQTT subscriber receives the alert event."""

import json

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.committing, pytest.mark.pooled]


def feature(lon: float, lat: float, *, external_id: str = "R1", category: str = "gas_leak") -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"external_id": external_id, "category": category}}


def test_report_raises_one_alert_event_on_mqtt(client, utility_key, relay, subscriber_factory, topic_prefix):
    sub = subscriber_factory(f"{topic_prefix}/alerts/#")
    r = client.post("/v1/reports", json=feature(-73.975, 40.725),
                    headers={"Authorization": f"Bearer {utility_key}"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["zones"]["district"][0]["code"] == "A"
    assert body["zones"]["precinct"][0]["code"] == "P1"
    assert r.headers["Location"] == f"/v1/reports/{body['id']}"

    [(topic, payload)] = sub.take(1, timeout=10)
    event = json.loads(payload)
    assert topic == f"{topic_prefix}/alerts/district/A/gas_leak"
    assert event["zone"] == {"layer": "district", "code": "A", "name": "District A"}
    assert event["kind"] == "opened" and event["severity"] == "critical" and event["state"] == "open"
    assert event["alert_id"] in body["alerts_changed"]
    assert event["link"] == f"http://tocsin.test/a/{event['alert_id']}"
    # Exactly one: no duplicate, and no event for the precinct layer the rule does not count in.
    assert sub.drain(wait=1.0) == []


def test_point_in_other_zone_names_that_zone(client, utility_key, relay, subscriber_factory, topic_prefix):
    sub = subscriber_factory(f"{topic_prefix}/alerts/#")
    r = client.post("/v1/reports", json=feature(-73.925, 40.775, external_id="R2"),
                    headers={"Authorization": f"Bearer {utility_key}"})
    assert r.status_code == 201, r.text
    [(topic, payload)] = sub.take(1, timeout=10)
    assert json.loads(payload)["zone"]["code"] == "C"
    assert topic.endswith("/alerts/district/C/gas_leak")


def test_event_waits_in_outbox_until_a_relay_runs(client, utility_key, subscriber_factory, topic_prefix, settings):
    """Accepted before any relay exists: nothing is lost, it is published when the relay starts."""
    import threading

    from tocsin import worker

    sub = subscriber_factory(f"{topic_prefix}/alerts/#")
    r = client.post("/v1/reports", json=feature(-73.925, 40.725, external_id="R3"),
                    headers={"Authorization": f"Bearer {utility_key}"})
    assert r.status_code == 201
    assert sub.drain(wait=0.5) == []
    stop = threading.Event()
    t = threading.Thread(target=worker.run, args=(settings,), kwargs={"stop": stop}, daemon=True)
    t.start()
    try:
        [(topic, _)] = sub.take(1, timeout=10)
        assert topic.endswith("/alerts/district/B/gas_leak")
    finally:
        stop.set()
        t.join(10)
