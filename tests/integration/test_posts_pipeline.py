"""The post pipeline on the real PostGIS: hand-drawn districts, a hand-built gazetteer with known answers."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.integration.posts_support import entries

pytestmark = [pytest.mark.integration, pytest.mark.pooled]

NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)


@pytest.fixture
def index():
    from geo.gazetteer import GazetteerIndex

    return GazetteerIndex(entries(), context_regions={})


@pytest.fixture
def rules(settings):
    from alerts.rules import load_rules

    return load_rules(settings.rules_file)


@pytest.fixture(params=["one chunk", "a chunk per post, worker process", "a chunk per post, worker thread"])
def run(request, session_factory, districts, index, lexicon, rules, settings, post_state):
    """Ingest dicts through parse_items + ingest_posts in one committed transaction; each test runs with
    the batch in one chunk (inline), and again with every post its own chunk in the worker process, and
    in a worker thread. `go.in_process`: the Python stage ran in this process (its caches are here)."""
    from dataclasses import replace

    from db.session import transaction
    from ingest.posts import pipeline, parse as posts

    config = pipeline.PipelineConfig.from_settings(settings)
    if request.param != "one chunk":
        config = replace(config, worker_process=request.param.endswith("process"), chunk=1, thread_min=1)

    def go(items, *, now=NOW):
        parsed = posts.parse_items(items)
        valid = [p for p in parsed if isinstance(p, posts.PostIn)]
        with transaction(session_factory) as session:
            results = pipeline.ingest_posts(session, posts=valid, index=index, lexicon=lexicon, rules=rules,
                                             config=config, state=post_state, now=now)
        return parsed, results

    go.in_process = not request.param.endswith("process")
    return go


def post(ext, text_, *, author="alice", minutes=0, **extra):
    return {"source": "test", "external_id": ext, "author": author, "text": text_,
            "created_at": (NOW - timedelta(minutes=minutes)).isoformat(), **extra}


def zones_of(session_factory, observation_id, *, rule_layers=("district",)):
    """A counted post's zones and weights in every layer, as its observation keeps them (zone_weights;
    posts keep no observation_zones rows). Its signals must be those of them in the layers the rules
    count posts in: the test rules count 'district' only."""
    from ingest.posts.zones import unpack_weights

    with session_factory() as s:
        assert s.execute(text("SELECT count(*) FROM observation_zones WHERE observation_id = :id"),
                         {"id": observation_id}).scalar_one() == 0
        blob = s.execute(text("SELECT zone_weights FROM observations WHERE id = :id"),
                         {"id": observation_id}).scalar_one()
        names = {zid: (layer, code) for zid, layer, code in s.execute(text(
            "SELECT z.id, l.name, z.code FROM zones z JOIN zone_layers l ON l.id = z.layer_id"))}
        stored = {}
        if blob is not None:
            zones, weights = unpack_weights(bytes(blob))
            stored = {names[z]: round(w, 3) for z, w in zip(zones.tolist(), weights.tolist())}
        signals = {(layer, code): round(w, 3) for layer, code, w in s.execute(text(
            "SELECT l.name, z.code, sg.weight FROM signals sg JOIN zones z ON z.id = sg.zone_id "
            "JOIN zone_layers l ON l.id = z.layer_id WHERE sg.observation_id = :id"), {"id": observation_id})}
    assert signals == {k: w for k, w in stored.items() if k[0] in rule_layers}
    return stored


def signals_of(session_factory, observation_id):
    with session_factory() as s:
        return {code: round(w, 3) for code, w in s.execute(text(
            "SELECT z.code, s.weight FROM signals s JOIN zones z ON z.id = s.zone_id "
            "JOIN zone_layers l ON l.id = z.layer_id WHERE s.observation_id = :id AND l.name = 'district'"),
            {"id": observation_id})}


def test_mixed_batch_results_and_zones(run, session_factory):
    parsed, results = run([
        post("1", "Street flooding here, water up to the car doors", coordinates=[-73.925, 40.775]),
        post("2", "Basement flooded, water rising", place={"name": "Block", "bbox": [-73.99, 40.72, -73.98, 40.73]}),
        post("3", "Smoke and flames at Betaburg Station right now"),
        post("4", "Street flooding in Midway, cars stuck"),
        post("5", "Huge flooding somewhere, stay safe"),            # an incident, nowhere
        post("6", "lovely brunch in Alphaville today"),              # somewhere, no incident
        post("1", "Street flooding here, water up to the car doors", coordinates=[-73.925, 40.775]),  # again
    ])
    assert all(not hasattr(p, "error") for p in parsed)
    status = [(r.index, r.status) for r in results]
    assert status == [(0, "created"), (1, "created"), (2, "created"), (3, "created"), (4, "created"),
                      (5, "created"), (6, "duplicate")]
    assert results[6].id == results[0].id
    assert [r.category for r in results[:6]] == ["flood", "flood", "fire", "flood", "flood", "none"]
    assert [r.located for r in results[:6]] == [True, True, True, True, False, True]

    assert zones_of(session_factory, results[0].id) == {("district", "C"): 1.0, ("precinct", "P1"): 1.0}
    assert zones_of(session_factory, results[1].id) == {("district", "A"): 1.0, ("precinct", "P1"): 1.0}
    assert zones_of(session_factory, results[2].id) == {("district", "B"): 1.0, ("precinct", "P1"): 1.0}
    midway = zones_of(session_factory, results[3].id)
    assert midway[("district", "A")] == pytest.approx(2 / 3, abs=0.01)
    assert midway[("district", "B")] == pytest.approx(1 / 3, abs=0.01)
    assert zones_of(session_factory, results[4].id) == {}
    # Stored with its text, but neither the unlocated flood nor the brunch feeds a rule.
    assert signals_of(session_factory, results[4].id) == {}
    assert signals_of(session_factory, results[5].id) == {}
    # The brunch is located and stored with its place, but chatter is not matched to zones.
    assert zones_of(session_factory, results[5].id) == {}
    with session_factory() as s:
        assert s.execute(text("SELECT ST_AsText(geom) FROM observations WHERE id = :id"),
                         {"id": results[5].id}).scalar_one().startswith("POLYGON")
    with session_factory() as s:
        row = s.execute(text("SELECT text, geom IS NULL, geotag_method, category FROM observations WHERE id = :id"),
                        {"id": results[4].id}).one()
    assert row == ("Huge flooding somewhere, stay safe", True, "none", "flood")


def test_authors_are_never_stored_in_clear(run, session_factory, settings):
    from ingest.posts.parse import author_key

    _, results = run([post("a1", "Street flooding on my block", author="@carol.example.com",
                           coordinates=[-73.975, 40.725])])
    with session_factory() as s:
        dump = s.execute(text("SELECT row_to_json(o)::text FROM observations o")).scalar_one()
        sig_authors = s.execute(text("SELECT DISTINCT author_key FROM signals")).scalars().all()
    assert "carol" not in dump
    expected = author_key("@carol.example.com", secret=settings.author_hash_key.get_secret_value())
    assert sig_authors == [expected] and expected in dump


def flood(ext, author, where, minutes=1, *, same_text=False):
    """A flood post; its text differs per post unless same_text (reposts are tested on their own)."""
    tail = "" if same_text else f" (report {ext})"
    return post(ext, f"Street flooding in {where}, water up to the car doors{tail}", author=author, minutes=minutes)


def open_alerts(session_factory):
    with session_factory() as s:
        return s.execute(text(
            "SELECT a.rule, z.code, a.evidence_count, a.distinct_authors FROM alerts a "
            "JOIN zones z ON z.id = a.zone_id WHERE a.state = 'open' ORDER BY a.id")).all()


def test_flood_posts_crossing_the_threshold_open_one_alert(run, session_factory):
    _, first = run([flood("f1", "u1", "Alphaville"), flood("f2", "u2", "Alphaville")])
    assert open_alerts(session_factory) == []  # 2 of 3
    _, more = run([flood("f3", "u1", "Alphaville"), flood("f4", "u3", "Alphaville")])
    assert [r.status for r in more] == ["created", "created"]
    assert open_alerts(session_factory) == [("flood_posts", "A", 4, 3)]
    with session_factory() as s:
        events = s.execute(text("SELECT kind, payload->'zone'->>'code' FROM outbox_events")).all()
        evidence = s.execute(text("SELECT count(*) FROM alert_evidence")).scalar_one()
    assert events == [("opened", "A")]
    assert evidence == 4


def test_borough_level_guesses_do_not_count(run, session_factory):
    _, results = run([flood(f"b{i}", f"u{i}", "Greater Borough") for i in range(6)])
    assert all(r.status == "created" and r.located for r in results)
    weights = signals_of(session_factory, results[0].id)
    # The borough polygon touches A, B and C but covers at most a quarter of its area in any of them.
    assert set(weights) == {"A", "B", "C"} and max(weights.values()) < 0.5
    assert open_alerts(session_factory) == []


def test_partial_neighbourhood_counts_by_its_share(run, session_factory):
    """Midway is 2/3 in A: it counts in A at weight 0.67, and 3 posts make 2.0 < min_count 3."""
    run([flood(f"m{i}", f"u{i}", "Midway") for i in range(3)])
    assert open_alerts(session_factory) == []
    run([flood("m9", "u9", "Midway"), flood("m10", "u10", "Midway")])
    assert open_alerts(session_factory) == [("flood_posts", "A", 5, 5)]


def test_same_text_same_author_within_window_counts_once(run, session_factory):
    _, results = run([
        flood("r1", "spammer", "Alphaville", minutes=9, same_text=True),
        flood("r2", "spammer", "Alphaville", minutes=5, same_text=True),
        post("r3", "Street flooding in  ALPHAVILLE, water up to the car doors https://t.co/x", author="spammer",
             minutes=3),
        flood("r4", "other", "Alphaville", minutes=2, same_text=True),
    ])
    assert [r.status for r in results] == ["created", "duplicate", "duplicate", "created"]
    assert results[1].duplicate_of == results[0].id and results[2].duplicate_of == results[0].id
    assert results[1].id not in (None, results[0].id)  # stored for evidence display
    assert signals_of(session_factory, results[1].id) == {}
    with session_factory() as s:
        marks = dict(s.execute(text("SELECT id, raw->>'reason' FROM observations WHERE id = ANY(:ids)"),
                               {"ids": [r.id for r in results]}).all())
    assert [marks[r.id] for r in results] == [None, "repost", "repost", None]
    assert open_alerts(session_factory) == []  # two counted posts, not four
    # A later batch: the same text again is still a repost; a new author counts and crosses the threshold.
    _, later = run([flood("r5", "spammer", "Alphaville", minutes=1, same_text=True),
                    flood("r6", "third", "Alphaville")])
    assert [r.status for r in later] == ["duplicate", "created"]
    assert open_alerts(session_factory) == [("flood_posts", "A", 3, 3)]


def test_repost_outside_the_window_counts_again(run, session_factory, settings):
    _, results = run([flood("w1", "x", "Alphaville", minutes=130, same_text=True),
                      flood("w2", "x", "Alphaville", minutes=1, same_text=True)])
    assert [r.status for r in results] == ["created", "created"]


def test_detailed_outline_weights_and_their_cache(run, session_factory, post_state):
    """A many-vertex neighbourhood is matched once per process and reused; the weights stay right."""
    _, first = run([flood("o1", "u1", "Roundtown")])
    _, second = run([flood("o2", "u2", "Roundtown")])
    for r in (first[0], second[0]):
        w = zones_of(session_factory, r.id)
        assert w[("district", "A")] == pytest.approx(0.5, abs=0.01)
        assert w[("district", "B")] == pytest.approx(0.5, abs=0.01)
        assert w[("precinct", "P1")] == 1.0
    with session_factory() as s:  # each row keeps the outline's centre (the second from the cache), not the outline
        stored = s.execute(text("SELECT ST_X(geom), ST_Y(geom), uncertainty_m FROM observations WHERE id = ANY(:ids)"),
                           {"ids": [first[0].id, second[0].id]}).all()
    assert len(stored) == 2
    for x, y, radius in stored:
        assert (x, y) == pytest.approx((-73.95, 40.725), abs=1e-6) and radius > 1_000
    if run.in_process:  # else the cache is the worker process's
        with session_factory() as s:
            assert post_state.zones.get(s).area_weights


def test_a_batch_with_nothing_accepted_writes_nothing(run, session_factory):
    assert run([])[1] == []
    _, results = run([post("s1", "Street flooding here", coordinates=[40.775, -73.925])])  # [lat, lon]
    assert [r.status for r in results] == ["rejected"]
    assert results[0].status == "rejected" and "[longitude, latitude]" in results[0].error
    with session_factory() as s:
        assert s.execute(text("SELECT (SELECT count(*) FROM observations) + (SELECT count(*) FROM signals)")
                         ).scalar_one() == 0


def test_a_compound_incident_keeps_its_other_categories(run, session_factory, lexicon):
    """The post's category is the primary one; the others it reports are stored beside it."""
    from ingest.posts.classify import classify

    burning = "Transformer exploded and the pole is on fire, whole block lost power"
    expected = classify(burning, lexicon)
    assert expected.secondary, "the lexicon no longer reads this post as a compound incident"
    _, results = run([post("c1", burning, coordinates=[-73.925, 40.775]),
                      post("c2", "Street flooding here, water up to the car doors", coordinates=[-73.925, 40.775])])
    with session_factory() as s:
        stored = dict(s.execute(text("SELECT raw->>'external_id', raw->'classification' FROM observations")).all())
    assert stored["c1"]["category"] == expected.category
    assert stored["c1"]["secondary"] == list(expected.secondary)
    assert "secondary" not in stored["c2"]  # a single-category post stores none
