"""Bad input to POST /v1/reports gets a 4xx that names the problem; retries never duplicate."""

import pytest

pytestmark = pytest.mark.integration


def report(geometry: dict | None = None, **props) -> dict:
    return {
        "type": "Feature",
        "geometry": geometry or {"type": "Point", "coordinates": [-73.975, 40.725]},
        "properties": {"external_id": "X1", "category": "power_outage", **props},
    }


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


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


def test_malformed_json_is_422(client, utility_key):
    r = client.post("/v1/reports", content=b'{"type": "Feature", ', headers={
        **auth(utility_key), "Content-Type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.text


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
