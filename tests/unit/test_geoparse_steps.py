"""The steps of geo.geoparse one at a time, on a tiny hand-drawn gazetteer with known answers."""

import pytest
from shapely.geometry import LineString, Point, box

from geo import gazetteer
from geo.geoparse import choose, resolve
from geo.geoparse_readings import apply_context_names, mention_readings, read_post, zip_readings

NYC = (-74.26, 40.49, -73.70, 40.92)
ENTRIES = [
    gazetteer.GazetteerEntry("Astoria", "neighbourhood", box(-73.94, 40.76, -73.90, 40.78), region="US-NY"),
    gazetteer.GazetteerEntry("Astoria", "city", Point(-123.83, 46.19), region="US-OR", radius_m=5_000),
    gazetteer.GazetteerEntry("Murray Hill", "neighbourhood", box(-73.985, 40.744, -73.975, 40.752), region="US-NY"),
    gazetteer.GazetteerEntry("Murray Hill", "neighbourhood", box(-73.815, 40.76, -73.805, 40.768), region="US-NY"),
    gazetteer.GazetteerEntry("Queens", "borough", box(-73.945, 40.54, -73.70, 40.80), region="US-NY"),
    gazetteer.GazetteerEntry("Corona", "neighbourhood", box(-73.87, 40.74, -73.85, 40.75), region="US-NY"),
    gazetteer.GazetteerEntry("125 St", "station", Point(-73.952, 40.811), code="A C", region="US-NY"),
    gazetteer.GazetteerEntry("125 St", "station", Point(-73.938, 40.804), code="4 5 6", region="US-NY"),
    gazetteer.GazetteerEntry("Steinway St", "street", LineString([(-73.92, 40.75), (-73.91, 40.78)]), region="US-NY"),
    gazetteer.GazetteerEntry("11102", "zip", box(-73.935, 40.765, -73.92, 40.78), code="11102", region="US-NY"),
]


@pytest.fixture(scope="module")
def index():
    return gazetteer.GazetteerIndex(ENTRIES, context_regions={"oregon": "US-OR"})


def _readings(text, index, bounds=NYC):
    post = read_post(text, index, bounds)
    return post, [mention_readings(post, mi, m) for mi, m in enumerate(post.mentions) if m.entry_ids]


def test_a_post_that_names_nothing_is_not_read(index):
    assert read_post("the power is out again, third time this week", index, NYC) is None


def test_a_cue_word_lifts_a_reading(index):
    _, [[with_cue]] = _readings("Fire in Corona right now", index)
    _, [[without]] = _readings("Fire Corona right now", index)
    assert with_cue.score > without.score


def test_an_everyday_word_in_lower_case_is_lowered(index):
    _, [[lower]] = _readings("corona cases rising again", index)
    _, [[capital]] = _readings("Water rising in Corona again", index)
    assert lower.score < 0.5 < capital.score


def test_the_jurisdiction_prefers_the_reading_inside_it(index):
    _, [astoria] = _readings("Power out in Astoria", index)
    by_region = {r.region: r.score for r in astoria}
    assert by_region["US-NY"] > by_region["US-OR"]


def test_a_state_named_next_to_the_name_decides(index):
    post, readings = _readings("Flooding in Astoria, Oregon", index)
    apply_context_names(post, readings)
    by_region = {r.region: r.score for r in readings[0]}
    assert by_region["US-OR"] > by_region["US-NY"]


def test_a_named_line_picks_the_station_that_serves_it(index):
    _, [stations] = _readings("Smoke at 125 St, 4 train held", index)
    best = max(stations, key=lambda r: r.score)
    assert best.geometry.equals(Point(-73.938, 40.804))


def test_a_zip_followed_by_a_count_is_no_zip(index):
    post = read_post("11102 customers without power in Queens", index, NYC)
    assert zip_readings(post) == []
    post = read_post("No power in 11102 since noon", index, NYC)
    [[z]] = zip_readings(post)
    assert z.kind == "zip"


def test_two_far_apart_places_that_fit_equally_well_are_doubted(index):
    _, readings = _readings("Gas leak in Murray Hill", index)
    before = max(r.score for r in readings[0])
    best = resolve(readings, 0.5)
    assert best[0][0].score == pytest.approx(before - 0.3)
    assert choose(best, 0.95) is None  # not sure enough for a demanding caller


def test_agreeing_mentions_lift_each_other_and_the_finer_wins(index):
    _, readings = _readings("Flooding on Steinway St in Astoria, Queens", index)
    scores = [max(r.score for r in rs) for rs in readings]
    best = resolve(readings, 0.5)
    assert all(b[0].score > s for b, s in zip(best, scores))
    chosen, confidence = choose(best, 0.5)
    assert chosen.kind == "neighbourhood" and confidence >= 0.5


def test_an_unrelated_second_place_lowers_the_confidence(index):
    _, readings = _readings("Power out in Corona and in Astoria", index)
    best = resolve(readings, 0.5)
    chosen, confidence = choose(best, 0.5)
    assert confidence == pytest.approx(min(0.99, chosen.score) - 0.1)
