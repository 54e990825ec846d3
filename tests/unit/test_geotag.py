"""Geotagging from a tiny hand-drawn gazetteer whose answers are known."""

import math

import pytest
from shapely.geometry import LineString, Point, box

from geo import gazetteer
from geo.distance import haversine_m
from geo.geotag import Geotag, geotag

NYC = (-74.26, 40.49, -73.70, 40.92)


def _entry(name, kind, geometry, *alternates, region="US-NY", **kw):
    return gazetteer.GazetteerEntry(name=name, kind=kind, geometry=geometry, alternates=alternates, region=region, **kw)


ENTRIES = [
    _entry("Queens", "borough", box(-73.945, 40.54, -73.70, 40.80)),
    _entry("Manhattan", "borough", box(-74.02, 40.70, -73.95, 40.88)),
    _entry("Astoria", "neighbourhood", box(-73.94, 40.76, -73.90, 40.78)),
    _entry("Jamaica", "neighbourhood", box(-73.81, 40.69, -73.78, 40.71)),
    _entry("Chelsea", "neighbourhood", box(-74.01, 40.74, -73.99, 40.755)),
    _entry("Murray Hill", "neighbourhood", box(-73.985, 40.744, -73.975, 40.752)),  # Manhattan
    _entry("Murray Hill", "neighbourhood", box(-73.815, 40.76, -73.805, 40.768)),  # Queens
    _entry("Jamaica", "country", Point(-76.79, 17.99), region="JM", radius_m=59_000),
    _entry("Kingston", "city", Point(-76.79, 17.997), region="JM", radius_m=10_000),
    _entry("Astoria Blvd", "station", Point(-73.9178, 40.7703)),
    _entry("Yankee Stadium", "landmark", Point(-73.9262, 40.8296)),
    _entry("Steinway St", "street", LineString([(-73.92, 40.75), (-73.91, 40.78)]), "Steinway Street"),
    _entry("Broadway", "street", LineString([(-73.93, 40.762), (-73.90, 40.768)])),
    _entry("11102", "zip", box(-73.935, 40.765, -73.92, 40.78), code="11102"),
]
CONTEXT = {"oregon": "US-OR", "new york": "US-NY", "kingston": "JM", "jamaica": "JM", "london": "GB"}


@pytest.fixture(scope="module")
def index():
    return gazetteer.GazetteerIndex(ENTRIES, context_regions=CONTEXT)


def _inside(tag: Geotag, name: str, kind: str) -> bool:
    target = next(e for e in ENTRIES if e.name == name and e.kind == kind)
    return target.geometry.buffer(1e-6).contains(tag.point)


@pytest.mark.parametrize("text, matched, kind", [
    # cues, neighbourhoods, boroughs
    ("Water main burst in Astoria, street flooding", "Astoria", "neighbourhood"),
    ("flooding in astoria again", "astoria", "neighbourhood"),
    ("Big fire in Queens tonight", "Queens", "borough"),
    # agreement: "Astoria, Queens" picks the finer of two agreeing mentions
    ("Astoria, Queens is flooding", "Astoria", "neighbourhood"),
    # specificity: station over neighbourhood, landmark over borough
    ("Smoke at the Astoria Blvd station in Astoria", "Astoria Blvd", "station"),
    ("Crowd crush outside Yankee Stadium in the Bronx", "Yankee Stadium", "landmark"),
    # intersections of two streets in the index, in three spellings
    ("Crash at Steinway St and Broadway", "Steinway St and Broadway", "intersection"),
    ("Crash at Steinway Street & Broadway", "Steinway Street & Broadway", "intersection"),
    ("Crash at Steinway St/Broadway", "Steinway St/Broadway", "intersection"),
    # ZIP codes in context
    ("fire near 11102", "11102", "zip"),
    ("zip 11102 has no power", "11102", "zip"),
    ("Outage in 11102-1234 since noon", "11102-1234", "zip"),
    # in-jurisdiction preference: the Queens neighbourhood, not the country
    ("gas leak in Jamaica", "Jamaica", "neighbourhood"),
    # coordinates typed into the text
    ("Spill at 40.7701,-73.9170 hazmat on scene", "40.7701,-73.9170", "coordinates"),
])
def test_geotag_locates(index, text, matched, kind):
    tag = geotag(text, index, bounds=NYC)
    assert tag is not None, text
    assert (tag.matched, tag.kind, tag.method) == (matched, kind, "text")
    assert tag.span is not None and text[tag.span[0]:tag.span[1]] == matched
    assert 0.5 <= tag.confidence <= 0.99


