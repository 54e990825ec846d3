"""POST /v1/reports:batch: one result per item; a bad item does not sink the others."""

import pytest
from reports_support import auth, report

pytestmark = [pytest.mark.integration, pytest.mark.committing]


def test_mixed_batch_reports_each_item(client, utility_key):
    features = [
        report(external_id="B0"),
        report({"type": "Point", "coordinates": [-73.9, 200]}, external_id="B1"),  # schema error
        report({"type": "Point", "coordinates": [40.725, -73.975]}, external_id="B2"),  # swapped
        report(external_id="B3", category="gas_leak"),
        report(external_id="B0"),  # repeat of item 0 in the same batch
        report(external_id="B0", customers_affected=5),  # same id, different body
        "not a feature",
    ]
    r = client.post("/v1/reports:batch", json={"type": "FeatureCollection", "features": features},
                    headers=auth(utility_key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["existing"], body["rejected"]) == (2, 1, 4)
    res = body["results"]
    assert [x["status"] for x in res] == ["created", "rejected", "rejected", "created", "existing", "rejected",
                                          "rejected"]
    assert res[1]["error"]["kind"] == "validation"
    assert "latitude 200 is outside [-90, 90]" in str(res[1]["error"]["detail"])
    assert res[2]["error"]["kind"] == "outside_jurisdiction" and "swapped" in res[2]["error"]["detail"]
    assert res[4]["id"] == res[0]["id"]
    assert res[5]["error"]["kind"] == "idempotency_conflict"
    listed = client.get("/v1/reports", headers=auth(utility_key)).json()["items"]
    assert sorted(i["external_id"] for i in listed) == ["B0", "B3"]
    # The gas leak in the batch fed the rules like a single POST would.
    detail = client.get(f"/v1/reports/{res[3]['id']}", headers=auth(utility_key)).json()
    assert detail["zones"]["district"][0]["code"] == "A"


def test_plain_array_is_accepted(client, utility_key):
    r = client.post("/v1/reports:batch", json=[report(external_id=f"A{i}") for i in range(3)],
                    headers=auth(utility_key))
    assert r.status_code == 200 and r.json()["created"] == 3


def test_more_than_1000_items_is_422(client, utility_key):
    r = client.post("/v1/reports:batch", json=[{}] * 1001, headers=auth(utility_key))
    assert r.status_code == 422
    assert "1000" in r.text
