"""Open311 GeoReport v2 round trip over the real service and PostGIS: services, POST, GET, filters, errors."""

import json

import defusedxml.ElementTree as DET
import pytest
from sqlalchemy import text

pytestmark = pytest.mark.integration

BASE = "/open311/v2"
IN_A = {"lat": "40.725", "long": "-73.975"}  # inside hand-drawn district A (tests/conftest.py)
IN_B = {"lat": "40.725", "long": "-73.925"}  # inside district B


def post(client, key, fmt="json", *, as_json=False, **params):
    data = {"api_key": key, **params}
    if as_json:
        return client.post(f"{BASE}/requests.{fmt}", json=data)
    return client.post(f"{BASE}/requests.{fmt}", data=data)


def assert_error(r, status, needle):
    assert r.status_code == status, r.text
    errors = r.json()
    assert isinstance(errors, list) and errors, errors
    assert all(set(e) == {"code", "description"} for e in errors), errors
    assert any(e["code"] == status and needle in e["description"] for e in errors), errors


@pytest.mark.committing
def test_services_list_the_report_categories(client):
    r = client.get(f"{BASE}/services.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    services = r.json()
    assert [s["service_code"] for s in services] == ["power_outage", "gas_leak", "water_main", "other"]
    for s in services:
        assert s["metadata"] is False and s["type"] == "realtime"
        assert s["service_name"] and s["description"] and s["keywords"] and s["group"]
    assert client.get(f"{BASE}/services.csv").status_code == 404


@pytest.mark.committing
def test_services_xml_follows_the_spec_sample(client):
    r = client.get(f"{BASE}/services.xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    root = DET.fromstring(r.content)
    assert root.tag == "services"
    first = root.findall("service")[0]
    assert first.findtext("service_code") == "power_outage"
    assert first.findtext("metadata") == "false" and first.findtext("type") == "realtime"


@pytest.mark.committing
def test_form_post_then_get_by_id_round_trip(client, utility_key):
    r = post(client, utility_key, service_code="gas_leak", description="Gas odor at the corner", **IN_A)
    assert r.status_code == 201, r.text
    [created] = r.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    assert "district A" in created["service_notice"] and "precinct P1" in created["service_notice"]
    rid = created["service_request_id"]

    r = client.get(f"{BASE}/requests/{rid}.json", params={"api_key": utility_key})
    assert r.status_code == 200, r.text
    [req] = r.json()
    assert req["service_request_id"] == rid
    assert req["status"] == "open" and req["status_notes"] == "utility status: reported"
    assert req["service_code"] == "gas_leak" and req["service_name"] == "Gas leak"
    assert req["description"] == "Gas odor at the corner"
    assert req["agency_responsible"] == "Test Power"
    assert (req["lat"], req["long"]) == (40.725, -73.975)
    assert req["requested_datetime"].endswith("Z") and req["updated_datetime"]
    assert req["expected_datetime"] is None and req["media_url"] is None


@pytest.mark.committing
def test_json_post_works_and_a_retry_returns_the_same_request(client, utility_key):
    r1 = post(client, utility_key, as_json=True, service_code="power_outage", lat=40.725, long=-73.925,
              description="Block dark")
    assert r1.status_code == 201, r1.text
    r2 = post(client, utility_key, as_json=True, service_code="power_outage", lat=40.725, long=-73.925,
              description="Block dark")
    assert r2.status_code == 200, r2.text
    assert r1.json()[0]["service_request_id"] == r2.json()[0]["service_request_id"]
    assert r1.json()[0]["service_request_id"].startswith("o311-")
    # A form-encoded retry of the same content is the same request too.
    r3 = post(client, utility_key, service_code="power_outage", lat="40.725", long="-73.925", description="Block dark")
    assert r3.status_code == 200 and r3.json()[0]["service_request_id"] == r1.json()[0]["service_request_id"]
    # Different content is a different request.
    r4 = post(client, utility_key, service_code="power_outage", description="Other block", **IN_B)
    assert r4.status_code == 201 and r4.json()[0]["service_request_id"] != r1.json()[0]["service_request_id"]


@pytest.mark.committing
def test_client_service_request_id_becomes_the_external_id(client, utility_key):
    r = post(client, utility_key, service_code="water_main", service_request_id="WM-77", **IN_B)
    assert r.status_code == 201, r.text
    assert r.json()[0]["service_request_id"] == "WM-77"
    v1 = client.get("/v1/reports", headers={"Authorization": f"Bearer {utility_key}"})
    if v1.status_code == 200:  # the /v1 listing, when present, shows the same report
        assert "WM-77" in v1.text
    # Same id, different content: the stored request wins and the client is told.
    r = post(client, utility_key, service_code="water_main", service_request_id="WM-77", **IN_A)
    assert_error(r, 400, "WM-77")


@pytest.mark.committing
def test_list_filters(client, utility_key, engine):
    ids = {}
    for code, where in (("power_outage", IN_A), ("gas_leak", IN_B), ("water_main", IN_A)):
        r = post(client, utility_key, service_code=code, service_request_id=f"F-{code}", **where)
        assert r.status_code == 201, r.text
        ids[code] = r.json()[0]["service_request_id"]

    def listed(**params):
        r = client.get(f"{BASE}/requests.json", params={"api_key": utility_key, **params})
        assert r.status_code == 200, r.text
        return sorted(x["service_request_id"] for x in r.json())

    assert listed() == sorted(ids.values())
    assert listed(service_code="gas_leak") == ["F-gas_leak"]
    assert listed(service_code="gas_leak,water_main") == ["F-gas_leak", "F-water_main"]
    assert listed(service_request_id="F-power_outage,F-water_main") == ["F-power_outage", "F-water_main"]
    # service_request_id overrides the other filters (spec).
    assert listed(service_request_id="F-gas_leak", service_code="water_main") == ["F-gas_leak"]
    assert listed(status="open") == sorted(ids.values())
    assert listed(status="closed") == []
    assert listed(start_date="2099-01-01T00:00:00Z") == []
    assert listed(end_date="2000-01-01T00:00:00Z") == []

    with engine.begin() as conn:  # the utility restored one outage
        conn.execute(text("UPDATE utility_reports SET status = 'restored' WHERE external_id = 'F-power_outage'"))
    assert listed(status="closed") == ["F-power_outage"]
    assert listed(status="open") == ["F-gas_leak", "F-water_main"]
    [req] = client.get(f"{BASE}/requests/F-power_outage.json", params={"api_key": utility_key}).json()
    assert req["status"] == "closed" and req["status_notes"] == "utility status: restored"


@pytest.mark.parametrize("params, needle", [
    ({"start_date": "yesterday"}, "start_date 'yesterday' is not a w3 date-time"),
    ({"start_date": "2026-01-01T00:00:00"}, "has no time zone"),
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "at most 90"),
    ({"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "is after end_date"),
    ({"status": "pending"}, "status 'pending' is not one of open, closed"),
    ({"service_code": "volcano"}, "service_code 'volcano'"),
])
@pytest.mark.committing
def test_bad_list_filters_are_400_naming_the_value(client, utility_key, params, needle):
    r = client.get(f"{BASE}/requests.json", params={"api_key": utility_key, **params})
    assert_error(r, 400, needle)


@pytest.mark.parametrize("key, needle", [
    ("tk_not-a-real-key", "invalid or revoked"),
    ("", "missing api_key"),
])
@pytest.mark.committing
def test_bad_or_missing_api_key_is_403_error_array(client, utility_key, key, needle):
    r = client.post(f"{BASE}/requests.json", data={"api_key": key, "service_code": "gas_leak", **IN_A})
    assert_error(r, 403, needle)
    r = client.get(f"{BASE}/requests.json", params={"api_key": key})
    assert_error(r, 403, needle)


@pytest.mark.committing
def test_bearer_key_is_accepted_too(client, utility_key):
    r = client.post(f"{BASE}/requests.json", data={"service_code": "gas_leak", **IN_A},
                    headers={"Authorization": f"Bearer {utility_key}"})
    assert r.status_code == 201, r.text


@pytest.mark.committing
def test_unknown_service_code_is_400_naming_it(client, utility_key):
    r = post(client, utility_key, service_code="volcano", **IN_A)
    assert_error(r, 400, "service_code 'volcano' is not one of power_outage, gas_leak, water_main, other")


@pytest.mark.parametrize("params, needle", [
    ({"lat": "123", "long": "-73.975"}, "lat 123 is outside [-90, 90]"),
    ({"lat": "40.7", "long": "-273.9"}, "long -273.9 is outside [-180, 180]"),
    ({"lat": "north", "long": "-73.9"}, "lat must be a number, got 'north'"),
    ({"lat": "40.725"}, "long is missing"),
    ({}, "no location"),
    ({"service_request_id": "a/b", **IN_A}, "service_request_id 'a/b'"),
    ({"description": "x" * 4001, **IN_A}, "4001 characters"),
])
@pytest.mark.committing
def test_bad_post_parameters_are_400_naming_them(client, utility_key, params, needle):
    r = post(client, utility_key, service_code="gas_leak", **params)
    assert_error(r, 400, needle)


@pytest.mark.committing
def test_several_problems_are_listed_together(client, utility_key):
    r = post(client, utility_key, service_code="volcano", lat="123", long="-73.9")
    assert r.status_code == 400
    descriptions = [e["description"] for e in r.json()]
    assert any("volcano" in d for d in descriptions) and any("lat 123" in d for d in descriptions)


@pytest.mark.committing
def test_outside_jurisdiction_is_400_with_swap_hint(client, utility_key):
    r = post(client, utility_key, service_code="gas_leak", lat="-73.975", long="40.725")
    assert_error(r, 400, "outside the jurisdiction")
    assert "swapped" in r.text


@pytest.mark.committing
def test_json_body_must_be_an_object(client, utility_key):
    r = client.post(f"{BASE}/requests.json", content=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "got list")
    r = client.post(f"{BASE}/requests.json", content=b"{", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "not valid JSON")


@pytest.mark.committing
def test_unknown_request_and_other_utilities_requests_are_404(client, utility_key, session_factory):
    from db.session import transaction
    from accounts import keys

    r = post(client, utility_key, service_code="gas_leak", service_request_id="MINE-1", **IN_A)
    assert r.status_code == 201
    with transaction(session_factory) as session:
        other = keys.add_utility(session, name="Other Gas")
        other_key = keys.issue_key(session, role="utility", utility_id=other.id)
    assert_error(client.get(f"{BASE}/requests/NOPE.json", params={"api_key": utility_key}), 404, "'NOPE'")
    assert_error(client.get(f"{BASE}/requests/MINE-1.json", params={"api_key": other_key}), 404, "'MINE-1'")
    listed = client.get(f"{BASE}/requests.json", params={"api_key": other_key}).json()
    assert listed == []


@pytest.mark.committing
def test_xml_post_and_xml_errors(client, utility_key):
    r = post(client, utility_key, "xml", service_code="gas_leak", service_request_id="X-1", **IN_A)
    assert r.status_code == 201 and r.headers["content-type"].startswith("text/xml")
    root = DET.fromstring(r.content)
    assert root.tag == "service_requests" and root.find("request").findtext("service_request_id") == "X-1"
    r = post(client, utility_key, "xml", service_code="volcano", **IN_A)
    assert r.status_code == 400
    err = DET.fromstring(r.content).find("error")
    assert err.findtext("code") == "400" and "volcano" in err.findtext("description")


@pytest.fixture
def zcta(session_factory, districts):
    """A hand-drawn ZCTA 10001 over district A (the demo loads the real ones as layer `zcta`)."""
    from shapely.geometry import MultiPolygon, Polygon

    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord

    with transaction(session_factory) as session:
        zone_service.upsert_zones(session, layer="zcta", records=[ZoneRecord(
            code="10001", name="ZIP 10001", properties={},
            geometry=MultiPolygon([Polygon([(-73.99, 40.71), (-73.96, 40.71), (-73.96, 40.74), (-73.99, 40.74)])]),
        )])


@pytest.mark.committing
def test_address_string_with_zip_resolves_to_the_zcta(client, utility_key, zcta):
    r = post(client, utility_key, service_code="power_outage", address_string="12345 Some Ave, New York, NY 10001")
    assert r.status_code == 201, r.text
    [created] = r.json()
    assert "zcta 10001" in created["service_notice"] and "district A" in created["service_notice"]
    [req] = client.get(f"{BASE}/requests/{created['service_request_id']}.json",
                       params={"api_key": utility_key}).json()
    assert req["zipcode"] == "10001" and req["address"] == "12345 Some Ave, New York, NY 10001"
    assert -73.99 < req["long"] < -73.96 and 40.71 < req["lat"] < 40.74


@pytest.mark.committing
def test_zipcode_of_a_lat_long_request_comes_from_its_zcta(client, utility_key, zcta):
    r = post(client, utility_key, service_code="gas_leak", service_request_id="Z-1", **IN_A)
    assert r.status_code == 201, r.text
    [req] = client.get(f"{BASE}/requests/Z-1.json", params={"api_key": utility_key}).json()
    assert req["zipcode"] == "10001" and req["address"] is None
    r = post(client, utility_key, service_code="gas_leak", service_request_id="Z-2", **IN_B)  # outside the ZCTA
    [req] = client.get(f"{BASE}/requests/Z-2.json", params={"api_key": utility_key}).json()
    assert req["zipcode"] is None


@pytest.mark.committing
def test_address_string_with_unknown_zip_is_400(client, utility_key, zcta):
    r = post(client, utility_key, service_code="power_outage", address_string="Main St, 99999")
    assert_error(r, 400, "99999")


@pytest.mark.committing
def test_responses_match_the_georeport_json_schemas(client, utility_key, settings):
    schemas = settings.shared_data_dir / "open311" / "json_schema_georeport_v2"
    if not schemas.is_dir():
        pytest.skip(f"the GeoReport v2 JSON schemas are not at {schemas}")
    jsonschema_rs = pytest.importorskip("jsonschema_rs")  # installed with the dev extras (schemathesis)

    def validate(instance, name):
        schema = json.loads((schemas / name).read_text())
        # The list schemas point at their item schema by file name: inline it.
        schema["items"] = json.loads((schemas / schema["items"].pop("$ref")).read_text())
        jsonschema_rs.validator_for(schema, validate_formats=True).validate(instance)

    validate(client.get(f"{BASE}/services.json").json(), "services.json")
    post(client, utility_key, service_code="gas_leak", description="odor", **IN_A)
    listed = client.get(f"{BASE}/requests.json", params={"api_key": utility_key}).json()
    assert len(listed) == 1
    validate(listed, "requests.json")


@pytest.mark.committing  # an app of its own, on its own engine
def test_rate_limit_is_429_error_array_with_retry_after(settings, districts, utility_key):
    from fastapi.testclient import TestClient

    from tocsin.app import create_app

    with TestClient(create_app(settings.model_copy(update={"rate_limit_per_min": 2}))) as limited:
        codes = [post(limited, utility_key, service_code="gas_leak", service_request_id=f"RL-{i}", **IN_A).status_code
                 for i in range(2)]
        assert codes == [201, 201]
        r = post(limited, utility_key, service_code="gas_leak", service_request_id="RL-3", **IN_A)
    assert_error(r, 429, "rate limit of 2 requests per minute")
    assert int(r.headers["Retry-After"]) >= 1
