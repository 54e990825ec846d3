"""Street-level geoparsing on a hand-drawn grid whose answers are known, loaded through the importers.

The grid (lon/lat, about 85 m per 0.001 degree of longitude here):
- Manhattan box west of -73.95, Brooklyn box east of it (boroughs), neighbourhood "Flatbush" inside Brooklyn;
- in Manhattan: "5 Avenue" (north-south at -73.980), "West 42 Street" (east-west at 40.755),
  "West 43 Street" (40.756), "Broadway" (a diagonal);
- in Brooklyn: "Broadway" again (another line), "Flatbush Avenue" (north-south at -73.930),
  "Nostrand Avenue" (40.650 east-west);
- a landmark polygon "Barclays Center" with the alias "Barclays Ctr", a landmark point "Flatbush" far from
  the neighbourhood, and bridge points "BROOKLYN" with the NYC preset's bridge code.
"""

import json

import pytest
from shapely.geometry import LineString, box

from geo import gazetteer
from geo.distance import haversine_m
from geo.gazetteer_store import build_index
from geo.geotag import geotag
from geo.street_import import GazetteerFileError, read_landmarks, read_streets
from geo.streets import derive_intersections

BOUNDS = (-74.05, 40.55, -73.85, 40.85)
AREAS = [
    gazetteer.GazetteerEntry("Manhattan", "borough", box(-74.02, 40.70, -73.95, 40.80), region="US-NY"),
    gazetteer.GazetteerEntry("Brooklyn", "borough", box(-73.95, 40.60, -73.90, 40.70), region="US-NY"),
    gazetteer.GazetteerEntry("Flatbush", "neighbourhood", box(-73.94, 40.64, -73.92, 40.66), region="US-NY"),
]
LINES = [
    ("5 Avenue", "Manhattan", [(-73.980, 40.740), (-73.980, 40.770)], ""),
    ("West 42 Street", "Manhattan", [(-73.990, 40.755), (-73.970, 40.755)], ""),
    ("West 43 Street", "Manhattan", [(-73.990, 40.756), (-73.970, 40.756)], ""),
    ("Broadway", "Manhattan", [(-73.990, 40.745), (-73.970, 40.765)], "Bway"),
    ("Broadway", "Brooklyn", [(-73.945, 40.690), (-73.910, 40.690)], ""),
    ("Flatbush Avenue", "Brooklyn", [(-73.930, 40.620), (-73.930, 40.695)], ""),
    ("Nostrand Avenue", "Brooklyn", [(-73.940, 40.650), (-73.915, 40.650)], ""),
]
BARCLAYS = box(-73.9765, 40.682, -73.974, 40.6835)


def _streets_file(tmp_path):
    feats = [{"type": "Feature", "properties": {"Route_Name": n, "Borough": b, "alt_name": a},
              "geometry": {"type": "LineString", "coordinates": c}} for n, b, c, a in LINES]
    path = tmp_path / "streets.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _landmarks_file(tmp_path):
    path = tmp_path / "landmarks.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Barclays Center", "aliases": "Barclays Ctr;Barclays Arena"},
         "geometry": {"type": "Polygon", "coordinates": [list(BARCLAYS.exterior.coords)]}},
        # a playground that shares the neighbourhood's name, far from it
        {"type": "Feature", "properties": {"name": "Flatbush"}, "geometry": {"type": "Point",
                                                                             "coordinates": [-73.905, 40.61]}}]}))
    return path


def _poi_file(tmp_path):
    path = tmp_path / "poi.csv"
    path.write_text("geometry,FACILITY_T,FACI_DOM,NAME\n"
                    "POINT (-74.000 40.7045),6,8,BROOKLYN\n"
                    "POINT (-73.993 40.7075),6,8,BROOKLYN\n"
                    "POINT (-73.960 40.700),2,1,PS 4\n")
    return path


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grid")
    entries = (AREAS + read_streets(_streets_file(tmp)) + read_landmarks(_landmarks_file(tmp))
               + read_landmarks(_poi_file(tmp), preset="nyc-poi"))
    return build_index(entries)


def _tag(text, index):
    return geotag(text, index, bounds=BOUNDS)


def _m(tag, lon, lat):
    return haversine_m(tag.point.x, tag.point.y, lon, lat)


def test_streets_grouped_per_name_and_borough(tmp_path):
    entries = read_streets(_streets_file(tmp_path))
    broadway = sorted(e.code for e in entries if e.name == "Broadway")
    assert broadway == ["Brooklyn", "Manhattan"]
    w42 = next(e for e in entries if e.name == "West 42 Street")
    assert "42 st" in {gazetteer.normalise_name(a) for a in w42.alternates}


def test_intersections_derived_where_lines_cross(tmp_path):
    entries = read_streets(_streets_file(tmp_path))
    crossings = derive_intersections(entries)
    names = {frozenset((entries[a].name, entries[b].name)) for a, b in crossings}
    assert frozenset(("5 Avenue", "West 42 Street")) in names
    assert frozenset(("Flatbush Avenue", "Nostrand Avenue")) in names
    assert frozenset(("West 42 Street", "West 43 Street")) not in names  # parallel streets never meet


@pytest.mark.parametrize("text", [
    "Crash at 5th Ave and W 42nd St",
    "crash at fifth avenue & west 42nd street",
    "Water main break 5th Ave/W 42 St",
    "fire at the corner of 5th Ave and W 42nd St",
    "gas leak on 5 Av at 42nd St",
])
def test_intersection_spellings(index, text):
    tag = _tag(text, index)
    assert tag is not None and tag.kind == "intersection"
    assert _m(tag, -73.980, 40.755) < 20
    assert tag.uncertainty_m == 50


