"""GET /v1/alerts/{id}/deliveries (who was notified) and POST /v1/alerts/{id}/escalate over HTTP against the
real PostGIS."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.integration.operators_support import auth, tokens  # noqa: F401  (tokens is a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.committing]


def raise_alert(client, utility_key, *, external_id="D1") -> int:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.975, 40.725]},
               "properties": {"external_id": external_id, "category": "gas_leak"}}
    r = client.post("/v1/reports", json=feature, headers=auth(utility_key))
    assert r.status_code == 201, r.text
    [alert_id] = r.json()["alerts_changed"]
    return alert_id


def add_deliveries(session_factory, alert_id: int) -> None:
    """Two responders paged for the alert's opening event, as the fan-out writes them."""
    from db.session import transaction
    from dispatch import responders

    now = datetime.now(UTC)
    with transaction(session_factory) as session:
        ana = responders.create_responder(session, name="Ana", phone="+12125550101", coverage=[], now=now)
        ben = responders.create_responder(session, name="Ben", phone="+12125550102", coverage=[], now=now)
        session.flush()
        event_id = session.execute(text("SELECT event_id FROM outbox_events WHERE alert_id = :a ORDER BY id LIMIT 1"),
                                   {"a": alert_id}).scalar_one()
        for responder, tier, status, at in ((ana, 1, "delivered", now), (ben, 2, "failed", now + timedelta(seconds=1))):
            session.execute(text(
                "INSERT INTO deliveries (event_id, alert_id, responder_id, channel, tier, body, status, attempts, "
                "next_attempt_at, created_at, updated_at) VALUES (:e, :a, :r, 'sms', :t, 'Gas leak', :s, 1, :at, :at, "
                ":at)"), {"e": event_id, "a": alert_id, "r": responder.id, "t": tier, "s": status, "at": at})


def test_deliveries_say_who_was_notified_and_who_acknowledged(client, tokens, utility_key, session_factory):
    from db.session import transaction
    from dispatch import acks

    alert_id = raise_alert(client, utility_key)
    r = client.get(f"/v1/alerts/{alert_id}/deliveries", headers=auth(tokens["olive"]))
    assert r.status_code == 200 and r.json() == []

    add_deliveries(session_factory, alert_id)
    code = client.get(f"/v1/alerts/{alert_id}", headers=auth(tokens["olive"])).json()["ack_code"]
    with transaction(session_factory) as session:
        assert acks.handle_inbound(session, from_phone="+12125550101", body=f"ACK {code}",
                                   now=datetime.now(UTC)).acknowledged

    r = client.get(f"/v1/alerts/{alert_id}/deliveries", headers=auth(tokens["ada"]))
    assert r.status_code == 200, r.text
    got = [(d["responder"], d["channel"], d["tier"], d["status"], d["event_kind"], d["acknowledged"])
           for d in r.json()]
    assert got == [("Ana", "sms", 1, "delivered", "opened", True), ("Ben", "sms", 2, "failed", "opened", False)]
    assert all(datetime.fromisoformat(d["created_at"]).tzinfo for d in r.json())


def test_deliveries_need_an_operator_and_an_alert(client, tokens, utility_key):
    alert_id = raise_alert(client, utility_key)
    r = client.get(f"/v1/alerts/{alert_id}/deliveries")
    assert r.status_code == 401
    r = client.get(f"/v1/alerts/{alert_id}/deliveries", headers=auth("to_not-a-real-token"))
    assert r.status_code == 401
    r = client.get(f"/v1/alerts/{alert_id}/deliveries", headers=auth(tokens["vera"]))
    assert r.status_code == 403 and "operator" in r.json()["detail"]
    r = client.get(f"/v1/alerts/{alert_id + 1000}/deliveries", headers=auth(tokens["olive"]))
    assert r.status_code == 404 and str(alert_id + 1000) in r.json()["detail"]
    for bad in ("0", "-1", "abc", str(2**63)):
        r = client.get(f"/v1/alerts/{bad}/deliveries", headers=auth(tokens["olive"]))
        assert r.status_code == 422, (bad, r.status_code)


def test_openapi_documents_the_deliveries_errors(client):
    op = client.get("/openapi.json").json()["paths"]["/v1/alerts/{alert_id}/deliveries"]["get"]
    assert {"200", "401", "403", "404", "422"} <= set(op["responses"])


def test_escalate_by_hand_records_the_operator_and_queues_a_tick(client, tokens, utility_key, session_factory):
    alert_id = raise_alert(client, utility_key, external_id="X1")
    r = client.post(f"/v1/alerts/{alert_id}/escalate", json={"note": "no answer from tier 1"},
                    headers=auth(tokens["olive"]))
    assert r.status_code == 200, r.text
    last = r.json()["history"][-1]
    assert last["actor"] == "operator:olive" and last["to_state"] == "open"
    assert last["reason"] == "escalated to tier 2: no answer from tier 1"
    with session_factory() as session:
        ticks, payload = session.execute(text(
            "SELECT a.escalation_ticks, o.payload FROM alerts a JOIN outbox_events o ON o.alert_id = a.id "
            "WHERE a.id = :a AND o.kind = 'escalation_tick'"), {"a": alert_id}).one()
    assert ticks == 1 and payload["tier_due"] == 2 and payload["alert_id"] == alert_id

    r = client.post(f"/v1/alerts/{alert_id}/escalate", headers=auth(tokens["olive"]))
    assert r.status_code == 200 and r.json()["history"][-1]["reason"] == "escalated to tier 3"

    r = client.post(f"/v1/alerts/{alert_id}/escalate", headers=auth(tokens["vera"]))
    assert r.status_code == 403
    assert client.post(f"/v1/alerts/{alert_id}/escalate").status_code == 401
    assert client.post(f"/v1/alerts/{alert_id + 1000}/escalate", headers=auth(tokens["olive"])).status_code == 404
    r = client.post(f"/v1/alerts/{alert_id}/escalate", json={"note": 5}, headers=auth(tokens["olive"]))
    assert r.status_code == 422
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=auth(tokens["olive"]))
    assert r.status_code == 200
    r = client.post(f"/v1/alerts/{alert_id}/escalate", headers=auth(tokens["olive"]))
    assert r.status_code == 409 and "acknowledged" in r.json()["detail"]
    op = client.get("/openapi.json").json()["paths"]["/v1/alerts/{alert_id}/escalate"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(op["responses"])
