"""Reports and alerts as GeoJSON FeatureCollections on request (?f=geojson or Accept: application/geo+json),
for GIS clients, on the hand-drawn districts."""

import pytest
from reports_support import auth, report, square

from accounts import operators
from db.session import transaction
from tests.integration.dispatch_support import T0

pytestmark = [pytest.mark.integration, pytest.mark.committing]


@pytest.fixture
def operator_headers(session_factory):
    with transaction(session_factory) as session:
        _, token = operators.add_operator(session, name="gis", role="viewer", now=T0)
    return {"Authorization": f"Bearer {token}"}


def test_reports_as_a_feature_collection(client, utility_key):
    client.post("/v1/reports", headers=auth(utility_key), json=report(external_id="P1"))
    client.post("/v1/reports", headers=auth(utility_key),
                json=report(square(-73.99, 40.71, -73.96, 40.74), external_id="A1"))
    for r in (client.get("/v1/reports?f=geojson", headers=auth(utility_key)),
              client.get("/v1/reports", headers={**auth(utility_key), "Accept": "application/geo+json"})):
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
        body = r.json()
        assert body["type"] == "FeatureCollection" and len(body["features"]) == 2
        by_ext = {f["properties"]["external_id"]: f for f in body["features"]}
        assert by_ext["P1"]["geometry"] == {"type": "Point", "coordinates": [-73.975, 40.725]}
        assert by_ext["A1"]["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert by_ext["P1"]["id"] == by_ext["P1"]["properties"]["id"]
    assert "items" in client.get("/v1/reports", headers=auth(utility_key)).json()  # plain JSON stays the default


def test_alerts_as_a_feature_collection_of_their_zones(client, utility_key, operator_headers):
    client.post("/v1/reports", headers=auth(utility_key), json=report(external_id="G1", category="gas_leak"))
    r = client.get("/v1/alerts?f=geojson", headers=operator_headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    [feature] = r.json()["features"]
    assert feature["properties"]["zone"]["code"] == "A" and feature["properties"]["category"] == "gas_leak"
    xs = [x for ring in feature["geometry"]["coordinates"][0] for x, _ in [ring]] \
        if feature["geometry"]["type"] == "Polygon" else \
        [p[0] for poly in feature["geometry"]["coordinates"] for p in poly[0]]
    assert min(xs) == pytest.approx(-74.0, abs=1e-4) and max(xs) == pytest.approx(-73.95, abs=1e-4)
    assert client.get("/v1/alerts?f=xml", headers=operator_headers).status_code == 422
