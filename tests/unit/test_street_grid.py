"""Numbered streets a file lacks (geo.street_grid), corners of streets it has only in parts
(geo.streets.reach_crossing) and stations picked by the line a post names, on hand-drawn data.

The grid (lon/lat; at 40.75 N, 0.001 degree of latitude is 111 m):
- "Grid Borough": avenue "8 Avenue" north-south at -73.990 and "10 Avenue" at -73.996, from 40.740 to
  40.780; "West 20 Street" east-west at 40.750 and "West 30 Street" at 40.760 (so one number is 111 m),
  "East 20 Street" and "East 30 Street" east of an avenue "Park Avenue" at -73.970, at the same latitudes;
- "Far Street" north-south at -73.980 from 40.700 to 40.745, stopping 555 m short of "Long Road", which runs
  east-west at 40.750 from -74.010 to -73.960 (this is the file that has a street only in parts);
- "Side Street" at 40.7505, parallel to Long Road and never meeting it;
- two stations named "125 St", one served by "A C", one by "4 5 6", 3 km apart.
"""

import pytest
from shapely.geometry import LineString, Point, box

from geo import gazetteer
from geo.distance import haversine_m
from geo.gazetteer_store import build_index
from geo.geotag import geotag, lines_named
from geo.street_grid import MAX_STEP_M, fill_grid, parse_numbered
from geo.crossings import reach_crossing
from geo.streets import derive_intersections

BOUNDS = (-74.05, 40.60, -73.80, 40.85)
B = "Grid Borough"


def _street(name, coords, borough=B):
    return gazetteer.GazetteerEntry(name, "street", LineString(coords), code=borough, source="test")


GRID = [
    _street("8 Avenue", [(-73.990, 40.740), (-73.990, 40.780)]),
    _street("10 Avenue", [(-73.996, 40.740), (-73.996, 40.780)]),
    _street("West 20 Street", [(-74.000, 40.750), (-73.985, 40.750)]),
    _street("West 30 Street", [(-74.000, 40.760), (-73.985, 40.760)]),
    _street("Park Avenue", [(-73.970, 40.740), (-73.970, 40.780)]),
    _street("East 20 Street", [(-73.975, 40.750), (-73.965, 40.750)]),
    _street("East 30 Street", [(-73.975, 40.760), (-73.965, 40.760)]),
]
PARTS = [
    _street("Far Street", [(-73.980, 40.700), (-73.980, 40.745)], "Parts"),
    _street("Long Road", [(-74.010, 40.750), (-73.960, 40.750)], "Parts"),
    _street("Side Street", [(-74.010, 40.7505), (-73.960, 40.7505)], "Parts"),
]
STATIONS = [
    gazetteer.GazetteerEntry("125 St", "station", Point(-73.952, 40.811), code="A C"),
    gazetteer.GazetteerEntry("125 St", "station", Point(-73.938, 40.804), code="4 5 6"),
]
AREA = gazetteer.GazetteerEntry("Grid Borough", "borough", box(-74.02, 40.69, -73.95, 40.79))


@pytest.fixture(scope="module")
def index():
    return build_index([AREA, *GRID, *PARTS, *STATIONS])


def _tag(text, index):
    return geotag(text, index, bounds=BOUNDS)


def _dist(tag, lon, lat):
    return haversine_m(tag.point.x, tag.point.y, lon, lat)


def test_numbered_names_parse_and_others_do_not():
    assert parse_numbered("West 116th Street") == parse_numbered("W 116 St")
    assert parse_numbered("W 116 St").number == 116 and parse_numbered("W 116 St").direction == "w"
    assert parse_numbered("82 Street").direction is None
    assert parse_numbered("Flatbush Avenue") is None
    assert parse_numbered("Avenue J") is None


def test_a_street_between_two_members_crosses_the_avenue_where_its_number_says(index):
    # W 25 St is halfway between W 20 St (40.750) and W 30 St (40.760) on 8 Ave.
    tag = _tag("Crash at 8th Ave and W 25th St, two cars", index)
    assert tag is not None and tag.kind == "intersection"
    assert _dist(tag, -73.990, 40.755) < 15
    tag = _tag("water main break, 10th Ave & West 27th Street", index)
    assert _dist(tag, -73.996, 40.757) < 15


def test_the_synthetic_street_is_a_line_across_the_avenues_it_was_drawn_on(index):
    grid = [e for e in index.entries if e.source == "grid" and e.name == "W 25 St"]
    assert len(grid) == 1 and grid[0].code == B
    xs = sorted(x for x, _ in grid[0].geometry.coords)
    assert xs == pytest.approx([-73.996, -73.990], abs=1e-6)
    # "25th St" alone is the same street (the direction is an alias), placed on its line.
    tag = _tag("Gas smell on W 25th St", index)
    assert tag is not None and abs(tag.point.y - 40.755) < 0.0005