@pytest.mark.parametrize("text", [
    "this brunch is fire",  # nothing to find
    "Chelsea FC lost again",  # the football club
    "Chelsea vs Arsenal, what a match",
    "Fire in Astoria, Oregon",  # qualified by another state
    "Fire in Astoria, OR last night",
    "Hurricane hits Jamaica, Kingston flooded",  # the country, named with its capital
    "Car crash on Jamaica Ave",  # a street named after a place is not the place
    "paid $11102 for the car",  # money, not a ZIP
    "order #11102 shipped",
    "ticket 111023 closed",  # a longer number
    "Murray Hill power outage",  # two equally good places far apart
    "astoriana is my favourite band",  # not at a token boundary
])
def test_geotag_refuses(index, text):
    assert geotag(text, index, bounds=NYC) is None


def test_country_wins_without_jurisdiction_when_context_agrees(index):
    tag = geotag("Hurricane hits Jamaica, Kingston flooded", index)  # no bounds: no home preference
    assert tag is not None and tag.kind in ("country", "city")
    assert tag.point.y < 20  # the Caribbean, not Queens


def test_zip_beats_borough_and_neighbourhood_beats_zip(index):
    assert geotag("Flooding in Queens, zip 11102", index, bounds=NYC).kind == "zip"
    assert geotag("Flooding in Astoria, zip 11102", index, bounds=NYC).kind == "neighbourhood"


def test_intersection_point_is_where_the_streets_cross(index):
    tag = geotag("Crash at Steinway St and Broadway", index, bounds=NYC)
    cross = ENTRIES[11].geometry.intersection(ENTRIES[12].geometry)
    assert tag.geometry.geom_type == "Point"
    assert haversine_m(tag.point.x, tag.point.y, cross.x, cross.y) < 1
    assert tag.uncertainty_m <= 100


def test_intersection_skipped_when_streets_absent():
    idx = gazetteer.GazetteerIndex([e for e in ENTRIES if e.kind != "street"], context_regions={})
    tag = geotag("Crash at Steinway St and Broadway in Astoria", idx, bounds=NYC)
    assert tag is not None and tag.kind == "neighbourhood"


def test_polygon_geometry_and_equal_area_uncertainty(index):
    tag = geotag("flooding in Astoria", index, bounds=NYC)
    astoria = ENTRIES[2].geometry
    assert tag.geometry.equals(astoria)
    assert _inside(tag, "Astoria", "neighbourhood")
    # 0.04 x 0.02 degrees at 40.77 N is about 3.37 km x 2.21 km.
    w_m = haversine_m(-73.94, 40.77, -73.90, 40.77)
    h_m = haversine_m(-73.92, 40.76, -73.92, 40.78)
    assert tag.uncertainty_m == pytest.approx(math.sqrt(w_m * h_m / math.pi), rel=0.01)


def test_cue_raises_confidence(index):
    bare = geotag("Astoria flooding", index, bounds=NYC)
    cued = geotag("flooding in Astoria", index, bounds=NYC)
    assert cued.confidence > bare.confidence


def test_min_confidence_refuses(index):
    assert geotag("Big fire in Queens tonight", index, bounds=NYC, min_confidence=0.95) is None


