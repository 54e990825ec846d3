"""Pure checks of a place (geo.place_checks, geo.jurisdiction) and the ZIP cues the gazetteer takes from its
data (geo.gazetteer), on hand-drawn squares whose answers are known."""

import pytest
from shapely.geometry import MultiPolygon, Point, box

from geo import gazetteer
from geo.gazetteer import GazetteerEntry
from geo.jurisdiction import Jurisdiction
from geo.place_checks import check_layer, check_names, coverage_share, starting_rules
from geo.place_setup import LayerSpec
from geo.zones import ZoneRecord

# An L: two squares side by side, one on top of the left one.
L_SHAPE = box(0, 0, 2, 1).union(box(0, 1, 1, 2))


def zone(code, name, *bounds):
    return ZoneRecord(code, name, MultiPolygon([box(*bounds)]), {})


@pytest.mark.parametrize("zones, share", [
    ([box(0, 0, 2, 1), box(0, 1, 1, 2)], 1.0),
    ([box(0, 0, 1, 1)], 1 / 3),
    ([box(0, 0, 3, 3)], 1.0),  # spilling over the boundary covers no more than all of it
    ([], 0.0),
])
def test_coverage_share(zones, share):
    assert coverage_share(L_SHAPE, zones) == pytest.approx(share)


@pytest.mark.parametrize("records, rejected, expected", [
    ([zone("A", "North", 0, 1, 1, 2), zone("B", "South", 0, 0, 2, 1)], [], []),
    ([zone("A", "North", 0, 1, 1, 2), zone("B", "South", 0, 0, 2, 1)], [(2, "duplicate code 'A'")],
     ["codes ['A'] are not unique"]),
    ([zone("A", " ", 0, 1, 1, 2), zone("B", "South", 0, 0, 2, 1)], [], ["zones ['A'] have empty names"]),
    ([zone("A", "North", 0, 1, 1, 2)], [], ["covers 33.3% of the boundary (< 95%): alerts can never be counted "
                                            "in the rest"]),
    ([zone("A", "North", 0, 0, 2, 2), zone("X", "Far", 5, 5, 6, 6)], [],
     ["zones ['X'] lie wholly outside the boundary"]),
    ([], [], ["no zones were read"]),
])
def test_check_layer(records, rejected, expected):
    assert [p.message for p in check_layer("ward", L_SHAPE, records, rejected=rejected)] == expected


def test_check_names_warns_of_names_far_outside():
    entries = [GazetteerEntry("Angel", "neighbourhood", Point(0.5, 0.5)),
               GazetteerEntry("Brooklyn", "borough", Point(40, 40))]
    [problem] = check_names("names.csv", entries, L_SHAPE)
    assert not problem.fatal and "['Brooklyn']" in problem.message


@pytest.mark.parametrize("lonlat, inside", [
    ((0.5, 0.5), True), ((1.5, 0.5), True), ((0.5, 1.5), True),
    ((1.5, 1.5), False),  # in the L's box, not in the L
    ((3, 3), False),
])
def test_jurisdiction_is_the_polygon_not_its_box(lonlat, inside):
    j = Jurisdiction(L_SHAPE.bounds, L_SHAPE, "l")
    assert j.covers(Point(*lonlat)) is inside
    assert Jurisdiction.of(L_SHAPE.bounds).covers(Point(*lonlat)) is (lonlat != (3, 3))


def test_starting_rules_count_in_each_layer(tmp_path):
    from alerts.rules import load_rules

    path = tmp_path / "rules.yaml"
    path.write_text(starting_rules(["ward", "borough"], place="x"))
    rules = load_rules(path)
    assert {r.layer for r in rules} == {"ward", "borough"}
    assert len(rules) == 8


@pytest.mark.parametrize("value, expected", [
    ("borough=b.geojson", ("borough", "b.geojson", None, None, "borough")),
    ("london_borough=b.geojson:GSS_CODE:NAME", ("london_borough", "b.geojson", "GSS_CODE", "NAME", "borough")),
    ("wards=w.gpkg:code", ("wards", "w.gpkg", "code", None, None)),
])
def test_layer_spec(value, expected):
    s = LayerSpec.parse(value, {"london_borough": "borough"})
    assert (s.name, str(s.path), s.code_field, s.name_field, s.level) == expected


def test_layer_spec_needs_a_file():
    with pytest.raises(ValueError, match="is not NAME=FILE"):
        LayerSpec.parse("borough", {})


def _zip_index(city_alternates, region="US-NY"):
    area = box(-74.0, 40.7, -73.9, 40.8)
    return gazetteer.GazetteerIndex([
        GazetteerEntry("10001", "zip", box(-73.99, 40.74, -73.98, 40.75), code="10001", region=region),
        GazetteerEntry("Gotham City", "city", area, alternates=city_alternates, region=region),
    ], context_regions={"new york": "US-NY", "oregon": "US-OR"})


def test_zip_cues_come_from_the_data():
    assert _zip_index(("GC", "Big Town")).zip_cues == {"ny", "city", "gc", "york"}
    assert _zip_index((), region="US-OR").zip_cues == {"or", "city", "oregon"}
    no_zips = gazetteer.GazetteerIndex([GazetteerEntry("Camden", "borough", box(0, 0, 1, 1), region="GB-LND")],
                                       context_regions={})
    assert no_zips.zip_cues == frozenset()


def test_a_short_capital_alternate_given_in_lower_case_too_counts_in_any_case():
    area = box(0, 0, 1, 1)
    both = gazetteer.GazetteerIndex([GazetteerEntry("Gotham", "city", area, alternates=("GC", "gc"))],
                                    context_regions={})
    caps = gazetteer.GazetteerIndex([GazetteerEntry("Gotham", "city", area, alternates=("GC",))], context_regions={})
    assert [m.key for m in both.find("flood in gc")[0]] == ["gc"]
    assert caps.find("flood in gc")[0] == []
