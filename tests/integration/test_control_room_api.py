"""The control room over HTTP against the real PostGIS: operators and roles, alerts, silences, CAP, sessions."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from alerts.cap import CAP_NS, parse_cap

pytestmark = pytest.mark.integration
NS = {"cap": CAP_NS}


@pytest.fixture
def tokens(session_factory):
    """One enabled operator per role, plus a disabled one: name -> token."""
    from accounts import operators
    from db.session import transaction

    now = datetime.now(UTC)
    out = {}
    with transaction(session_factory) as session:
        for name, role in (("vera", "viewer"), ("olive", "operator"), ("ada", "admin"), ("gone", "operator")):
            _, out[name] = operators.add_operator(session, name=name, role=role, now=now)
        operators.disable_operator(session, name="gone", now=now)
    return out


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def raise_alert(client, utility_key, *, lon=-73.975, lat=40.725, external_id="G1") -> int:
    """A utility gas-leak report; the test rules open a critical alert in its district at once."""
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
               "properties": {"external_id": external_id, "category": "gas_leak"}}
    r = client.post("/v1/reports", json=feature, headers=auth(utility_key))
    assert r.status_code == 201, r.text
    [alert_id] = r.json()["alerts_changed"]
    return alert_id


@pytest.mark.committing
def test_missing_wrong_disabled_or_utility_token_is_401(client, tokens, utility_key):
    r = client.get("/v1/alerts")
    assert r.status_code == 401 and "missing operator token" in r.json()["detail"]
    assert r.headers["WWW-Authenticate"] == "Bearer"
    for token in ("to_not-a-real-token", tokens["gone"], utility_key):
        r = client.get("/v1/alerts", headers=auth(token))
        assert r.status_code == 401, token
        assert r.json()["detail"] == "invalid or disabled operator token"
        assert token not in r.text


@pytest.mark.committing
def test_viewer_reads_but_cannot_change(client, tokens, utility_key):
    alert_id = raise_alert(client, utility_key)
    viewer = auth(tokens["vera"])

    r = client.get("/v1/alerts", headers=viewer)
    assert r.status_code == 200, r.text
    [item] = r.json()
    assert item["id"] == alert_id and item["state"] == "open" and item["severity"] == "critical"
    assert item["zone"] == {"layer": "district", "code": "A", "name": "District A"}
    assert item["links"]["cap"] == f"/v1/alerts/{alert_id}.cap"

    detail = client.get(f"/v1/alerts/{alert_id}", headers=viewer).json()
    assert len(detail["evidence"]) == 1 and detail["evidence"][0]["source"] == "utility_report"
    assert [h["to_state"] for h in detail["history"]] == ["open"]

    for path, body in ((f"/v1/alerts/{alert_id}/acknowledge", {"note": "on it"}),
                       (f"/v1/alerts/{alert_id}/resolve", None)):
        r = client.post(path, json=body, headers=viewer)
        assert r.status_code == 403, r.text
        assert "'viewer'" in r.json()["detail"] and "'operator'" in r.json()["detail"]
    assert client.get(f"/v1/alerts/{alert_id}", headers=viewer).json()["state"] == "open"


@pytest.mark.committing
def test_operator_acknowledges_with_note_in_history_and_outbox(client, tokens, utility_key, engine):
    alert_id = raise_alert(client, utility_key)
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge", json={"note": "engine 7 en route"},
                    headers=auth(tokens["olive"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "acknowledged"
    ack = [h for h in body["history"] if h["to_state"] == "acknowledged"]
    assert len(ack) == 1
    assert "olive" in ack[0]["actor"]
    assert "engine 7 en route" in json.dumps(ack[0])
    with engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind FROM outbox_events WHERE alert_id = :id ORDER BY id"),
                             {"id": alert_id}).scalars().all()
    assert "acknowledged" in kinds


@pytest.mark.committing
def test_resolve_twice_is_409_naming_the_state(client, tokens, utility_key):
    alert_id = raise_alert(client, utility_key)
    admin = auth(tokens["ada"])
    r = client.post(f"/v1/alerts/{alert_id}/resolve", json={"note": "false alarm, checked"}, headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "resolved", r.text
    r = client.post(f"/v1/alerts/{alert_id}/resolve", headers=admin)
    assert r.status_code == 409
    assert "resolved" in r.json()["detail"]
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=admin)
    assert r.status_code == 409 and "resolved" in r.json()["detail"]


@pytest.mark.committing
def test_unknown_alert_is_404(client, tokens):
    olive = auth(tokens["olive"])
    for method, path in (("get", "/v1/alerts/987654"), ("get", "/v1/alerts/987654.cap"),
                         ("post", "/v1/alerts/987654/acknowledge"), ("post", "/v1/alerts/987654/resolve")):
        r = getattr(client, method)(path, headers=olive)
        assert r.status_code == 404, (path, r.text)
        assert "987654" in r.json()["detail"]


@pytest.mark.committing
def test_acknowledge_body_is_validated(client, tokens, utility_key):
    alert_id = raise_alert(client, utility_key)
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge", json={"note": "x" * 1001}, headers=auth(tokens["olive"]))
    assert r.status_code == 422 and "note" in r.text
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge", json={"nope": 1}, headers=auth(tokens["olive"]))
    assert r.status_code == 422 and "nope" in r.text


@pytest.mark.parametrize("method, path, kwargs, named", [
    ("get", "/v1/alerts", {"params": {"layer": "a\x00b"}}, "layer"),
    ("get", "/v1/alerts/99999999999999999999", {}, "alert_id"),
    ("get", "/v1/alerts/abc.cap", {}, "alert_id"),
    ("post", "/v1/alerts/1/acknowledge", {"json": {"note": "x\x00y"}}, "NUL"),
    ("post", "/v1/silences", {"json": {"matchers": {"zone": "A"}, "ends_at": "2030-01-01T00:00:00Z",
                                       "comment": "c\x00"}}, "NUL"),
    ("delete", "/v1/silences/99999999999999999999", {}, "silence_id"),
])
@pytest.mark.committing
def test_hostile_input_is_a_422_not_a_500(client, tokens, method, path, kwargs, named):
    r = getattr(client, method)(path, headers=auth(tokens["ada"]), **kwargs)
    assert r.status_code == 422, r.text
    assert named in r.text


@pytest.mark.committing
def test_list_filters(client, tokens, utility_key):
    in_a = raise_alert(client, utility_key, external_id="GA")
    in_c = raise_alert(client, utility_key, lon=-73.925, lat=40.775, external_id="GC")
    viewer = auth(tokens["vera"])
    client.post(f"/v1/alerts/{in_c}/acknowledge", headers=auth(tokens["olive"]))

    def ids(**params):
        r = client.get("/v1/alerts", params=params, headers=viewer)
        assert r.status_code == 200, r.text
        return sorted(a["id"] for a in r.json())

    assert ids() == sorted([in_a, in_c])
    assert ids(zone="A") == [in_a]
    assert ids(layer="district") == sorted([in_a, in_c])
    assert ids(layer="precinct") == []
    assert ids(category="gas_leak") == sorted([in_a, in_c])
    assert ids(category="flood") == []
    assert ids(state="acknowledged") == [in_c]
    assert ids(state="open") == [in_a]
    assert ids(since=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    assert ids(since=(datetime.now(UTC) - timedelta(hours=1)).isoformat()) == sorted([in_a, in_c])

    r = client.get("/v1/alerts", params={"since": "2026-11-25T10:00:00"}, headers=viewer)
    assert r.status_code == 422 and "since" in r.text
    r = client.get("/v1/alerts", params={"state": "closed"}, headers=viewer)
    assert r.status_code == 422 and "state" in r.text


@pytest.mark.committing
def test_silences_create_list_expire(client, tokens):
    admin, viewer = auth(tokens["ada"]), auth(tokens["vera"])
    now = datetime.now(UTC)
    body = {"matchers": {"layer": "district", "zone": "A"}, "ends_at": (now + timedelta(hours=2)).isoformat(),
            "comment": "planned gas works on 5th St"}

    assert client.post("/v1/silences", json=body, headers=viewer).status_code == 403
    r = client.post("/v1/silences", json=body, headers=admin)
    assert r.status_code == 201, r.text
    silence = r.json()
    assert silence["matchers"] == {"layer": "district", "zone": "A"}
    assert silence["created_by"] == "operator:ada"
    assert r.headers["Location"] == f"/v1/silences/{silence['id']}"

    listed = client.get("/v1/silences", headers=viewer).json()
    assert [s["id"] for s in listed] == [silence["id"]]

    assert client.delete(f"/v1/silences/{silence['id']}", headers=viewer).status_code == 403
    assert client.delete(f"/v1/silences/{silence['id']}", headers=admin).status_code == 204
    assert client.get("/v1/silences", headers=viewer).json() == []
    expired = client.get("/v1/silences", params={"include_expired": "true"}, headers=viewer).json()
    assert [s["expired_by"] for s in expired] == ["operator:ada"]
    r = client.delete("/v1/silences/424242", headers=admin)
    assert r.status_code == 404 and "424242" in r.json()["detail"]


@pytest.mark.parametrize("change, named", [
    ({"starts_at": "2030-01-01T12:00:00Z", "ends_at": "2030-01-01T11:00:00Z"}, "ends_at"),
    ({"ends_at": "2001-01-01T00:00:00Z"}, "ends_at"),
    ({"ends_at": "2030-01-01T11:00:00"}, "timezone"),
    ({"matchers": {}}, "matchers"),
    ({"matchers": {"colour": "red"}}, "colour"),
    ({"comment": ""}, "comment"),
])
@pytest.mark.committing
def test_silence_validation_names_the_problem(client, tokens, change, named):
    body = {"matchers": {"category": "flood"}, "ends_at": "2030-01-01T11:00:00Z", "comment": "drill", **change}
    r = client.post("/v1/silences", json=body, headers=auth(tokens["olive"]))
    assert r.status_code == 422, r.text
    assert named in r.text


def cap_of(client, alert_id, headers):
    r = client.get(f"/v1/alerts/{alert_id}.cap", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/cap+xml")
    return parse_cap(r.content)


@pytest.mark.committing
def test_cap_follows_the_lifecycle(client, tokens, utility_key):
    alert_id = raise_alert(client, utility_key)
    viewer, olive = auth(tokens["vera"]), auth(tokens["olive"])

    first = cap_of(client, alert_id, viewer)
    assert first.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert first.findtext("cap:identifier", namespaces=NS) == f"tocsin-alert-{alert_id}-v1"
    assert first.findtext("cap:sender", namespaces=NS) == "tocsin@localhost"
    assert first.findtext("cap:info/cap:certainty", namespaces=NS) == "Observed"
    assert first.findtext("cap:info/cap:web", namespaces=NS) == f"http://tocsin.test/a/{alert_id}"
    [polygon] = first.findall("cap:info/cap:area/cap:polygon", NS)
    points = polygon.text.split(" ")
    assert len(points) == 5 and points[0] == points[-1]
    assert {p for p in points} == {"40.700000,-74.000000", "40.700000,-73.950000",
                                   "40.750000,-73.950000", "40.750000,-74.000000"}
    first_ref = (f"tocsin@localhost,tocsin-alert-{alert_id}-v1,"
                 f"{first.findtext('cap:sent', namespaces=NS)}")

    client.post(f"/v1/alerts/{alert_id}/acknowledge", json={"note": "seen"}, headers=olive)
    update = cap_of(client, alert_id, viewer)
    assert update.findtext("cap:msgType", namespaces=NS) == "Update"
    assert update.findtext("cap:identifier", namespaces=NS) == f"tocsin-alert-{alert_id}-v2"
    assert update.findtext("cap:references", namespaces=NS) == first_ref

    client.post(f"/v1/alerts/{alert_id}/resolve", json={"note": "made safe"}, headers=olive)
    cancel = cap_of(client, alert_id, viewer)
    assert cancel.findtext("cap:msgType", namespaces=NS) == "Cancel"
    assert cancel.findtext("cap:identifier", namespaces=NS) == f"tocsin-alert-{alert_id}-v3"
    assert cancel.findtext("cap:references", namespaces=NS).split(" ")[0] == first_ref
    assert len(cancel.findtext("cap:references", namespaces=NS).split(" ")) == 2
    # The same version renders the same message.
    assert client.get(f"/v1/alerts/{alert_id}.cap", headers=viewer).content == \
        client.get(f"/v1/alerts/{alert_id}.cap", headers=viewer).content


@pytest.mark.committing
def test_cap_from_the_endpoint_validates_against_the_oasis_xsd(client, tokens, utility_key, settings):
    from alerts.cap import validate_cap

    xsd = settings.shared_data_dir / "cap" / "CAP-v1.2.xsd"
    if not xsd.exists():
        pytest.skip(f"reference data {xsd} is absent")
    alert_id = raise_alert(client, utility_key)
    olive = auth(tokens["olive"])
    for step in (None, "acknowledge", "resolve"):
        if step:
            assert client.post(f"/v1/alerts/{alert_id}/{step}", headers=olive).status_code == 200
        xml = client.get(f"/v1/alerts/{alert_id}.cap", headers=olive).content
        assert validate_cap(xml, xsd) == [], step


@pytest.mark.parametrize("role, needed, allowed", [
    ("viewer", "viewer", True), ("viewer", "operator", False), ("viewer", "admin", False),
    ("operator", "viewer", True), ("operator", "operator", True), ("operator", "admin", False),
    ("admin", "viewer", True), ("admin", "operator", True), ("admin", "admin", True),
])
def test_role_ladder(role, needed, allowed):
    from accounts.operators import role_allows

    assert role_allows(role, needed) is allowed


@pytest.mark.committing
def test_session_cookie_sign_in_and_out(client, tokens):
    same = {"Origin": "http://tocsin.test"}  # the tests' public_base_url; a browser sends it on every write
    r = client.post("/v1/session", json={"token": tokens["olive"]}, headers=same)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "olive", "role": "operator", "agencies": []}
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("tocsin_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # http public_base_url in tests; https turns it on
    assert tokens["olive"] not in cookie  # the cookie carries a session id, never the token

    assert client.get("/v1/alerts").status_code == 200  # the client now carries the cookie
    assert client.get("/v1/session").json()["name"] == "olive"

    stolen = client.cookies["tocsin_session"]
    assert client.delete("/v1/session", headers=same).status_code == 204
    assert client.get("/v1/alerts").status_code == 401
    client.cookies.set("tocsin_session", stolen)  # a copy of the cookie kept by someone is dead too
    r = client.get("/v1/alerts")
    assert r.status_code == 401 and r.json()["detail"].startswith("session revoked (signed out)")

    r = client.post("/v1/session", data={"token": tokens["vera"]}, headers=same)
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    client.cookies.clear()

    assert client.post("/v1/session", json={"token": "to_wrong"}, headers=same).status_code == 401
    r = client.post("/v1/session", json={"tok": "x"}, headers=same)
    assert r.status_code == 422 and "token" in r.json()["detail"]
    r = client.post("/v1/session", content=b"token=x", headers={"Content-Type": "text/plain", **same})
    assert r.status_code == 422 and "text/plain" in r.json()["detail"]


def test_cap_polygons_are_simplified_to_the_point_limit(session_factory):
    """A 600-vertex circle and a two-part zone: every CAP ring closed, <= 100 points, area kept."""
    import math

    from shapely.geometry import MultiPolygon, Polygon

    from alerts.cap_data import zone_polygons
    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord

    circle = Polygon([(-74.2 + 0.02 * math.cos(2 * math.pi * k / 600), 40.55 + 0.015 * math.sin(2 * math.pi * k / 600))
                      for k in range(600)])
    square = Polygon([(-74.25, 40.50), (-74.24, 40.50), (-74.24, 40.51), (-74.25, 40.51)])
    with transaction(session_factory) as session:
        zone_service.upsert_zones(session, layer="detail", records=[
            ZoneRecord(code="CIRCLE", name="Circle", geometry=MultiPolygon([circle]), properties={}),
            ZoneRecord(code="TWO", name="Two parts", geometry=MultiPolygon([circle, square]), properties={}),
        ])
        ids = dict(session.execute(text("SELECT code, id FROM zones WHERE code IN ('CIRCLE', 'TWO')")).all())
        [ring] = zone_polygons(session, zone_id=ids["CIRCLE"])
        two = zone_polygons(session, zone_id=ids["TWO"])
    assert ring[0] == ring[-1] and 4 <= len(ring) <= 100
    assert abs(Polygon(ring).area - circle.area) / circle.area < 0.02
    assert len(two) == 2
    small = min(two, key=lambda r: Polygon(r).area)
    assert len(small) == 5  # a simple square keeps its exact outline
    assert all(r[0] == r[-1] and len(r) <= 100 for r in two)


@pytest.mark.committing  # the CLI opens its own engine
def test_cli_operators_add_list_disable(database_url, session_factory):
    from typer.testing import CliRunner

    from accounts import operators
    from tocsin.cli import app

    runner = CliRunner()
    env = {"TOCSIN_DATABASE_URL": database_url}
    result = runner.invoke(app, ["operators", "add", "Dana Duty", "--role", "viewer"], env=env)
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("to_")
    with session_factory() as session:
        assert operators.authenticate(session, token=token).role == "viewer"

    result = runner.invoke(app, ["operators", "add", "Dana Duty", "--role", "viewer"], env=env)
    assert result.exit_code == 2 and "already exists" in result.output
    result = runner.invoke(app, ["operators", "add", "x", "--role", "root"], env=env)
    assert result.exit_code == 2 and "'root'" in result.output

    listed = runner.invoke(app, ["operators", "list"], env=env).output
    assert "Dana Duty" in listed and "viewer" in listed and token not in listed

    result = runner.invoke(app, ["operators", "token", "Dana Duty"], env=env)
    assert result.exit_code == 0, result.output
    new_token = result.output.strip()
    with session_factory() as session:
        assert operators.authenticate(session, token=new_token).name == "Dana Duty"
        with pytest.raises(Exception, match="invalid or disabled"):
            operators.authenticate(session, token=token)  # the reissued token replaces the old one
    token = new_token

    assert runner.invoke(app, ["operators", "disable", "Dana Duty"], env=env).exit_code == 0
    with session_factory() as session, pytest.raises(Exception, match="invalid or disabled"):
        operators.authenticate(session, token=token)
    result = runner.invoke(app, ["operators", "disable", "Nobody"], env=env)
    assert result.exit_code == 2 and "'Nobody'" in result.output
    result = runner.invoke(app, ["operators", "role", "Dana Duty", "root"], env=env)
    assert result.exit_code == 2 and "'root'" in result.output
    result = runner.invoke(app, ["operators", "role", "Dana Duty", "admin"], env=env)
    assert result.exit_code == 0 and "now admin" in result.output
    assert "admin" in runner.invoke(app, ["operators", "list"], env=env).output
