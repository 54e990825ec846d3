"""PATCH /v1/reports/{id} with keys outside the Feature: 422 naming the key, and nothing changes."""

import pytest
from reports_support import auth, report

pytestmark = [pytest.mark.integration, pytest.mark.committing]


def test_a_status_outside_properties_is_refused_by_name(client, utility_key):
    rid = client.post("/v1/reports", headers=auth(utility_key), json=report()).json()["id"]
    r = client.patch(f"/v1/reports/{rid}", headers=auth(utility_key), json={"status": "restoring"})
    assert r.status_code == 422
    assert "status" in str(r.json()["detail"]) and "not permitted" in str(r.json()["detail"])
    assert client.get(f"/v1/reports/{rid}", headers=auth(utility_key)).json()["status"] == "reported"
    ok = client.patch(f"/v1/reports/{rid}", headers=auth(utility_key),
                      json={"type": "Feature", "id": "x", "properties": {"status": "restoring"}})
    assert ok.status_code == 200 and ok.json()["status"] == "restoring"
