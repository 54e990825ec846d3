"""The map's data: GET /v1/observations and WS /v1/live against the real PostGIS (LISTEN/NOTIFY)."""

import json
from datetime import UTC, datetime

import pytest
from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.integration


def report(lon: float, lat: float, *, external_id: str, category: str = "gas_leak", **props) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"external_id": external_id, "category": category, **props}}


@pytest.fixture
def tokens(session_factory):
    """An operator token per role."""
    from accounts import operators
    from db.session import transaction

    out = {}
    with transaction(session_factory) as session:
        for role in ("viewer", "operator"):
            _, out[role] = operators.add_operator(session, name=f"{role}-1", role=role, now=datetime.now(UTC))
    return out


def post_report(client, utility_key, body):
    r = client.post("/v1/reports", json=body, headers={"Authorization": f"Bearer {utility_key}"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.committing
def test_observations_need_an_operator(client):
    r = client.get("/v1/observations")
    assert r.status_code == 401
    assert "operator token" in r.json()["detail"]


@pytest.mark.committing
def test_observations_as_geojson_with_report_details(client, utility_key, tokens):
    post_report(client, utility_key, report(-73.975, 40.725, external_id="R1", customers_affected=120,
                                            cause="valve", description="smell of gas on Elm St"))
    post_report(client, utility_key, report(-73.925, 40.775, external_id="R2", category="power_outage"))
    auth = {"Authorization": f"Bearer {tokens['viewer']}"}
    body = client.get("/v1/observations", headers=auth).json()
    assert body["type"] == "FeatureCollection" and body["count"] == 2
    newest, oldest = body["features"]
    assert newest["geometry"] == {"type": "Point", "coordinates": [-73.925, 40.775]}
    props = oldest["properties"]
    assert props["event_id"] == f"obs:{oldest['id']}" and props["source"] == "utility_report"
    assert props["category"] == "gas_leak" and props["uncertainty_m"] == 25.0
    assert props["report"] == {"external_id": "R1", "status": "reported", "customers_affected": 120,
                               "cause": "valve", "description": "smell of gas on Elm St", "utility": "Test Power"}
    assert props["text"] is None  # a report's words are in its details, not shown as a post
    assert 0 <= props["age_s"] < 60

    # bbox around district A only (west, south, east, north)
    only_a = client.get("/v1/observations", params={"bbox": "-74.0,40.7,-73.95,40.75"}, headers=auth).json()
    assert [f["properties"]["report"]["external_id"] for f in only_a["features"]] == ["R1"]
    assert client.get("/v1/observations", params={"since": "2999-01-01T00:00:00Z"}, headers=auth).json()["count"] == 0
    assert client.get("/v1/observations", params={"limit": 1}, headers=auth).json()["truncated"] is True


@pytest.mark.parametrize("params, needle", [
    ({"bbox": "1,2,3"}, "bbox '1,2,3'"),
    ({"bbox": "-73.95,40.7,-74.0,40.75"}, "bbox '-73.95,40.7,-74.0,40.75'"),  # west > east
    ({"bbox": "a,b,c,d"}, "bbox 'a,b,c,d'"),
    ({"since": "2026-11-25T10:00:00"}, "since 2026-11-25T10:00:00"),
    ({"limit": "0"}, "limit"),
])
@pytest.mark.committing
def test_bad_observation_queries_get_422_naming_the_value(client, tokens, params, needle):
    r = client.get("/v1/observations", params=params, headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert r.status_code == 422, r.text
    assert needle in r.text


def next_message(ws) -> dict:
    """The next message; a frame holds one message or, for a client with a backlog, an array of them."""
    pending = ws.__dict__.setdefault("pending", [])
    if not pending:
        data = json.loads(ws.receive_text())
        pending.extend(data if isinstance(data, list) else [data])
    return pending.pop(0)


def receive(ws, *, kind: str) -> dict:
    """The next message of one type (skipping the others)."""
    for _ in range(20):
        message = next_message(ws)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message in 20")


@pytest.mark.committing
def test_live_refuses_a_bad_token(client):
    with client.websocket_connect("/v1/live?token=nope") as ws:
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
    assert info.value.code == 4401


@pytest.mark.committing
def test_live_refuses_a_bad_cursor(client, tokens):
    with client.websocket_connect(f"/v1/live?token={tokens['viewer']}&since_obs=-3") as ws:
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
    assert info.value.code == 4400 and "since_obs '-3'" in info.value.reason


@pytest.mark.committing
def test_live_pushes_observation_and_alert_event_on_commit(client, utility_key, tokens):
    with client.websocket_connect(f"/v1/live?token={tokens['viewer']}") as ws:
        hello = next_message(ws)
        assert hello["type"] == "hello" and hello["role"] == "viewer" and hello["backfill"] == 0
        assert hello["cursor"] == {"obs": 0, "evt": 0}
        created = post_report(client, utility_key, report(-73.975, 40.725, external_id="L1"))
        obs = receive(ws, kind="observation")
        assert obs["feature"]["properties"]["report"]["external_id"] == "L1"
        evt = receive(ws, kind="alert_event")
        assert evt["id"].startswith("evt:")
        assert evt["event"]["kind"] == "opened" and evt["event"]["zone"]["code"] == "A"
        assert evt["event"]["alert_id"] in created["alerts_changed"]


@pytest.mark.committing
def test_reconnect_backfills_what_was_missed(client, utility_key, tokens):
    token = tokens["operator"]
    with client.websocket_connect(f"/v1/live?token={token}") as ws:
        json.loads(ws.receive_text())
        post_report(client, utility_key, report(-73.975, 40.725, external_id="B1"))
        first_obs = receive(ws, kind="observation")
        first_evt = receive(ws, kind="alert_event")
    since_obs, since_evt = int(first_obs["id"][4:]), int(first_evt["id"][4:])
    # While nobody is connected: a report in zone B.
    post_report(client, utility_key, report(-73.925, 40.725, external_id="B2"))
    with client.websocket_connect(f"/v1/live?token={token}&since_obs={since_obs}&since_evt={since_evt}") as ws:
        hello = json.loads(ws.receive_text())
        assert hello["backfill"] >= 2
        seen = [next_message(ws) for _ in range(hello["backfill"])]
    ids = {m["id"] for m in seen}
    missed_obs = [m for m in seen if m["type"] == "observation" and m["feature"]["id"] > since_obs]
    missed_evt = [m for m in seen if m["type"] == "alert_event" and int(m["id"][4:]) > since_evt]
    assert [m["feature"]["properties"]["report"]["external_id"] for m in missed_obs] == ["B2"]
    assert [m["event"]["zone"]["code"] for m in missed_evt] == ["B"]
    assert len(ids) == len(seen)  # no duplicates within one backfill


@pytest.mark.committing
def test_one_listener_fans_out_to_every_client(client, utility_key, tokens):
    hub = client.app.state.live_hub
    with client.websocket_connect(f"/v1/live?token={tokens['viewer']}") as a, \
            client.websocket_connect("/v1/live", headers={"Authorization": f"Bearer {tokens['operator']}"}) as b:
        json.loads(a.receive_text())
        assert json.loads(b.receive_text())["role"] == "operator"  # a bearer header works too
        assert len(hub.clients) == 2
        post_report(client, utility_key, report(-73.925, 40.775, external_id="F1", category="power_outage"))
        got_a, got_b = receive(a, kind="observation"), receive(b, kind="observation")
    assert got_a == got_b
    assert got_a["feature"]["properties"]["category"] == "power_outage"


def test_a_burst_naming_more_ids_than_one_read_returns_is_read_in_pages(session_factory):
    """Two bulk inserts can NOTIFY more observation ids than one query may return: every one is read."""
    from sqlalchemy import text

    from tocsin import live_feed

    now = datetime.now(UTC)
    with session_factory.begin() as s:
        ids = s.execute(text(
            "INSERT INTO observations (source, external_id, category, confidence, observed_at, received_at, geom, "
            "uncertainty_m, geotag_method) SELECT 'post', 'p' || g, 'flood', 0.9, :now, :now, "
            "ST_SetSRID(ST_MakePoint(-73.97 + g * 0.001, 40.72), 4326), 10, 'coordinates' "
            "FROM generate_series(1, 5) g RETURNING id"), {"now": now}).scalars().all()
    with session_factory() as s:
        messages = live_feed.read_by_ids(s, obs_ids=list(reversed(ids)) + ids[:1], evt_ids=[], now=now, page_size=2)
    assert [m.row_id for m in messages] == sorted(ids)  # every id once, oldest first
