"""Parsing GeoJSON geometries: every refusal names the problem and quotes the value."""

import json

import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

from geo.errors import InvalidGeometry
from geo.geojson import as_geojson, parse_geometry, polygonal_part, repair, within_bbox

SQUARE = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]


@pytest.mark.parametrize("obj, expected", [
    ({"type": "Point", "coordinates": [-73.9, 40.7]}, Point(-73.9, 40.7)),
    ({"type": "Point", "coordinates": [-73.9, 40.7, 12.0]}, Point(-73.9, 40.7)),
    ({"type": "Polygon", "coordinates": SQUARE}, Polygon(SQUARE[0])),
    ({"type": "MultiPolygon", "coordinates": [SQUARE]}, MultiPolygon([Polygon(SQUARE[0])])),
])
def test_valid_geometries_parse(obj, expected):
    assert parse_geometry(obj).equals(expected)


@pytest.mark.parametrize("obj, needle", [
    ({"type": "Point", "coordinates": [-73.9, 200]}, "latitude 200 is outside [-90, 90]"),
    ({"type": "Point", "coordinates": [-181, 40]}, "longitude -181 is outside [-180, 180]"),
    ({"type": "Point", "coordinates": [True, 40]}, "longitude must be a number, got True"),
    ({"type": "Point", "coordinates": [1]}, "a position is [longitude, latitude], got [1]"),
    ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "'LineString' is not one of"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "not closed"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 4 positions, got 3"),
    ({"type": "Polygon", "coordinates": []}, "non-empty list of rings"),
    ({"type": "MultiPolygon", "coordinates": "nope"}, "list of polygons"),
    ("Point(1 2)", "must be a GeoJSON object, got str"),
])
def test_invalid_geometries_name_the_problem(obj, needle):
    with pytest.raises(InvalidGeometry) as info:
        parse_geometry(obj)
    assert needle in info.value.reason


def test_vertex_limit():
    ring = [[i / 1000, 0] for i in range(50)] + [[0, 1], [0, 0]]
    with pytest.raises(InvalidGeometry, match="52 vertices, more than the limit of 20"):
        parse_geometry({"type": "Polygon", "coordinates": [ring]}, max_vertices=20)


def test_repair_bowtie_keeps_both_lobes():
    bowtie = parse_geometry({"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]})
    fixed, note = repair(bowtie)
    assert note and "Self-intersection" in note
    assert isinstance(fixed, MultiPolygon) and fixed.is_valid
    assert fixed.area == pytest.approx(2.0)


def test_repair_leaves_valid_geometry_alone():
    square = Polygon(SQUARE[0])
    assert repair(square) == (square, None)


def test_polygonal_part_drops_lines_and_points():
    from shapely.geometry import GeometryCollection, LineString

    gc = GeometryCollection([Polygon(SQUARE[0]), LineString([(0, 0), (5, 5)]), Point(9, 9)])
    assert polygonal_part(gc).equals(MultiPolygon([Polygon(SQUARE[0])]))
    assert polygonal_part(LineString([(0, 0), (1, 1)])) is None


@pytest.mark.parametrize("geom, inside", [
    (Point(-73.9, 40.7), True),
    (Point(40.7, -73.9), False),
    (Polygon([(-74.5, 40.6), (-73.9, 40.6), (-73.9, 40.7)]), False),
])
def test_within_bbox(geom, inside):
    assert within_bbox(geom, (-74.3, 40.45, -73.65, 40.95)) is inside


@pytest.mark.parametrize("geom", [
    Point(-73.94412345678912, 40.66912345678901), Point(-74.0, 40.7, 12.5), Point(),
    Polygon([(0, 0), (1, 0), (1, 1), (0, 0)]),
], ids=["point", "point-z", "empty-point", "polygon"])
def test_as_geojson_is_what_geos_writes(geom):
    assert as_geojson(geom) == json.loads(shapely.to_geojson(geom))
