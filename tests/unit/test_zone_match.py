"""geo.match_memory without a database: zone pieces built by hand, answers known or from GEOS overlay."""

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from geo import match_memory as zone_match

# Two zones side by side (1 and 2), a zone with a hole (3) and a triangle drawn clockwise (4).
PIECES = [
    box(0, 0, 2, 2),
    box(2, 0, 4, 2),
    Polygon([(0, 3), (4, 3), (4, 6), (0, 6)], [[(1, 4), (1, 5), (3, 5), (3, 4)]]),
    Polygon([(5, 0), (5, 4), (9, 0)]),  # clockwise
]
INFO = {1: ("l", "one", "One"), 2: ("l", "two", "Two"), 3: ("m", "ring", "Ring"), 4: ("m", "tri", "Triangle")}


@pytest.fixture
def zs():
    return zone_match.build(("test",), np.array(PIECES, dtype=object), np.array([1, 2, 3, 4]), INFO)


def as_dict(result):
    g, z, w = result
    return {(int(a), int(b)): round(float(c), 9) for a, b, c in zip(g, z, w)}


def test_points_weigh_one_in_every_zone_they_touch(zs):
    pts = [Point(1, 1), Point(2, 1), Point(2, 4.5), Point(10, 10), Point(6, 1)]
    assert as_dict(zone_match.weights(zs, pts)) == {
        (0, 1): 1.0, (1, 1): 1.0, (1, 2): 1.0,  # on the shared edge: both
        (4, 4): 1.0,                            # the hole of zone 3 holds nothing, (10, 10) is nowhere
    }


def test_rectangles_have_exact_shares(zs):
    rects = [box(0.5, 0.5, 1.5, 1.5),  # inside zone 1: exactly 1
             box(1.5, 0.5, 3.5, 1.0),  # 1/4 in zone 1, 3/4 in zone 2
             box(0, 3, 4, 6),          # zone 3 less its hole: 10/12
             box(2, 2, 3, 3),          # touches zones 2 and 3 only along edges: nothing
             box(6, 0, 8, 2)]          # under the triangle's edge y = 9 - x: 3.5 of 4
    assert as_dict(zone_match.weights(zs, rects)) == {
        (0, 1): 1.0, (1, 1): 0.25, (1, 2): 0.75, (2, 3): round(10 / 12, 9), (4, 4): 0.875}


def test_rectangle_overlaps_agree_with_overlay(zs):
    rng = np.random.default_rng(4)
    x0, y0 = rng.uniform(-1, 9, 400), rng.uniform(-1, 6, 400)
    rects = np.stack([x0, y0, x0 + rng.uniform(0.01, 3, 400), y0 + rng.uniform(0.01, 3, 400)], axis=1)
    piece = rng.integers(0, len(zs.pieces), 400)
    want = shapely.area(shapely.intersection(zs.pieces[piece], shapely.box(*rects.T)))
    got = zone_match.rectangle_overlaps(zs, piece, rects)
    assert np.allclose(got, want, rtol=1e-9, atol=1e-12)


def test_other_areas_by_overlay_and_subdivision(zs):
    circle = Point(2, 1).buffer(0.5, quad_segs=64)  # 257 vertices: cut into parts first
    tri = Polygon([(1, 0), (3, 0), (3, 2)])
    got = as_dict(zone_match.weights(zs, [circle, tri]))
    assert got[(0, 1)] == pytest.approx(0.5, abs=1e-9) and got[(0, 2)] == pytest.approx(0.5, abs=1e-9)
    assert got[(1, 1)] == pytest.approx(0.25) and got[(1, 2)] == pytest.approx(0.75)
    assert set(got) == {(0, 1), (0, 2), (1, 1), (1, 2)}


def test_subdivide_keeps_area_and_bounds_vertices():
    shape = Point(0, 0).buffer(1, quad_segs=200).difference(Point(0.2, 0).buffer(0.3))
    parts, owner = zone_match.subdivide(np.array([shape, box(0, 0, 1, 1)], dtype=object), max_vertices=32)
    assert shapely.get_num_coordinates(parts).max() <= 32
    assert shapely.area(parts[owner == 0]).sum() == pytest.approx(shape.area, rel=1e-12)
    assert list(owner).count(1) == 1


def test_geodesic_circles_have_their_radius():
    from pyproj import Geod

    lon, lat, r = np.array([-73.95, 10.0]), np.array([40.725, 60.0]), np.array([1500.0, 250.0])
    circles = zone_match.geodesic_circles(lon, lat, r)
    geod = Geod(ellps="WGS84")
    for c, x, y, radius in zip(circles, lon, lat, r):
        assert c.is_valid and shapely.is_ccw(c.exterior)
        xs, ys = np.asarray(c.exterior.coords).T
        _, _, d = geod.inv(np.full(len(xs), x), np.full(len(ys), y), xs, ys)
        assert np.allclose(d, radius, rtol=1e-9)
        area, _ = geod.geometry_area_perimeter(c)
        assert abs(area) == pytest.approx(np.pi * radius**2, rel=0.01)
