"""Agencies sharing a control room, against the real PostGIS: one agency can neither read nor act on another's
alerts through any route (list, detail, CAP, actions, deliveries, silences, observations, feedback, the live
websocket), an admin sees everything, history rows record the agency, SMS goes only to covering responders.

Fire covers fire and gas leaks in district A; police covers violence everywhere.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from accounts import agencies, operators
from db.session import transaction
from tests.integration.dispatch_support import open_alert

pytestmark = [pytest.mark.integration]
A, B = (-73.975, 40.725), (-73.925, 40.725)  # inside districts A and B (tests/conftest.py)
MISSING = 2**62  # an alert id that does not exist


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def setup_room(factory) -> dict[str, str]:
    """The two agencies and one operator each, an admin, and an operator in no agency: name -> token."""
    now = datetime.now(UTC)
    out = {}
    with transaction(factory) as session:
        agencies.add_agency(session, name="fire", categories=["fire", "gas_leak"], zones=[("district", "A")],
                            now=now)
        agencies.add_agency(session, name="police", categories=["violence"], now=now)
        for name, role, member in (("fiona", "operator", ["fire"]), ("paul", "operator", ["police"]),
                                   ("ada", "admin", []), ("nobody", "operator", [])):
            _, out[name] = operators.add_operator(session, name=name, role=role, now=now)
            agencies.set_operator_agencies(session, name=name, agencies=member, now=now)
    return out


def open_alerts(factory) -> dict[str, int]:
    now = datetime.now(UTC)
    return {f"{category}-{code}": open_alert(factory, code=code, category=category, rule=f"{category}_rule",
                                             now=now).id
            for category in ("fire", "violence") for code in ("A", "B")}


@pytest.fixture
def room(session_factory, districts):
    return setup_room(session_factory), open_alerts(session_factory)


# --- reads


@pytest.mark.committing
def test_alert_list_detail_and_cap_show_each_agency_only_its_alerts(client, room):
    tokens, ids = room
    expected = {"fiona": {"fire-A"}, "paul": {"violence-A", "violence-B"}, "ada": set(ids), "nobody": set()}
    for name, visible in expected.items():
        listed = {item["id"] for item in client.get("/v1/alerts", headers=auth(tokens[name])).json()}
        assert listed == {ids[k] for k in visible}, name
        geo = client.get("/v1/alerts?f=geojson", headers=auth(tokens[name])).json()
        assert {f["properties"]["id"] for f in geo["features"]} == {ids[k] for k in visible}, name
        for key, alert_id in ids.items():
            detail = client.get(f"/v1/alerts/{alert_id}", headers=auth(tokens[name]))
            cap = client.get(f"/v1/alerts/{alert_id}.cap", headers=auth(tokens[name]))
            if key in visible:
                assert detail.status_code == 200 and cap.status_code == 200, (name, key)
            else:
                # The same answer as for an alert that does not exist: nothing says it does.
                missing = client.get(f"/v1/alerts/{MISSING}", headers=auth(tokens[name])).json()["detail"]
                assert detail.status_code == 404 and cap.status_code == 404, (name, key)
                assert detail.json()["detail"] == missing.replace(str(MISSING), str(alert_id))
    me = client.get("/v1/session", headers=auth(tokens["fiona"])).json()
    assert me == {"name": "fiona", "role": "operator", "agencies": ["fire"]}


# --- actions


@pytest.mark.committing
def test_actions_on_another_agencys_alert_are_404_and_change_nothing(client, room, session_factory):
    tokens, ids = room
    for name, key in (("fiona", "violence-A"), ("fiona", "fire-B"), ("paul", "fire-A"), ("nobody", "fire-A")):
        alert_id = ids[key]
        for action in ("acknowledge", "escalate", "resolve"):
            r = client.post(f"/v1/alerts/{alert_id}/{action}", json={"note": "not mine"}, headers=auth(tokens[name]))
            assert r.status_code == 404, (name, key, action, r.text)
        r = client.get(f"/v1/alerts/{alert_id}/deliveries", headers=auth(tokens[name]))
        assert r.status_code == 404, (name, key)
    with transaction(session_factory) as session:
        states = dict(session.execute(text("SELECT id, state FROM alerts")).all())
        history = session.execute(text("SELECT count(*) FROM alert_history")).scalar_one()
    assert set(states.values()) == {"open"} and history == 0


@pytest.mark.committing
def test_history_rows_record_the_acting_operators_agency(client, room, session_factory):
    tokens, ids = room
    r = client.post(f"/v1/alerts/{ids['fire-A']}/acknowledge", json={"note": "engine 7 rolling"},
                    headers=auth(tokens["fiona"]))
    assert r.status_code == 200, r.text
    assert r.json()["history"][-1]["agency"] == "fire" and r.json()["history"][-1]["actor"] == "operator:fiona"
    assert client.post(f"/v1/alerts/{ids['violence-B']}/escalate", json={"note": "backup"},
                       headers=auth(tokens["paul"])).status_code == 200
    assert client.post(f"/v1/alerts/{ids['violence-B']}/resolve", headers=auth(tokens["paul"])).status_code == 200
    assert client.post(f"/v1/alerts/{ids['violence-A']}/resolve", headers=auth(tokens["ada"])).status_code == 200
    assert client.get(f"/v1/alerts/{ids['fire-A']}/deliveries", headers=auth(tokens["fiona"])).status_code == 200
    with transaction(session_factory) as session:
        rows = session.execute(text("SELECT alert_id, actor, agency, reason FROM alert_history ORDER BY id")).all()
    assert [(r.alert_id, r.actor, r.agency) for r in rows] == [
        (ids["fire-A"], "operator:fiona", "fire"),
        (ids["violence-B"], "operator:paul", "police"),
        (ids["violence-B"], "operator:paul", "police"),
        (ids["violence-A"], "operator:ada", None),  # an admin in no agency
    ]


@pytest.mark.committing
def test_silences_stay_within_the_agencys_coverage(client, room):
    tokens, _ = room
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    def silence(name, **matchers):
        return client.post("/v1/silences", json={"matchers": matchers, "ends_at": ends, "comment": "drill"},
                           headers=auth(tokens[name]))

    ok = silence("fiona", category="fire", layer="district", zone="A")
    assert ok.status_code == 201, ok.text
    for matchers in ({"category": "violence"}, {"category": "fire"}, {"category": "fire", "zone": "B",
                                                                       "layer": "district"}, {"zone": "A"}):
        r = silence("fiona", **matchers)
        assert r.status_code == 403 and "fire" in r.json()["detail"], matchers
    assert silence("paul", category="violence").status_code == 201
    everything = silence("ada", layer="district")
    assert everything.status_code == 201

    def listed(name):
        return {s["id"] for s in client.get("/v1/silences", headers=auth(tokens[name])).json()}

    assert ok.json()["id"] in listed("fiona") and ok.json()["id"] not in listed("paul")
    assert everything.json()["id"] in listed("paul")  # an admin's silence that mutes police alerts too
    assert listed("nobody") == set()
    assert client.delete(f"/v1/silences/{ok.json()['id']}", headers=auth(tokens["paul"])).status_code == 404
    assert client.delete(f"/v1/silences/{everything.json()['id']}", headers=auth(tokens["paul"])).status_code == 403
    assert client.delete(f"/v1/silences/{ok.json()['id']}", headers=auth(tokens["fiona"])).status_code == 204


# --- the map: observations, feedback, the live websocket


def report(client, utility_key, where, external_id, category):
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(where)},
               "properties": {"external_id": external_id, "category": category}}
    r = client.post("/v1/reports", json=feature, headers=auth(utility_key))
    assert r.status_code == 201, r.text
    return r.json()


def observation_ids(client, token, query=""):
    body = client.get(f"/v1/observations{query}", headers=auth(token)).json()
    return {f["properties"]["report"]["external_id"]: f["id"] for f in body["features"]}


@pytest.mark.committing
def test_observations_and_feedback_follow_coverage(client, room, utility_key):
    tokens, _ = room
    report(client, utility_key, A, "GAS-A", "gas_leak")
    report(client, utility_key, B, "GAS-B", "gas_leak")
    report(client, utility_key, A, "WATER-A", "water_main")
    every = observation_ids(client, tokens["ada"])
    assert set(every) == {"GAS-A", "GAS-B", "WATER-A"}
    assert set(observation_ids(client, tokens["fiona"])) == {"GAS-A"}
    ids_query = "?ids=" + ",".join(str(i) for i in every.values())
    assert set(observation_ids(client, tokens["fiona"], ids_query)) == {"GAS-A"}
    assert observation_ids(client, tokens["paul"]) == {} and observation_ids(client, tokens["nobody"]) == {}

    mark = {"kind": "not_incident", "note": "drill"}
    for external_id, obs_id in every.items():
        r = client.post(f"/v1/observations/{obs_id}/feedback", json=mark, headers=auth(tokens["ada"]))
        assert r.status_code == 201, r.text
        r = client.post(f"/v1/observations/{obs_id}/feedback", json=mark, headers=auth(tokens["fiona"]))
        assert r.status_code == (201 if external_id == "GAS-A" else 404), external_id
    fire_sees = client.get("/v1/feedback", headers=auth(tokens["fiona"])).json()
    assert {f["observation_id"] for f in fire_sees} == {every["GAS-A"]} and len(fire_sees) == 2
    assert client.get(f"/v1/observations/{every['WATER-A']}/feedback", headers=auth(tokens["fiona"])).json() == []
    assert client.get("/v1/feedback", headers=auth(tokens["paul"])).json() == []
    assert len(client.get("/v1/feedback", headers=auth(tokens["ada"])).json()) == 4


def next_of(ws, kind):
    """The next message of this type (frames may hold one message or an array of them)."""
    while True:
        data = json.loads(ws.receive_text())
        for message in data if isinstance(data, list) else [data]:
            if message["type"] == kind:
                return message


def drain(ws, n):
    """The first n messages, flattening array frames."""
    out = []
    while len(out) < n:
        data = json.loads(ws.receive_text())
        out.extend(data if isinstance(data, list) else [data])
    return out


@pytest.mark.committing
def test_live_websocket_gives_each_operator_only_their_agencys_events(client, room, utility_key):
    tokens, ids = room
    report(client, utility_key, A, "WATER-A", "water_main")
    [gas_alert] = report(client, utility_key, A, "GAS-A", "gas_leak")["alerts_changed"]  # the test rules open it
    with client.websocket_connect(f"/v1/live?token={tokens['fiona']}&since_evt=0&since_obs=0") as fire, \
            client.websocket_connect(f"/v1/live?token={tokens['paul']}&since_evt=0&since_obs=0") as police:
        fire_hello, police_hello = json.loads(fire.receive_text()), json.loads(police.receive_text())
        assert fire_hello["agencies"] == ["fire"] and police_hello["agencies"] == ["police"]
        # The backfill: every opened event so far, filtered per socket.
        fire_missed = drain(fire, fire_hello["backfill"])
        police_missed = drain(police, police_hello["backfill"])
        assert {m["event"]["alert_id"] for m in fire_missed if m["type"] == "alert_event"} == {ids["fire-A"], gas_alert}
        assert {m["feature"]["properties"]["report"]["external_id"] for m in fire_missed
                if m["type"] == "observation"} == {"GAS-A"}
        assert {m["event"]["alert_id"] for m in police_missed if m["type"] == "alert_event"} == {
            ids["violence-A"], ids["violence-B"]}
        assert not [m for m in police_missed if m["type"] == "observation"]

        # Live: each socket's next event is its own agency's, the other's having been left out before it.
        for key in ("violence-A", "fire-A", "fire-B", "violence-B"):
            r = client.post(f"/v1/alerts/{ids[key]}/acknowledge", headers=auth(tokens["ada"]))
            assert r.status_code == 200, r.text
        report(client, utility_key, A, "WATER-A2", "water_main")
        report(client, utility_key, A, "GAS-A2", "gas_leak")
        assert next_of(police, "alert_event")["event"]["alert_id"] == ids["violence-A"]
        assert next_of(police, "alert_event")["event"]["alert_id"] == ids["violence-B"]
        assert next_of(fire, "alert_event")["event"]["alert_id"] == ids["fire-A"]
        gas = next_of(fire, "observation")
        assert gas["feature"]["properties"]["report"]["external_id"] == "GAS-A2"


# --- SMS and responders


def test_sms_goes_only_to_responders_whose_agencies_cover_the_alert(session_factory, districts):
    from dispatch import fanout
    from dispatch import responders as responder_service
    from dispatch.schemas import CoverageSpec
    from tests.integration.dispatch_support import T0

    setup_room(session_factory)
    everywhere = [CoverageSpec(layer="district", zone=None)]
    with transaction(session_factory) as session:
        people = {}
        for name, phone, member in (("fay", "+12125550111", "fire"), ("pete", "+12125550112", "police"),
                                    ("una", "+12125550113", None)):
            r = responder_service.create_responder(session, name=name, phone=phone, coverage=everywhere, now=T0)
            if member:
                responder_service.set_agencies(session, responder_id=r.id,
                                               agency_ids=agencies.agency_ids(session, [member]))
            people[r.id] = name
    ids = open_alerts(session_factory)
    with transaction(session_factory) as session:
        fanout.plan_batch(session, rules=lambda: [], config=fanout.FanoutConfig(public_base_url="http://t"), now=T0)
        rows = session.execute(text("SELECT alert_id, responder_id FROM deliveries")).all()
    paged = {key: {people[r] for a, r in rows if a == alert_id} for key, alert_id in ids.items()}
    assert paged == {"fire-A": {"fay", "una"}, "fire-B": {"una"}, "violence-A": {"pete", "una"},
                     "violence-B": {"pete", "una"}}


def test_responders_csv_sets_agencies(session_factory, districts):
    from dispatch import responders as responder_service
    from tests.integration.dispatch_support import T0

    setup_room(session_factory)
    data = ("name,phone,coverage,agencies\nFay,+12125550111,district:A,fire\n"
            "Pat,+12125550112,district:*,fire police\nUna,+12125550113,district:B,\n")
    with transaction(session_factory) as session:
        result = responder_service.import_csv(session, data=data, now=T0)
        assert result.errors == [] and result.created == 3
        rows = session.execute(text(
            "SELECT r.name, string_agg(a.name, ',' ORDER BY a.name) FROM responders r "
            "LEFT JOIN responder_agencies ra ON ra.responder_id = r.id LEFT JOIN agencies a ON a.id = ra.agency_id "
            "GROUP BY r.name")).all()
        assert dict(rows) == {"Fay": "fire", "Pat": "fire,police", "Una": None}
        bad = responder_service.import_csv(session, data="name,phone,coverage,agencies\nX,+12125550119,district:A,"
                                                         "ems\n", now=T0)
        assert bad.created == 0 and "agency 'ems' does not exist" in bad.errors[0][1]


# --- the one filter: SQL and Python agree


CASES = [
    # (category, layer, code, fire in A?, police?, fire+police member?)
    ("fire", "district", "A", True, False, True),
    ("fire", "district", "B", False, False, False),
    ("gas_leak", "district", "A", True, False, True),
    ("violence", "district", "B", False, True, True),
    ("violence", "precinct", "P1", False, True, True),
    ("flood", "district", "A", False, False, False),
]


@pytest.mark.parametrize("category, layer, code, fire, police, both", CASES)
def test_sql_fragment_agrees_with_the_python_predicate(session_factory, category, layer, code, fire, police, both):
    from alerts.access import alert_filter

    fire_grant = agencies.Grant("fire", frozenset({"fire", "gas_leak"}), frozenset({("district", "A")}))
    police_grant = agencies.Grant("police", frozenset({"violence"}))
    for grants, expected in (((fire_grant,), fire), ((police_grant,), police), ((fire_grant, police_grant), both),
                             ((), False)):
        coverage = agencies.Coverage(grants=grants, everything=False)
        where, params = alert_filter(coverage)
        with session_factory() as session:
            got = session.execute(text(
                f"SELECT {where} FROM (SELECT CAST(:c AS text) AS category) a, (SELECT CAST(:l AS text) AS name) l, "
                "(SELECT CAST(:z AS text) AS code) z"), {"c": category, "l": layer, "z": code, **params}).scalar_one()
        assert got is expected, grants
        assert coverage.covers_alert(category=category, layer=layer, code=code) is expected
    assert agencies.EVERYTHING.covers_alert(category=category, layer=layer, code=code)


def test_an_operator_in_no_agency_sees_all_only_while_no_agency_exists(session_factory):
    now = datetime.now(UTC)
    with transaction(session_factory) as session:
        op, _ = operators.add_operator(session, name="solo", role="operator", now=now)
        assert agencies.coverage_of(session, operator_id=op.id, role="operator").everything
        agencies.add_agency(session, name="ems", categories=["medical"], now=now)
        restricted = agencies.coverage_of(session, operator_id=op.id, role="operator")
        assert not restricted.everything and restricted.grants == ()
        assert agencies.coverage_of(session, operator_id=op.id, role="admin").everything


# --- the CLI


@pytest.mark.committing
def test_agencies_cli(settings, districts, session_factory):
    from typer.testing import CliRunner

    from tocsin.cli import app

    env = {"TOCSIN_DATABASE_URL": settings.database_url, "TOCSIN_RULES_FILE": str(settings.rules_file),
           "TOCSIN_LOG_LEVEL": "WARNING"}

    def cli(*args):
        return CliRunner().invoke(app, list(args), env=env)

    r = cli("agencies", "add", "fire", "--categories", "fire,gas_leak", "--zones", "district:A,district:Z")
    assert r.exit_code == 2 and "no such zone district:Z" in r.output
    r = cli("agencies", "add", "fire", "--categories", "fire,arson")
    assert r.exit_code == 2 and "unknown category arson" in r.output
    assert cli("agencies", "add", "fire", "--categories", "fire,gas_leak", "--zones", "district:A").exit_code == 0
    assert cli("agencies", "add", "police", "--categories", "violence").exit_code == 0
    r = cli("operators", "add", "fiona", "--role", "operator", "--agency", "fire", "--agency", "police")
    assert r.exit_code == 0, r.output
    assert cli("operators", "add", "nobody", "--role", "viewer").exit_code == 0
    r = cli("operators", "agencies", "fiona", "--set", "police")
    assert r.exit_code == 0 and "fiona agencies: police" in r.output
    assert cli("operators", "agencies", "fiona", "--set", "ems").exit_code == 2
    listed = cli("agencies", "list").output
    assert "fire,gas_leak in district:A  operators: -" in listed
    assert "every zone  operators: fiona" in listed and "in no agency (see nothing unless admin): nobody" in listed
    assert cli("agencies", "delete", "police").exit_code == 0
    with transaction(session_factory) as session:
        assert [a.name for a in agencies.list_agencies(session)] == ["fire"]
        assert agencies.operator_agency_names(session) == {}
