"""Gazetteer: name normalisation, operator files, builders and the name index."""

import json

import pytest
from shapely.geometry import LineString, Point, box

from geo import gazetteer

from geo import gazetteer_builders


@pytest.mark.parametrize("raw, expected", [
    ("Hell's Kitchen", "hells kitchen"),
    ("Hell’s  Kitchen", "hells kitchen"),
    ("Bedford-Stuyvesant (West)", "bedford stuyvesant west"),
    ("St. Albans", "st albans"),
    ("Saint Albans", "st albans"),
    ("31st Street", "31 st"),
    ("59th St.", "59 st"),
    ("Atlantic Avenue", "atlantic ave"),
    ("Atlantic Av", "atlantic ave"),
    ("Atlantic Ave.", "atlantic ave"),
    ("Canarsie Park & Pier", "canarsie park and pier"),
    ("Bogotá", "bogota"),
    ("ＡＳＴＯＲＩＡ", "astoria"),  # full-width, folded by NFKC
    ("  ", ""),
])
def test_normalise_name(raw, expected):
    assert gazetteer.normalise_name(raw) == expected


def test_load_csv_lonlat_and_wkt(tmp_path):
    path = tmp_path / "stations.csv"
    path.write_text(
        "name,alternates,kind,lon,lat,wkt\n"
        "Astoria Blvd,Astoria Boulevard;Hoyt Av,station,-73.917843,40.770258,\n"
        "Steinway St,,street,,,\"LINESTRING (-73.92 40.75, -73.91 40.78)\"\n", encoding="utf-8")
    entries = gazetteer.load_entries_file(path)
    assert [e.name for e in entries] == ["Astoria Blvd", "Steinway St"]
    assert entries[0].alternates == ("Astoria Boulevard", "Hoyt Av")
    assert entries[0].geometry.equals(Point(-73.917843, 40.770258))
    assert entries[1].geometry.geom_type == "LineString" and entries[1].kind == "street"
    assert entries[0].source == "stations.csv"


@pytest.mark.parametrize("row, problem", [
    ("X,,station,-73.9,95,", "row 2: latitude 95.0 is outside [-90, 90]"),
    ("X,,station,-190,40,", "row 2: longitude -190.0 is outside [-180, 180]"),
    ("X,,station,,,", "row 2: needs lon and lat or wkt"),
    ("X,,station,,,POINT (1", "row 2: wkt"),
    (",,station,-73.9,40.7,", "row 2: name"),
    ("X,,volcano,-73.9,40.7,", "row 2: kind 'volcano'"),
])
def test_load_csv_bad_row_names_row_and_problem(tmp_path, row, problem):
    path = tmp_path / "bad.csv"
    path.write_text("name,alternates,kind,lon,lat,wkt\n" + row + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(".", r"\.").replace("[", r"\[")):
        gazetteer.load_entries_file(path)


def test_load_geojson(tmp_path):
    path = tmp_path / "landmarks.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.9262, 40.8296]},
         "properties": {"name": "Yankee Stadium", "alternates": ["The Stadium"], "kind": "landmark"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.97, 40.78]},
         "properties": {"name": "Great Lawn", "alternates": "Central Park Lawn"}},
    ]}), encoding="utf-8")
    entries = gazetteer.load_entries_file(path)
    assert entries[0].alternates == ("The Stadium",) and entries[0].kind == "landmark"
    assert entries[1].alternates == ("Central Park Lawn",)


def test_load_geojson_bad_feature(tmp_path):
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.9, 40.8]}, "properties": {"name": "ok"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.9, 40.8]}, "properties": {"name": ""}},
    ]}), encoding="utf-8")
    with pytest.raises(ValueError, match="feature 2: name"):
        gazetteer.load_entries_file(path)


def _index(*entries, context=None):
    return gazetteer.GazetteerIndex(list(entries), context_regions=context or {})


def test_index_matches_at_token_boundaries_and_prefers_longest():
    idx = _index(
        gazetteer.GazetteerEntry("Astoria", "neighbourhood", box(-73.94, 40.76, -73.90, 40.78)),
        gazetteer.GazetteerEntry("Astoria Blvd", "station", Point(-73.9178, 40.7703)),
    )
    mentions, *_ = idx.find("Fire near Astoria Blvd, also in astoriana and Astoria.")
    assert [(m.key, m.start, m.end) for m in mentions] == [("astoria blvd", 10, 22), ("astoria", 46, 53)]
    assert [idx.entries[i].kind for i in mentions[0].entry_ids] == ["station"]


