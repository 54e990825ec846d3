"""Outage-feed mapping, field by field, on small hand-written snapshots (tests/data/feeds)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.reports.feeds import FeedError, az_external_id, az_time, parse_feed, web_mercator_to_lonlat

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"


def load(fmt: str, name: str):
    return parse_feed(fmt, json.loads((FEEDS / f"{name}.json").read_text()))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def by_id(parsed):
    return {item.external_id: item.body for item in parsed.items}


def test_pge_points_map_field_by_field():
    parsed = load("pge", "pge_1")
    bodies = by_id(parsed)
    assert list(bodies) == ["900101", "900102", "900103"]

    a = bodies["900101"]
    assert a.geometry == {"type": "Point", "coordinates": [-122.27, 37.80]}
    p = a.properties
    assert (p.external_id, p.category, p.status) == ("900101", "power_outage", "reported")
    assert (p.customers_affected, p.cause) == (3, "STORM")
    assert p.started_at == utc(2024, 2, 4, 3, 40, 51)  # OUTAGE_START 1707018051000 ms
    assert p.estimated_restore_at == utc(2024, 2, 4, 14, 0)  # CURRENT_ETOR 1707055200000 ms
    assert p.description == "customer outage in Oakland (crew: Awaiting T-Man)"

    # A string id, the ISO start text when the epoch is null, AUTO_ETOR when CURRENT_ETOR is null.
    b = bodies["900102"].properties
    assert b.status == "restoring"  # Crew On Site
    assert (b.customers_affected, b.cause) == (120, "BRKN POLE")
    assert b.started_at == utc(2024, 2, 4, 10, 15)
    assert b.estimated_restore_at == utc(2024, 2, 5, 2, 26, 40)
    assert b.description == "device outage in Sacramento (crew: Crew On Site)"

    # No lat/lon: the Web Mercator point of San Jose is unprojected.
    c = bodies["900103"]
    assert c.geometry["coordinates"] == pytest.approx([-121.8863, 37.3382], abs=1e-9)
    assert c.properties.estimated_restore_at is None


def test_pge_bad_rows_are_rejected_with_index_and_reason():
    rejected = load("pge", "pge_1").rejected
    assert [(r.index, r.external_id) for r in rejected] == [(3, "900104"), (4, None)]
    assert "latitude 200.0 is outside [-90, 90]" in rejected[0].reason
    assert rejected[1].reason == "F_OUTAGE_ID is missing"


@pytest.mark.parametrize("crew, status", [
    ("Awaiting Crew", "reported"), ("Awaiting T-Man", "reported"), ("T-Man Enroute", "investigating"),
    ("Crew Enroute", "investigating"), ("T-Man On Site", "restoring"), ("Something New", "reported"),
])
def test_pge_crew_status_maps_to_report_status(crew, status):
    row = {"F_OUTAGE_ID": 1, "OUTAGE_LATITUDE": 37.0, "OUTAGE_LONGITUDE": -122.0, "CREW_CURRENT_STATUS": crew}
    [item] = parse_feed("pge", [row]).items
    assert item.body.properties.status == status


@pytest.mark.parametrize("row, needle", [
    ({"F_OUTAGE_ID": 1, "OUTAGE_LATITUDE": "x", "OUTAGE_LONGITUDE": -122.0},
     "OUTAGE_LATITUDE must be a number, got 'x'"),
    ({"F_OUTAGE_ID": 1}, "no location"),
    ({"F_OUTAGE_ID": 1, "OUTAGE_LATITUDE": 37, "OUTAGE_LONGITUDE": -122, "EST_CUSTOMERS": -4}, "customers_affected"),
    ({"F_OUTAGE_ID": 1, "OUTAGE_LATITUDE": 37, "OUTAGE_LONGITUDE": -122, "EST_CUSTOMERS": 2.5}, "2.5 is not a whole"),
    ({"F_OUTAGE_ID": 1, "OUTAGE_LATITUDE": 37, "OUTAGE_LONGITUDE": -122, "OUTAGE_START_TEXT": "soon"}, "'soon'"),
    ("not an object", "got str"),
])
def test_pge_row_problems_name_the_value(row, needle):
    parsed = parse_feed("pge", [row])
    assert parsed.items == []
    [rejection] = parsed.rejected
    assert rejection.index == 0 and needle in rejection.reason


def test_duplicate_ids_keep_the_first():
    rows = [{"F_OUTAGE_ID": 7, "OUTAGE_LATITUDE": 37.0, "OUTAGE_LONGITUDE": -122.0}] * 2
    parsed = parse_feed("pge", rows)
    assert [i.index for i in parsed.items] == [0]
    assert parsed.rejected[0].index == 1 and "first at index 0" in parsed.rejected[0].reason


def test_az_srp_maps_field_by_field():
    parsed = load("az", "az_srp_1")
    assert parsed.rejected == []
    first, second = parsed.items
    assert first.external_id.startswith("srp-") and len(first.external_id) == 4 + 16
    assert first.body.geometry == {"type": "Point", "coordinates": [-112.2171, 33.4597]}
    p = first.body.properties
    assert (p.category, p.status, p.customers_affected, p.cause) == (
        "power_outage", "reported", 80, "Electrical equipment damage")
    assert p.started_at == utc(2026, 8, 22, 9, 42)  # 02:42 MST = UTC-7
    assert p.estimated_restore_at == utc(2026, 8, 22, 19, 42)
    assert p.description == "N 79TH AVE TO N 67TH AVE AND W MCDOWELL RD - SRP crews are working to restore power."
    q = second.body.properties
    assert q.started_at == utc(2026, 8, 22, 13, 0, 30)  # seconds are optional
    assert q.estimated_restore_at is None and q.description == "S MILL AVE TO S LAKESHORE DR"


def test_az_derived_ids_are_stable_across_snapshots():
    one, two = load("az", "az_srp_1"), load("az", "az_srp_2")
    assert two.items[0].external_id == one.items[0].external_id
    assert two.items[0].body.properties.customers_affected == 60


def test_az_tep_box_becomes_a_polygon_and_restored_event_maps():
    box, point = load("az", "az_tep").items
    assert box.body.geometry == {"type": "Polygon", "coordinates": [[
        [-110.95, 32.28], [-110.945, 32.28], [-110.945, 32.286], [-110.95, 32.286], [-110.95, 32.28]]]}
    assert box.body.properties.status == "reported"
    # A degenerate box (SW == NE) is the point itself.
    assert point.body.geometry == {"type": "Point", "coordinates": [-110.6876, 32.094]}
    assert point.body.properties.status == "restored"


def test_az_trico_uses_incident_ids_and_rejects_bad_rows():
    parsed = load("az", "az_trico")
    [item] = parsed.items
    assert item.external_id == "387922" and item.body.properties.description == "Picture Rocks - Planned outage"
    assert [(r.index, r.external_id) for r in parsed.rejected] == [(1, "387923"), (2, "387924"), (3, "387925")]
    assert "'2026-13-01 08:00:00 MST' is not a valid date" in parsed.rejected[0].reason
    assert "unknown time zone 'PST'" in parsed.rejected[1].reason
    assert "no location" in parsed.rejected[2].reason


@pytest.mark.parametrize("value, expected", [
    ("2026-08-22 00:37:00 MST", utc(2026, 8, 22, 7, 37)),
    ("2026-08-22 23:30 MST", utc(2026, 8, 23, 6, 30)),
    ("2026-08-22 10:00 UTC", utc(2026, 8, 22, 10, 0)),
    (None, None),
])
def test_az_time(value, expected):
    assert az_time(value, "t") == expected


def test_az_external_id_without_incident_id_depends_on_place_and_start():
    row = {"latitude": 33.1, "longitude": -112.0, "start_time": "2026-08-22 02:42 MST"}
    assert az_external_id("SRP", row) == az_external_id("SRP", dict(row, customers=99))
    assert az_external_id("SRP", row) != az_external_id("SRP", dict(row, latitude=33.2))
    assert az_external_id("APS", row).startswith("aps-")


def test_web_mercator_round_trip_at_known_points():
    assert web_mercator_to_lonlat(0.0, 0.0) == (0.0, 0.0)
    lon, lat = web_mercator_to_lonlat(-13603453.282, 4549466.933)  # PG&E's own pair for Oakland
    assert (lon, lat) == pytest.approx((-122.2019, 37.78762), abs=1e-5)


@pytest.mark.parametrize("fmt, data, needle", [
    ("pge", {"outages": []}, "JSON array"),
    ("az", [], "'outages' array"),
    ("az", {"outages": []}, "metadata.provider"),
    ("csv", [], "'csv' is not one of"),
])
def test_unusable_snapshots_raise_feed_error(fmt, data, needle):
    with pytest.raises(FeedError, match=needle):
        parse_feed(fmt, data)


def test_envelope_covers_every_usable_outage():
    assert load("pge", "pge_1").envelope() == pytest.approx((-122.27, 37.3382, -121.49, 38.58))
    assert parse_feed("pge", []).envelope() is None


def test_a_pge_snapshot_at_the_page_cap_is_marked_incomplete():
    row = {"OUTAGE_LATITUDE": 37.0, "OUTAGE_LONGITUDE": -122.0}
    assert parse_feed("pge", [dict(row, F_OUTAGE_ID=i) for i in range(1999)]).complete
    assert not parse_feed("pge", [dict(row, F_OUTAGE_ID=i) for i in range(2000)]).complete