def test_a_few_numbers_beyond_the_last_member_are_extrapolated_and_no_more(index):
    assert _dist(_tag("Fire at 8th Ave and W 34th St", index), -73.990, 40.764) < 15
    # 37 is 7 past the last member: too far to trust; the post is placed on the avenue alone.
    tag = _tag("Fire at 8th Ave and W 37th St", index)
    assert tag is None or tag.kind == "street"


def test_directions_are_families_of_their_own(index):
    # East streets cross Park Avenue only; "E 25 St" never crosses 8 Ave, "W 25 St" never Park Ave.
    assert _dist(_tag("Crash at Park Ave and E 25th St", index), -73.970, 40.755) < 15
    tag = _tag("Crash at Park Ave and W 25th St", index)
    assert tag is None or tag.kind == "street"
    names = {e.name for e in index.entries if e.source == "grid"}
    assert "E 25 St" in names and "W 25 St" in names


def test_a_block_between_two_interpolated_streets(index):
    tag = _tag("Car fire on 8th Ave between W 22nd St and W 23rd St", index)
    assert tag is not None and tag.kind == "block"
    assert _dist(tag, -73.990, 40.7525) < 20


def test_members_too_far_apart_for_a_block_make_no_grid():
    # The same two streets, 10 numbers apart but 5 km apart: no block is that long.
    wide = [_street("8 Avenue", [(-73.990, 40.70), (-73.990, 40.80)]),
            _street("West 20 Street", [(-74.0, 40.72), (-73.98, 40.72)]),
            _street("West 30 Street", [(-74.0, 40.765), (-73.98, 40.765)])]
    assert (40.765 - 40.72) * 111_000 / 10 > MAX_STEP_M
    new, crossings = fill_grid(wide, derive_intersections(wide))
    assert new == [] and crossings == {}


def test_a_member_the_file_has_only_in_parts_gains_the_crossings_its_neighbours_make():
    # W 25 St exists but stops short of 8 Ave; its neighbours cross it.
    streets = GRID[:4] + [_street("West 25 Street", [(-74.000, 40.755), (-73.995, 40.755)])]
    new, crossings = fill_grid(streets, derive_intersections(streets))
    assert all(e.name != "W 25 St" for e in new)
    w25, ave8 = 4, 0
    assert crossings[(ave8, w25)].distance(Point(-73.990, 40.755)) < 1e-6


def test_a_street_stopping_short_is_carried_on_to_the_corner(index):
    p, carried = reach_crossing(PARTS[0].geometry, PARTS[1].geometry)
    assert p.distance(Point(-73.980, 40.750)) < 1e-6 and 500 < carried < 600
    tag = _tag("Crash at Far St and Long Rd", index)
    assert tag is not None and tag.kind == "intersection"
    assert _dist(tag, -73.980, 40.750) < 15
    assert tag.uncertainty_m > 100  # less sure than a corner the file has


def test_parallel_streets_never_meet(index):
    assert reach_crossing(PARTS[1].geometry, PARTS[2].geometry) is None
    assert _tag("Crash at Long Rd and Side St", index) is None or _tag("Crash at Long Rd and Side St", index).kind != "intersection"


def test_lines_named_in_a_post():
    assert lines_named("pushed onto the tracks at 125 St on the A train") == {"A"}
    assert lines_named("delays on the 2/3 line and the Q express") == {"2", "3", "Q"}
    assert lines_named("station (N/Q/R/W) flooded") == {"N", "Q", "R", "W"}
    assert lines_named("a train hit a car") == frozenset()  # "a" in lower case is any train


def test_the_line_a_post_names_picks_its_station(index):
    a = _tag("Someone pushed onto the tracks at 125 St on the A train", index)
    assert a is not None and a.kind == "station" and _dist(a, -73.952, 40.811) < 10
    six = _tag("Smoke in the 125 St station, 4/5/6 trains held", index)
    assert six is not None and _dist(six, -73.938, 40.804) < 10


def test_a_spanish_cross_street_after_la():
    streets = [_street("Roosevelt Avenue", [(-73.90, 40.745), (-73.86, 40.745)], "Q"),
               _street("82 Street", [(-73.884, 40.73), (-73.884, 40.76)], "Q")]
    idx = build_index(streets)
    tag = geotag("incendio en Roosevelt Ave y la 82, los bomberos ya llegaron", idx, bounds=BOUNDS)
    assert tag is not None and tag.kind == "intersection"
    assert haversine_m(tag.point.x, tag.point.y, -73.884, 40.745) < 15


def test_stations_keep_the_lines_that_serve_them(tmp_path):
    from geo.street_import import read_landmarks

    path = tmp_path / "stations.csv"
    path.write_text("Stop Name,Daytime Routes,lat,lon\n"
                    "125 St,A C,40.811,-73.952\n"
                    "125 St,B D,40.8111,-73.9521\n"  # the same station on another platform: one entry
                    "125 St,4 5 6,40.804,-73.938\n")
    got = sorted((e.code, len(getattr(e.geometry, "geoms", [e.geometry])))
                 for e in read_landmarks(path, name_col="Stop Name", kind="station", code_col="Daytime Routes"))
    assert got == [("4 5 6", 1), ("A C B D", 2)]
