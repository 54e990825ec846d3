"""PATCH /v1/reports/{id}: the status machine, ETag/If-Match, history, new versions and retired evidence."""

import pytest
from reports_support import auth, make_client, report, square  # noqa: F401  (make_client is a fixture)
from sqlalchemy import text

pytestmark = [pytest.mark.integration, pytest.mark.committing]


def post(client, key, **props):
    r = client.post("/v1/reports", json=report(**props), headers=auth(key))
    assert r.status_code == 201, r.text
    return r


def test_status_moves_forward_with_etags_and_history(client, utility_key):
    created = post(client, utility_key)
    rid = created.json()["id"]
    assert created.headers["ETag"] == 'W/"1"'
    r = client.patch(f"/v1/reports/{rid}", headers={**auth(utility_key), "If-Match": 'W/"1"'},
                     json={"properties": {"status": "investigating", "customers_affected": 120}})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["customers_affected"], r.json()["version"]) == ("investigating", 120, 2)
    assert r.headers["ETag"] == 'W/"2"'
    r = client.patch(f"/v1/reports/{rid}", headers=auth(utility_key), json={"properties": {
        "status": "restoring", "estimated_restore_at": "2026-11-26T03:00:00Z", "crew": "B-7"}})
    assert r.status_code == 200 and r.json()["version"] == 3
    got = client.get(f"/v1/reports/{rid}", headers=auth(utility_key))
    assert got.headers["ETag"] == 'W/"3"'
    history = got.json()["history"]
    assert [(h["version"], h["status"]) for h in history] == [(1, "reported"), (2, "investigating"),
                                                              (3, "restoring")]
    assert history[1]["changes"] == {"status": ["reported", "investigating"], "customers_affected": [None, 120]}
    assert history[2]["changes"]["crew"] == [None, "B-7"]
    assert history[2]["changes"]["estimated_restore_at"][1].startswith("2026-11-26T03:00:00")


def test_stale_if_match_is_412_and_changes_nothing(client, utility_key):
    rid = post(client, utility_key).json()["id"]
    assert client.patch(f"/v1/reports/{rid}", headers=auth(utility_key),
                        json={"properties": {"customers_affected": 5}}).status_code == 200
    r = client.patch(f"/v1/reports/{rid}", headers={**auth(utility_key), "If-Match": 'W/"1"'},
                     json={"properties": {"customers_affected": 9}})
    assert r.status_code == 412
    assert "If-Match 'W/\"1\"' does not match" in r.json()["detail"] and 'W/"2"' in r.json()["detail"]
    assert client.get(f"/v1/reports/{rid}", headers=auth(utility_key)).json()["customers_affected"] == 5


@pytest.mark.parametrize("path, wanted, needle", [
    (["restored"], "investigating", "cannot go from 'restored' to 'investigating': 'restored' is terminal"),
    (["restoring"], "reported", "cannot go from 'restoring' to 'reported': status only moves forward"),
    (["cancelled"], "restored", "cannot go from 'cancelled' to 'restored'"),
])
def test_refused_transitions_are_409_naming_them(client, utility_key, path, wanted, needle):
    rid = post(client, utility_key).json()["id"]
    for status in path:
        assert client.patch(f"/v1/reports/{rid}", json={"properties": {"status": status}},
                            headers=auth(utility_key)).status_code == 200
    r = client.patch(f"/v1/reports/{rid}", json={"properties": {"status": wanted}}, headers=auth(utility_key))
    assert r.status_code == 409
    assert needle in r.json()["detail"]


def test_a_terminal_report_refuses_any_change_but_tolerates_a_no_op(client, utility_key):
    rid = post(client, utility_key).json()["id"]
    client.patch(f"/v1/reports/{rid}", json={"properties": {"status": "restored"}}, headers=auth(utility_key))
    same = client.patch(f"/v1/reports/{rid}", json={"properties": {"status": "restored"}}, headers=auth(utility_key))
    assert same.status_code == 200 and same.json()["version"] == 2
    r = client.patch(f"/v1/reports/{rid}", json={"properties": {"customers_affected": 1}}, headers=auth(utility_key))
    assert r.status_code == 409 and "terminal" in r.json()["detail"]


def test_new_geometry_rematches_zones(client, utility_key):
    rid = post(client, utility_key).json()["id"]  # a point in district A
    r = client.patch(f"/v1/reports/{rid}", headers=auth(utility_key),
                     json={"geometry": {"type": "Point", "coordinates": [-73.925, 40.725]}})
    assert r.status_code == 200
    assert [z["code"] for z in r.json()["zones"]["district"]] == ["B"]
    r = client.patch(f"/v1/reports/{rid}", headers=auth(utility_key),
                     json={"geometry": square(-73.99, 40.71, -73.94, 40.72)})
    assert {z["code"]: z["weight"] for z in r.json()["zones"]["district"]} == pytest.approx({"A": 0.8, "B": 0.2},
                                                                                            abs=0.01)
    assert client.get(f"/v1/reports/{rid}", headers=auth(utility_key)).json()["geometry"]["type"] == "Polygon"


