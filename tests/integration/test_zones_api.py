"""GET /v1/zones returns a layer as GeoJSON built in PostGIS."""

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.committing]


def test_zone_layer_as_geojson(client):
    r = client.get("/v1/zones", params={"layer": "district"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in fc["features"]] == ["A", "B", "C"]
    a = fc["features"][0]
    assert a["id"] == "district/A" and a["geometry"]["type"] == "MultiPolygon"
    ring = a["geometry"]["coordinates"][0][0]
    assert [-74.0, 40.7] in ring and [-73.95, 40.75] in ring


def test_simplified_layer_keeps_every_zone(client):
    fc = client.get("/v1/zones", params={"layer": "district", "simplify_m": 50}).json()
    assert len(fc["features"]) == 3


def test_layers_list_counts_zones(client):
    layers = {row["name"]: row["zones"] for row in client.get("/v1/zones/layers").json()}
    assert layers == {"district": 3, "precinct": 1}


@pytest.mark.parametrize("params, status, needle", [
    ({"layer": "nope"}, 404, "zone layer 'nope' is not loaded"),
    ({}, 422, "layer"),
    ({"layer": "district", "simplify_m": -1}, 422, "simplify_m"),
])
def test_bad_zone_requests(client, params, status, needle):
    r = client.get("/v1/zones", params=params)
    assert r.status_code == status
    assert needle in r.text