def test_index_short_capital_alternates_need_capitals():
    idx = _index(gazetteer.GazetteerEntry("Lower East Side", "neighbourhood", box(-73.99, 40.71, -73.97, 40.72), ("LES",)))
    assert [m.key for m in idx.find("fire on the LES")[0]] == ["les"]
    assert idx.find("les miserables tonight")[0] == []


def test_index_context_regions_are_mentions_without_entries():
    idx = _index(gazetteer.GazetteerEntry("Astoria", "neighbourhood", box(-73.94, 40.76, -73.90, 40.78)),
                 context={"oregon": "US-OR"})
    mentions, *_ = idx.find("Astoria, Oregon")
    assert [(m.key, m.entry_ids, m.context_region) for m in mentions][1] == ("oregon", (), "US-OR")


def test_index_crossing_of_street_lines():
    a = gazetteer.GazetteerEntry("A St", "street", LineString([(0, 0), (1, 1)]))
    b = gazetteer.GazetteerEntry("B St", "street", LineString([(0, 1), (1, 0)]))
    c = gazetteer.GazetteerEntry("C St", "street", LineString([(5, 5), (6, 6)]))
    idx = _index(a, b, c)
    assert idx.crossing(0, 1).equals(Point(0.5, 0.5))
    assert idx.crossing(0, 2) is None


def test_equal_area_radius_of_a_known_square():
    # About 1 km x 1 km at the equator: radius sqrt(1e6 / pi) = 564 m.
    sq = box(0, 0, 1000 / 111_320, 1000 / 110_574)
    assert gazetteer.equal_area_radius_m(sq) == pytest.approx(564.2, rel=0.01)


@pytest.fixture(scope="module")
def demo_entries(demo_gazetteer_entries):
    return list(demo_gazetteer_entries)


def test_demo_entries_cover_the_packages(demo_entries):
    kinds = {}
    for e in demo_entries:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    assert kinds["borough"] == 5
    assert kinds["zip"] == 177  # 178 MODZCTAs less the parkland code 99999
    assert kinds["neighbourhood"] + kinds["landmark"] >= 262
    by_name = {e.name: e for e in demo_entries}
    queens = by_name["Queens"].geometry
    astoria = by_name["Astoria"]  # the union of the three Astoria NTAs
    assert astoria.kind == "neighbourhood" and queens.contains(astoria.geometry.representative_point())
    assert astoria.code.count("+") == 2
    assert "Chelsea" in by_name["Chelsea-Hudson Yards"].alternates
    assert "Hudson Yards" in by_name["Chelsea-Hudson Yards"].alternates
    assert "Bed-Stuy" in by_name["Bedford-Stuyvesant"].alternates
    assert all(e.geometry.is_valid or e.geometry.buffer(0).is_valid for e in demo_entries)
    w, s, e_, n = gazetteer_builders.NYC_BBOX
    assert all(w - 0.1 <= e.geometry.centroid.x <= e_ + 0.1 and s - 0.1 <= e.geometry.centroid.y <= n + 0.1
               for e in demo_entries)


def test_demo_alternates_are_unambiguous_and_ascii(demo_entries):
    seen = {}
    for e in demo_entries:
        for alt in e.alternates:
            assert alt.isascii(), (e.name, alt)
            seen.setdefault(gazetteer.normalise_name(alt), set()).add(e.name)
    # "Murray Hill" is really two places; anything else shared would be a builder bug.
    shared = {k: v for k, v in seen.items() if len(v) > 1}
    assert set(shared) <= {"murray hill", "highland park", "highland park cypress hills cemeteries",
                           "cypress hills cemeteries", "jamaica bay"}


def test_world_entries():
    entries = gazetteer_builders.build_world_entries()
    countries = {e.code: e for e in entries if e.kind == "country"}
    assert len(countries) > 200
    jm = countries["JM"]
    assert jm.name == "Jamaica" and jm.radius_m == pytest.approx(59_150, rel=0.01)
    london = max((e for e in entries if e.name == "London"), key=lambda e: e.priority)
    assert london.region == "GB" and london.geometry.y == pytest.approx(51.5, abs=0.1)
    assert min(e.priority for e in entries if e.kind == "city") >= 15_000