def test_near_cross_street_is_less_certain(index):
    tag = _tag("Smoke on 5th Ave near W 43rd St", index)
    assert tag.kind == "intersection" and _m(tag, -73.980, 40.756) < 20
    assert tag.uncertainty_m > 50


def test_block_between_two_cross_streets(index):
    tag = _tag("Fire on 5th Ave between W 42nd St and W 43rd St", index)
    assert tag.kind == "block"
    assert _m(tag, -73.980, 40.7555) < 20
    assert 40 <= tag.uncertainty_m <= 60  # half of the 111 m block, at least an intersection's


def test_borough_context_picks_the_street(index):
    # "Broadway" is in both boroughs; Flatbush Ave crosses only Brooklyn's.
    tag = _tag("Accident on Broadway and Flatbush Ave", index)
    assert tag.kind == "intersection" and _m(tag, -73.930, 40.690) < 20
    # Alone, the borough named in the post decides which Broadway; its stretch in the area is returned.
    tag = _tag("Power lines down on Broadway in Brooklyn", index)
    assert tag is not None and tag.kind == "street"
    assert 40.689 < tag.point.y < 40.691


def test_street_named_like_a_neighbourhood_is_never_the_neighbourhood(index):
    tag = _tag("Car crash on Flatbush Ave", index)
    assert tag is None or tag.kind == "street"
    no_streets = build_index(AREAS)
    assert geotag("Car crash on Flatbush Ave", no_streets, bounds=BOUNDS) is None
    assert geotag("Fire in Flatbush tonight", no_streets, bounds=BOUNDS).kind == "neighbourhood"


def test_street_inside_the_neighbourhood_named(index):
    tag = _tag("Fire on Flatbush Ave in Flatbush", index)
    assert tag.kind == "street"
    assert 40.64 <= tag.point.y <= 40.66 and abs(tag.point.x + 73.930) < 1e-6
    assert tag.uncertainty_m < 1500  # the 2.2 km stretch inside, not the 8 km avenue


def test_house_number_address(index):
    tag = _tag("Fire at 350 5th Ave, smoke on the upper floors", index)
    assert tag is not None and tag.kind == "address"
    assert abs(tag.point.x + 73.980) < 1e-6


def test_landmark_polygon_and_alias(index):
    for text in ("Crowd crush outside Barclays Center", "power out at the barclays ctr", "Barclays Arena evacuated"):
        tag = _tag(text, index)
        assert tag.kind == "landmark" and BARCLAYS.contains(tag.point), text
        assert 50 < tag.uncertainty_m < 150  # its footprint's equal-area radius


def test_bridge_from_points_is_the_bridge_not_the_borough(index):
    tag = _tag("Car fire on the Brooklyn Bridge, lanes closed", index)
    assert tag.kind == "landmark" and tag.matched == "Brooklyn Bridge"
    assert _m(tag, -73.9965, 40.706) < 100
    assert 250 < tag.uncertainty_m < 500  # half the span between its points


def test_preset_leaves_out_noise_kinds(tmp_path):
    names = {e.name for e in read_landmarks(_poi_file(tmp_path), preset="nyc-poi")}
    assert names == {"Brooklyn Bridge"}


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(GazetteerFileError, match="street name column 'NOPE'"):
        read_streets(_streets_file(tmp_path), name_col="NOPE")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,lon,lat\nX,abc,40.7\n")
    with pytest.raises(GazetteerFileError, match="row 2: lon/lat"):
        read_landmarks(bad)


def test_reprojected_from_state_plane(tmp_path):
    import geopandas as gpd

    gdf = gpd.GeoDataFrame({"FULLNAME": ["Test St"]}, geometry=[LineString([(-73.98, 40.75), (-73.97, 40.76)])],
                           crs=4326).to_crs(2263)
    path = tmp_path / "sp.gpkg"
    gdf.to_file(path)
    [entry] = read_streets(path)
    x0, y0 = entry.geometry.coords[0]
    assert abs(x0 + 73.98) < 1e-6 and abs(y0 - 40.75) < 1e-6


@pytest.mark.parametrize("text, lon, lat", [
    ("crash at flatbush and nostrand, avoid", -73.930, 40.650),  # "flatbush" is also the neighbourhood
    ("fire truck blocking 5th and 42nd", -73.980, 40.755),
    ("Smoke on Broadway & 43rd", -73.979, 40.756),
    ("water main break amsterdam & flatbush ave", None, None),  # no such street: nothing invented
])
def test_cross_streets_written_without_their_type(index, text, lon, lat):
    tag = _tag(text, index)
    if lon is None:
        assert tag is None or tag.kind != "intersection"
        return
    assert tag is not None and tag.kind == "intersection", tag
    assert _m(tag, lon, lat) < 20


def test_area_beats_a_landmark_of_the_same_name(index):
    tag = _tag("Fire in Flatbush tonight", index)
    assert tag.kind == "neighbourhood"


def test_a_leading_the_does_not_make_a_longer_name():
    idx = build_index([
        gazetteer.GazetteerEntry("The Battery", "neighbourhood", box(-74.02, 40.70, -74.01, 40.71)),
        gazetteer.GazetteerEntry("Hugh L Carey Tunnel", "landmark", LineString([(-74.015, 40.702), (-74.008, 40.685)]),
                                 alternates=("Battery Tunnel",)),
    ])
    tag = geotag("Smoke inside the Battery Tunnel, drivers stuck", idx)
    assert tag is not None and tag.kind == "landmark" and tag.matched == "Battery Tunnel"
