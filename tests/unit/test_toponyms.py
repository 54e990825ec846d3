"""Every place name in a text, from a tiny hand-built world gazetteer whose answers are known."""

import pytest
from shapely.geometry import Point

from geo import gazetteer
from geo.toponyms import toponyms


def _city(name, lon, lat, region, population):
    return gazetteer.GazetteerEntry(name=name, kind="city", geometry=Point(lon, lat), region=region,
                                    priority=population, radius_m=10_000)


ENTRIES = [
    _city("Paris", 2.35, 48.86, "FR", 2_100_000),
    _city("Paris", -95.56, 33.66, "US-TX", 25_000),
    _city("Springfield", -89.65, 39.80, "US-IL", 114_000),
    _city("Springfield", -93.29, 37.21, "US-MO", 170_000),
    _city("Ankara", 32.85, 39.92, "TR", 3_500_000),
    _city("Istanbul", 28.98, 41.01, "TR", 15_000_000),
    _city("Van", 43.38, 38.49, "TR", 370_000),
    _city("Suva", 178.44, -18.14, "FJ", 93_000),
    _city("Labasa", 179.39, -16.43, "FJ", 28_000),
    _city("Lau", -178.8, -17.5, "FJ", 20_000),  # east of the antimeridian
    _city("Union", -74.26, 40.70, "US-NJ", 58_000),
    _city("Reading", -0.97, 51.45, "GB", 230_000),
    gazetteer.GazetteerEntry(name="Turkey", kind="country", geometry=Point(32.85, 39.92), region="TR", code="TR",
                             priority=82_000_000, radius_m=500_000),
    gazetteer.GazetteerEntry(name="Fiji", kind="country", geometry=Point(178.44, -18.14), region="FJ", code="FJ",
                             priority=900_000, radius_m=100_000),
]
CONTEXT = {"texas": "US-TX", "illinois": "US-IL", "turkey": "TR", "france": "FR"}


@pytest.fixture(scope="module")
def index():
    return gazetteer.GazetteerIndex(ENTRIES, context_regions=CONTEXT)


def _found(text, index):
    return [(t.text, t.name, None if t.entry_id is None else ENTRIES[t.entry_id].region)
            for t in toponyms(text, index)]


@pytest.mark.parametrize("text, expected", [
    # population decides when nothing else does
    ("Flights to Paris were cancelled.", [("Paris", "Paris", "FR")]),
    # a qualifier right after the name decides: a state name, or a state abbreviation
    ("Storms hit Paris, Texas overnight.", [("Paris", "Paris", "US-TX"), ("Texas", "Texas", None)]),
    ("Storms hit Paris, TX overnight.", [("Paris", "Paris", "US-TX")]),
    ("Flooding in Springfield, Illinois and nearby towns.",
     [("Springfield", "Springfield", "US-IL"), ("Illinois", "Illinois", None)]),
    ("Flooding in Springfield again.", [("Springfield", "Springfield", "US-MO")]),
    # the document's other places vote: Texas elsewhere in the text pulls Paris there
    ("The Texas storm moved north. Later, Paris lost power.", [("Texas", "Texas", None), ("Paris", "Paris", "US-TX")]),
    # every mention is returned, in text order, with countries too
    ("Officials in Ankara said Turkey would help.", [("Ankara", "Ankara", "TR"), ("Turkey", "Turkey", "TR")]),
    # lower case in case-informative text is not a name; a common word is not a place
    ("We had turkey in paris style.", []),
    ("Reading the report, the Union officials agreed.", []),
    # part of a longer proper name we do not know
    ("The European Union met today.", []),
])
def test_toponyms(index, text, expected):
    assert _found(text, index) == expected


def test_spans_point_into_the_text(index):
    text = "From Ankara to Paris, Texas"
    for t in toponyms(text, index):
        assert text[t.start:t.end] == t.text


def test_coordinates_are_lon_lat(index):
    (t,) = toponyms("Rain in Ankara", index)
    assert (t.lon, t.lat) == (32.85, 39.92)


def test_a_country_sits_at_the_centre_of_its_places_not_its_capital(index):
    (t,) = toponyms("Aid reached Turkey", index)
    assert (t.lon, t.lat) == pytest.approx(((28.98 + 43.38) / 2, (38.49 + 41.01) / 2))
    (f,) = toponyms("Aid reached Fiji", index)  # its places straddle 180 degrees: the centre is near it
    assert (f.lon, f.lat) == pytest.approx(((178.44 + 181.2) / 2, (-18.14 + -16.43) / 2))  # 179.82, not ~0


def test_a_state_known_only_as_a_region_sits_at_the_centre_of_its_places(index):
    (t,) = toponyms("Tornado warnings across Texas", index)
    assert (t.kind, t.entry_id, t.lon, t.lat) == ("state", None, -95.56, 33.66)  # its one place: Paris, TX
    assert toponyms("Snow across Ohio", gazetteer.GazetteerIndex(ENTRIES, context_regions={"ohio": "US-OH"})) == []
