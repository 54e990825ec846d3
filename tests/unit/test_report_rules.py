"""Pure parts of utility reports: lifecycle, ETags, rate limit, cursors, filters, geometry limits."""

import math

import pytest
from shapely.geometry import Point, Polygon

from db.errors import InvalidInput
from geo.errors import InvalidGeometry
from geo.geojson import area_km2, check_limits, parse_bbox
from ingest.reports import queries as report_queries
from ingest.errors import InvalidTransition
from accounts.ratelimit import KeyRateLimiter
from ingest.reports.updates import allowed, check_transition, etag, etag_matches
from ingest.reports.schemas import check_json_values


@pytest.mark.parametrize("current, wanted, ok", [
    ("reported", "reported", True),
    ("reported", "investigating", True),
    ("investigating", "restoring", True),
    ("restoring", "restored", True),
    ("reported", "restored", True),  # skipping steps forward is fine
    ("reported", "cancelled", True),
    ("restoring", "cancelled", True),
    ("restoring", "investigating", False),  # never backwards
    ("investigating", "reported", False),
    ("restored", "investigating", False),  # terminal
    ("restored", "cancelled", False),
    ("cancelled", "reported", False),
    ("cancelled", "cancelled", True),
])
def test_lifecycle(current, wanted, ok):
    assert allowed(current, wanted) is ok


def test_refused_transition_names_both_states():
    with pytest.raises(InvalidTransition, match="cannot go from 'restored' to 'investigating': 'restored' is terminal"):
        check_transition(7, "restored", "investigating")


@pytest.mark.parametrize("header, version, ok", [
    ('W/"3"', 3, True),
    ('"3"', 3, True),
    ("3", 3, True),
    ("*", 9, True),
    ('W/"2"', 3, False),
    ('W/"1", W/"3"', 3, True),
    ('W/"13"', 3, False),
    ("", 3, False),
])
def test_if_match(header, version, ok):
    assert etag_matches(header, version) is ok


def test_etag_is_weak_version():
    assert etag(4) == 'W/"4"'


def test_rate_limit_bucket_refills_at_the_configured_rate():
    limiter = KeyRateLimiter(per_min=3)
    assert [limiter.take(1, now_s=100.0) for _ in range(3)] == [None, None, None]
    assert limiter.take(1, now_s=100.0) == 20  # one token per 20 s
    assert limiter.take(2, now_s=100.0) is None  # other keys have their own bucket
    assert limiter.take(1, now_s=110.0) == 10
    assert limiter.take(1, now_s=120.0) is None
    assert limiter.take(1, now_s=120.0) == 20


def test_rate_limit_zero_disables():
    limiter = KeyRateLimiter(per_min=0)
    assert all(limiter.take(1, now_s=0.0) is None for _ in range(1000))


@pytest.mark.parametrize("value, needle", [
    ({"a": "x\x00y"}, "NUL characters"),
    ({"a": [1.0, float("nan")]}, r"body\.a\[1\]: nan is not a finite number"),
    ({"a": {"b": float("inf")}}, "inf is not a finite"),
    ({"a": "\ud800"}, "not valid Unicode"),
])
def test_unstorable_json_values_are_refused(value, needle):
    with pytest.raises(ValueError, match=needle):
        check_json_values(value)


def test_storable_json_values_pass():
    check_json_values({"a": ["ok", 1, 2.5, None, True, {"b": "ü"}]})


def test_cursor_round_trip_and_garbage():
    assert report_queries.decode_cursor(report_queries.encode_cursor(1234)) == 1234
    for bad in ("garbage", "e30", report_queries.encode_cursor(1)[:-2] + "!!"):
        with pytest.raises(InvalidInput, match="is not a cursor"):
            report_queries.decode_cursor(bad)


@pytest.mark.parametrize("raw, ok", [
    ("-74,40.7,-73.9,40.8", True),
    ("-73.9,40.7,-74,40.8", False),  # west > east
    ("1,2,3", False),
    ("a,b,c,d", False),
    ("-74,40.7,-73.9,95", False),
])
def test_bbox_parse(raw, ok):
    if ok:
        assert parse_bbox(raw) == (-74.0, 40.7, -73.9, 40.8)
    else:
        with pytest.raises(InvalidInput, match=f"bbox '{raw}'"):
            parse_bbox(raw)


def test_zone_filter_parse():
    assert report_queries.parse_zone("nta:QN0103") == ("nta", "QN0103")
    with pytest.raises(InvalidInput, match="zone 'nta' is not layer:code"):
        report_queries.parse_zone("nta")


def test_area_of_a_known_square():
    # 0.01° x 0.01° at the equator is about 1.1132 km x 1.1057 km.
    square = Polygon([(0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01)])
    assert area_km2(square) == pytest.approx(1.2308, rel=1e-3)
    assert area_km2(Point(0, 0)) == 0.0


def test_limits_name_the_value_and_the_limit():
    square = Polygon([(0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01)])
    check_limits(square, max_vertices=5, max_area_km2=2)
    with pytest.raises(InvalidGeometry, match="geometry has 5 vertices, more than the limit of 4"):
        check_limits(square, max_vertices=4, max_area_km2=2)
    with pytest.raises(InvalidGeometry, match=r"geometry covers 1\.2 km², more than the limit of 1 km²"):
        check_limits(square, max_vertices=5, max_area_km2=1)
    assert math.isfinite(area_km2(square))
