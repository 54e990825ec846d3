"""GET /v1/reports: filters and cursor pagination over a handful of known reports."""

from datetime import UTC, datetime, timedelta

import pytest
from reports_support import auth, report, square

pytestmark = [pytest.mark.integration, pytest.mark.committing]


@pytest.fixture
def five(client, utility_key):
    """Five reports: R0..R3 points in district A, R4 a polygon in district B; R1 is a gas leak; R2 restored."""
    ids = []
    for i in range(4):
        r = client.post("/v1/reports", json=report(external_id=f"R{i}", category="gas_leak" if i == 1 else
                                                   "power_outage"), headers=auth(utility_key))
        ids.append(r.json()["id"])
    r = client.post("/v1/reports", json=report(square(-73.94, 40.71, -73.92, 40.72), external_id="R4"),
                    headers=auth(utility_key))
    ids.append(r.json()["id"])
    client.patch(f"/v1/reports/{ids[2]}", json={"properties": {"status": "restored"}}, headers=auth(utility_key))
    return ids


def names(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [i["external_id"] for i in resp.json()["items"]]


def test_filters(client, utility_key, five):
    h = auth(utility_key)
    assert names(client.get("/v1/reports", headers=h)) == ["R4", "R3", "R2", "R1", "R0"]
    assert names(client.get("/v1/reports?status=restored", headers=h)) == ["R2"]
    assert names(client.get("/v1/reports?category=gas_leak", headers=h)) == ["R1"]
    assert names(client.get("/v1/reports?zone=district:B", headers=h)) == ["R4"]
    assert names(client.get("/v1/reports?zone=district:Z", headers=h)) == []
    assert names(client.get("/v1/reports?bbox=-73.95,40.70,-73.90,40.75", headers=h)) == ["R4"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert names(client.get("/v1/reports", params={"since": future}, headers=h)) == []


def test_cursor_pages_through_everything_once(client, utility_key, five):
    h = auth(utility_key)
    seen, url = [], "/v1/reports?limit=2&category=power_outage"
    while url:
        page = client.get(url, headers=h).json()
        seen += [i["external_id"] for i in page["items"]]
        url = page["next"]
        assert (page["cursor"] is None) == (url is None)
        if url:
            assert "category=power_outage" in url and "limit=2" in url
    assert seen == ["R4", "R3", "R2", "R0"]


@pytest.mark.parametrize("query, needle", [
    ("bbox=1,2,3", "bbox '1,2,3' is not four numbers"),
    ("cursor=nonsense", "cursor 'nonsense' is not a cursor"),
    ("zone=district", "zone"),
    ("limit=0", "limit"),
    ("status=lost", "status"),
    ("since=2026-01-01T00:00:00", "timezone"),
])
def test_bad_filters_are_422(client, utility_key, query, needle):
    r = client.get(f"/v1/reports?{query}", headers=auth(utility_key))
    assert r.status_code == 422
    assert needle in r.text