def test_a_new_geometry_is_parsed_once_by_validation(client, utility_key, monkeypatch):
    """The PATCH's footprint is the shape its validation built (locate.footprint), as a new report's is."""
    import sys

    rid = post(client, utility_key).json()["id"]

    def parse_again(*args, **kwargs):
        raise AssertionError("the PATCH's geometry was parsed again")

    # Every use of parse_geometry on the report path, except the schema's own (the one parse).
    for name, module in list(sys.modules.items()):
        if name.startswith("ingest.reports.") and name != "ingest.reports.schemas" \
                and hasattr(module, "parse_geometry"):
            monkeypatch.setattr(module, "parse_geometry", parse_again)
    r = client.patch(f"/v1/reports/{rid}", headers=auth(utility_key),
                     json={"geometry": square(-73.99, 40.71, -73.94, 40.72)})
    assert r.status_code == 200, r.text
    assert sorted(z["code"] for z in r.json()["zones"]["district"]) == ["A", "B"]


@pytest.mark.parametrize("body, needle", [
    ({"properties": {"status": None}}, "properties.status cannot be null"),
    ({"properties": {"external_id": "NEW"}}, "properties.external_id cannot be changed"),
    ({"geometry": None}, "geometry cannot be null"),
    ({"properties": {"status": "exploded"}}, "status"),
    ({"geometry": {"type": "Point", "coordinates": [40.725, -73.975]}}, "swapped"),
])
def test_bad_patches_are_422(client, utility_key, body, needle):
    rid = post(client, utility_key).json()["id"]
    r = client.patch(f"/v1/reports/{rid}", json=body, headers=auth(utility_key))
    assert r.status_code == 422
    assert needle in r.text


def _live_signals(engine, zone_code: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM signals s JOIN zones z ON z.id = s.zone_id "
            "WHERE z.code = :code AND s.retired_at IS NULL"), {"code": zone_code}).scalar_one()


def test_versions_do_not_double_count_and_restored_retires_evidence(client, utility_key, engine):
    # outage_cluster (tests/data/rules.yaml) opens an alert at 2 power outages in a district in 10 minutes.
    rid = post(client, utility_key, external_id="O1").json()["id"]
    for status in ("investigating", "restoring"):
        client.patch(f"/v1/reports/{rid}", json={"properties": {"status": status}}, headers=auth(utility_key))
    assert _live_signals(engine, "A") == 1  # three versions, one live signal
    client.patch(f"/v1/reports/{rid}", json={"properties": {"status": "restored"}}, headers=auth(utility_key))
    assert _live_signals(engine, "A") == 0
    # So a second outage alone does not reach the threshold ...
    assert post(client, utility_key, external_id="O2").json()["alerts_changed"] == []
    # ... while a third, with the second still live, does.
    assert post(client, utility_key, external_id="O3").json()["alerts_changed"] != []
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT external_id FROM observations WHERE external_id LIKE :pattern "
                                     "ORDER BY id"), {"pattern": "%:O1%"}).scalars().all()
    assert [v.split(":", 1)[1] for v in versions] == ["O1", "O1:v2", "O1:v3", "O1:v4"]


def test_unchanged_patch_makes_no_new_version(client, utility_key):
    rid = post(client, utility_key, customers_affected=10).json()["id"]
    r = client.patch(f"/v1/reports/{rid}", json={"properties": {"customers_affected": 10}}, headers=auth(utility_key))
    assert r.status_code == 200 and r.json()["version"] == 1


LARGE_OUTAGE_RULES = """
rules:
  - name: large_outage
    categories: [power_outage]
    sources: [utility_report]
    layer: district
    immediate: true
    conditions:
      customers_affected: {gte: 500}
    severity: major
"""


def test_rule_conditions_see_customers_affected_including_after_a_patch(make_client, utility_key, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(LARGE_OUTAGE_RULES)
    c = make_client(rules_file=rules)
    small = c.post("/v1/reports", json=report(external_id="S", customers_affected=100), headers=auth(utility_key))
    assert small.status_code == 201 and small.json()["alerts_changed"] == []
    grown = c.patch(f"/v1/reports/{small.json()['id']}", json={"properties": {"customers_affected": 800}},
                    headers=auth(utility_key))
    assert grown.status_code == 200 and len(grown.json()["alerts_changed"]) == 1