def test_explicit_coordinates_first(index):
    tag = geotag("fire in Astoria", index, coordinates=(-73.95, 40.80), bounds=NYC)
    assert (tag.method, tag.point.x, tag.point.y, tag.confidence) == ("coordinates", -73.95, 40.80, 0.99)
    assert tag.uncertainty_m == pytest.approx(10)


@pytest.mark.parametrize("coordinates", [(200.0, 40.0), (-73.9, 95.0), (0.0, 0.0), (float("nan"), 40.0)])
def test_invalid_coordinates_fall_through_to_text(index, coordinates):
    tag = geotag("fire in Astoria", index, coordinates=coordinates, bounds=NYC)
    assert tag.method == "text" and tag.matched == "Astoria"


def test_place_bbox_uncertainty_is_half_diagonal(index):
    place = {"name": "Astoria Park", "bbox": [-73.93, 40.775, -73.92, 40.782]}
    tag = geotag("lovely day", index, place=place, bounds=NYC)
    assert tag.method == "place"
    assert tag.uncertainty_m == pytest.approx(haversine_m(-73.93, 40.775, -73.92, 40.782) / 2)


def test_place_geojson_polygon(index):
    poly = {"type": "Polygon", "coordinates": [[[-73.93, 40.775], [-73.92, 40.775], [-73.92, 40.782], [-73.93, 40.775]]]}
    tag = geotag("", index, place={"name": "x", "geometry": poly})
    assert tag.method == "place" and tag.geometry.geom_type == "Polygon"


def test_coarse_place_refined_by_agreeing_text(index):
    city = {"name": "New York, NY", "bbox": [-74.26, 40.49, -73.70, 40.92]}
    tag = geotag("water main break in Astoria", index, place=city, bounds=NYC)
    assert tag.method == "text" and tag.matched == "Astoria"
    alone = geotag("lovely day", index, place=city, bounds=NYC)
    assert alone.method == "place" and alone.uncertainty_m > 20_000


def test_place_name_without_geometry_is_geoparsed(index):
    tag = geotag("lovely day", index, place={"name": "Astoria, Queens"}, bounds=NYC)
    assert tag.method == "place" and tag.kind == "neighbourhood"


def test_point_property_is_inside_polygon(index):
    tag = geotag("flooding in Astoria", index, bounds=NYC)
    assert isinstance(tag.point, Point) and tag.geometry.contains(tag.point)


def test_non_ascii_text_keeps_spans(index):
    text = "Überschwemmung in Astoria — café flooded"
    tag = geotag(text, index, bounds=NYC)
    assert text[tag.span[0]:tag.span[1]] == "Astoria"


def test_haversine_known_distance():
    # One degree of latitude is about 111.2 km on the mean sphere.
    assert haversine_m(0, 0, 0, 1) == pytest.approx(111_195, rel=1e-3)
    assert haversine_m(-73.9, 40.7, -73.9, 40.7) == 0


def test_demo_gazetteer_real_names(demo_gazetteer_entries):
    idx = gazetteer.GazetteerIndex(list(demo_gazetteer_entries))
    boroughs = {e.name: e.geometry for e in idx.entries if e.kind == "borough"}
    tag = geotag("flooding in Astoria", idx, bounds=NYC)
    assert tag is not None and boroughs["Queens"].contains(tag.point)
    tag = geotag("fire near 10027", idx, bounds=NYC)
    zcta = next(e for e in idx.entries if e.kind == "zip" and e.code == "10027")
    assert tag is not None and tag.kind == "zip" and zcta.geometry.contains(tag.point)
    tag = geotag("Smoke over Chelsea right now", idx, bounds=NYC)
    assert tag is not None and boroughs["Manhattan"].contains(tag.point)
    tag = geotag("Power out in Bed-Stuy since 6pm", idx, bounds=NYC)
    assert tag is not None and boroughs["Brooklyn"].contains(tag.point)
    assert geotag("Chelsea FC lost again", idx, bounds=NYC) is None

