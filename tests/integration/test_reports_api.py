"""Bad input to POST /v1/reports gets a 4xx that names the problem; retries never duplicate."""

import pytest

from reports_support import add_utility, auth, load_zip_layer, make_client, report, square  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.committing, pytest.mark.pooled]


@pytest.mark.parametrize("headers, needle", [
    ({}, "missing API key"),
    ({"Authorization": "Bearer tk_not-a-real-key"}, "invalid or revoked"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing API key"),
])
def test_wrong_or_missing_key_is_401(client, utility_key, headers, needle):
    r = client.post("/v1/reports", json=report(), headers=headers)
    assert r.status_code == 401
    assert needle in r.json()["detail"]
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_latitude_200_is_422_quoting_the_value(client, utility_key):
    r = client.post("/v1/reports", json=report({"type": "Point", "coordinates": [-73.9, 200]}),
                    headers=auth(utility_key))
    assert r.status_code == 422
    [err] = r.json()["detail"]
    assert err["loc"] == ["body", "geometry"]
    assert "latitude 200 is outside [-90, 90]" in err["msg"]


@pytest.mark.parametrize("geometry, loc, needle", [
    ({"type": "Pointy", "coordinates": [0, 0]}, ["body", "geometry"], "'Pointy' is not one of"),
    ({"type": "Point"}, ["body", "geometry"], "coordinates is missing"),
    ({"type": "Point", "coordinates": ["a", 40]}, ["body", "geometry"], "longitude must be a number"),
    ({"type": "Polygon", "coordinates": [[[-73.99, 40.71], [-73.98, 40.71], [-73.98, 40.72], [-73.99, 40.72]]]},
     ["body", "geometry"], "not closed"),
])
def test_malformed_geojson_is_422_naming_the_field(client, utility_key, geometry, loc, needle):
    r = client.post("/v1/reports", json=report(geometry), headers=auth(utility_key))
    assert r.status_code == 422
    errors = r.json()["detail"]
    assert any(e["loc"] == loc and needle in e["msg"] for e in errors), errors


def test_missing_properties_field_is_named(client, utility_key):
    body = report()
    del body["properties"]["external_id"]
    r = client.post("/v1/reports", json=body, headers=auth(utility_key))
    assert r.status_code == 422
    assert ["body", "properties", "external_id"] in [e["loc"] for e in r.json()["detail"]]


def test_unknown_category_is_422(client, utility_key):
    r = client.post("/v1/reports", json=report(category="volcano"), headers=auth(utility_key))
    assert r.status_code == 422
    assert ["body", "properties", "category"] in [e["loc"] for e in r.json()["detail"]]


def test_malformed_json_is_400_naming_the_position(client, utility_key):
    r = client.post("/v1/reports", content=b'{"type": "Feature", ', headers={
        **auth(utility_key), "Content-Type": "application/json"})
    assert r.status_code == 400  # issue #15: a body that is not JSON at all is a 400, not a field error
    assert "not valid JSON" in r.text and "position 20" in r.text


def test_swapped_coordinates_outside_jurisdiction_get_a_hint(client, utility_key):
    r = client.post("/v1/reports", json=report({"type": "Point", "coordinates": [40.725, -73.975]}),
                    headers=auth(utility_key))
    assert r.status_code == 422
    assert "outside the jurisdiction" in r.json()["detail"] and "swapped" in r.json()["detail"]


def test_oversized_body_is_413(client, utility_key, settings):
    body = report(description="x" * 10)
    big = b'{"pad": "' + b"x" * (settings.max_body_bytes + 10) + b'"}'
    r = client.post("/v1/reports", content=big, headers={**auth(utility_key), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert "exceeds the limit" in r.json()["detail"]
    assert client.post("/v1/reports", json=body, headers=auth(utility_key)).status_code == 201


def test_self_intersecting_polygon_is_repaired_and_flagged(client, utility_key):
    bowtie = {"type": "Polygon", "coordinates": [[[-73.99, 40.71], [-73.96, 40.74], [-73.96, 40.71],
                                                 [-73.99, 40.74], [-73.99, 40.71]]]}
    r = client.post("/v1/reports", json=report(bowtie), headers=auth(utility_key))
    assert r.status_code == 201, r.text
    assert "Self-intersection" in r.json()["repaired"]
    assert r.json()["geometry"]["type"] == "MultiPolygon"


def test_same_report_twice_returns_the_first(client, utility_key):
    first = client.post("/v1/reports", json=report(), headers=auth(utility_key))
    again = client.post("/v1/reports", json=report(), headers=auth(utility_key))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["zones"] == first.json()["zones"]


def test_same_external_id_different_body_is_409(client, utility_key):
    assert client.post("/v1/reports", json=report(), headers=auth(utility_key)).status_code == 201
    r = client.post("/v1/reports", json=report(customers_affected=900), headers=auth(utility_key))
    assert r.status_code == 409
    assert "'X1' already exists with a different body" in r.json()["detail"]


def test_two_polygon_zones_get_area_weights(client, utility_key):
    # Straddles districts A and B: three quarters in A, one quarter in B.
    poly = {"type": "Polygon", "coordinates": [[[-73.99, 40.71], [-73.94, 40.71], [-73.94, 40.72],
                                               [-73.99, 40.72], [-73.99, 40.71]]]}
    r = client.post("/v1/reports", json=report(poly), headers=auth(utility_key))
    assert r.status_code == 201
    weights = {z["code"]: z["weight"] for z in r.json()["zones"]["district"]}
    assert weights["A"] == pytest.approx(0.8, abs=0.01)
    assert weights["B"] == pytest.approx(0.2, abs=0.01)


# --- limits, territory, ZIP and address, Idempotency-Key, rate limit ---------------------------------



def test_too_many_vertices_is_422_with_count_and_limit(make_client, utility_key):
    c = make_client(max_vertices=4)
    r = c.post("/v1/reports", json=report(square(-73.99, 40.71, -73.98, 40.72)), headers=auth(utility_key))
    assert r.status_code == 422
    assert "geometry has 5 vertices, more than the limit of 4" in r.json()["detail"]
    assert c.post("/v1/reports", json=report(), headers=auth(utility_key)).status_code == 201


def test_too_large_area_is_422_with_area_and_limit(make_client, utility_key):
    c = make_client(max_area_km2=5)
    # 0.05 x 0.05 degrees at 40.7N is about 4.22 km x 5.55 km = 23.4 km² (23.5 on the WGS84 ellipsoid).
    r = c.post("/v1/reports", json=report(square(-74.0, 40.70, -73.95, 40.75)), headers=auth(utility_key))
    assert r.status_code == 422
    assert "geometry covers 23.5 km², more than the limit of 5 km²" in r.json()["detail"]


def test_report_outside_the_utility_territory_is_422(client, session_factory):
    key = add_utility(session_factory, "Territorial Gas",
                      territory_wkt="MULTIPOLYGON(((-74 40.7,-73.95 40.7,-73.95 40.75,-74 40.75,-74 40.7)))")
    outside = client.post("/v1/reports", json=report({"type": "Point", "coordinates": [-73.92, 40.72]}),
                          headers=auth(key))
    assert outside.status_code == 422
    assert "outside the service territory of utility 'Territorial Gas'" in outside.json()["detail"]
    assert "lon -73.92000" in outside.json()["detail"]
    inside = client.post("/v1/reports", json=report(), headers=auth(key))
    assert inside.status_code == 201, inside.text


def test_zip_without_geometry_uses_the_zcta_polygon(client, utility_key, session_factory):
    load_zip_layer(session_factory)
    body = report(None, zip="10001")
    body["geometry"] = None
    r = client.post("/v1/reports", json=body, headers=auth(utility_key))
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["located_by"] == "zip"
    assert got["geometry"]["type"] == "MultiPolygon"
    assert got["zones"]["district"] == [{"code": "A", "name": "District A", "weight": 1.0}]
    assert got["zones"]["zcta"][0]["code"] == "10001"


def test_address_with_a_zip_is_located_by_that_zip(client, utility_key, session_factory):
    load_zip_layer(session_factory)
    body = {"type": "Feature", "properties": {"external_id": "ADDR1", "category": "water_main",
                                              "address": "10520 Broadway, New York, NY 10001-2345"}}
    r = client.post("/v1/reports", json=body, headers=auth(utility_key))
    assert r.status_code == 201, r.text
    assert r.json()["located_by"] == "address"
    assert [z["code"] for z in r.json()["zones"]["zcta"]] == ["10001"]


@pytest.mark.parametrize("props, field, needle", [
    ({"zip": "99999"}, "properties.zip", "ZIP '99999' is not a known ZIP code area"),
    ({"address": "1 Main St, Springfield"}, "properties.address",
     "address '1 Main St, Springfield' contains no 5-digit ZIP"),
    ({"address": "1 Main St, Nowhere 99999"}, "properties.address", "ZIP '99999' is not a known"),
])
def test_unknown_zip_or_address_is_422_naming_it(client, utility_key, session_factory, props, field, needle):
    load_zip_layer(session_factory)
    body = {"type": "Feature", "geometry": None, "properties": {"external_id": "Z", "category": "other", **props}}
    r = client.post("/v1/reports", json=body, headers=auth(utility_key))
    assert r.status_code == 422
    assert needle in r.json()["detail"] and r.json()["field"] == field


def test_no_geometry_zip_or_address_is_422(client, utility_key):
    body = {"type": "Feature", "geometry": None, "properties": {"external_id": "Z", "category": "other"}}
    r = client.post("/v1/reports", json=body, headers=auth(utility_key))
    assert r.status_code == 422
    assert "neither properties.zip nor properties.address" in r.text


def test_malformed_zip_is_422(client, utility_key):
    body = {"type": "Feature", "properties": {"external_id": "Z", "category": "other", "zip": "1000"}}
    r = client.post("/v1/reports", json=body, headers=auth(utility_key))
    assert r.status_code == 422
    assert ["body", "properties", "zip"] in [e["loc"] for e in r.json()["detail"]]


def test_idempotency_key_same_body_returns_the_stored_report(client, utility_key):
    headers = {**auth(utility_key), "Idempotency-Key": "retry-abc-1"}
    first = client.post("/v1/reports", json=report(), headers=headers)
    again = client.post("/v1/reports", json=report(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == f"/v1/reports/{first.json()['id']}"


def test_idempotency_key_with_a_different_body_is_409_naming_the_key(client, utility_key):
    headers = {**auth(utility_key), "Idempotency-Key": "retry-abc-2"}
    assert client.post("/v1/reports", json=report(), headers=headers).status_code == 201
    r = client.post("/v1/reports", json=report(external_id="X2"), headers=headers)
    assert r.status_code == 409
    assert "Idempotency-Key 'retry-abc-2' was already used" in r.json()["detail"]
    listed = client.get("/v1/reports", headers=auth(utility_key)).json()["items"]
    assert [i["external_id"] for i in listed] == ["X1"]


def test_nul_characters_and_nan_are_422_not_500(client, utility_key):
    r = client.post("/v1/reports", json=report(description="gas\x00leak"), headers=auth(utility_key))
    assert r.status_code == 422 and "NUL characters" in r.text
    raw = b'{"type":"Feature","geometry":{"type":"Point","coordinates":[-73.975,40.725]},' \
          b'"properties":{"external_id":"N","category":"other","depth":NaN}}'
    r = client.post("/v1/reports", content=raw, headers={**auth(utility_key), "Content-Type": "application/json"})
    assert r.status_code == 422 and "not a finite number" in r.text


def test_rate_limit_is_429_with_retry_after(make_client, utility_key):
    c = make_client(rate_limit_per_min=2)
    codes = [c.post("/v1/reports", json=report(external_id=f"R{i}"), headers=auth(utility_key)).status_code
             for i in range(3)]
    assert codes == [201, 201, 429]
    r = c.get("/v1/reports", headers=auth(utility_key))
    assert r.status_code == 429
    # Half a minute at 2/min, less whatever time the requests took (exact values: test_ratelimit.py).
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert "rate limit of 2 requests per minute" in r.json()["detail"]
