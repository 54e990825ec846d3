"""Posts write signals only in the layers the rules count; a layer a rule starts counting is backfilled
(ingest.posts.signal_layers). Hand-drawn districts (A, B, C) inside one precinct (P1); the test rules count
flood posts in `district` only."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.integration.posts_support import entries

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def ingest(session_factory, districts, settings, lexicon, post_state):
    """ingest(items, rules=..., session=None): one batch through the pipeline, committed unless the
    caller passes its own session."""
    from alerts.rules import load_rules
    from db.session import transaction
    from geo.gazetteer import GazetteerIndex
    from ingest.posts import pipeline, parse as posts

    index = GazetteerIndex(entries(), context_regions={})
    config = pipeline.PipelineConfig.from_settings(settings)
    default_rules = load_rules(settings.rules_file)

    def go(items, *, rules=None, session=None, now=NOW):
        valid = [p for p in posts.parse_items(items) if isinstance(p, posts.PostIn)]
        kwargs = dict(posts=valid, index=index, lexicon=lexicon, rules=default_rules if rules is None else rules,
                      config=config, state=post_state, now=now)
        if session is not None:
            return pipeline.ingest_posts(session, **kwargs)
        with transaction(session_factory) as s:
            return pipeline.ingest_posts(s, **kwargs)

    go.rules = default_rules
    return go


def flood(ext, author, where="Alphaville", *, minutes=1, same_text=False):
    tail = "" if same_text else f" (report {ext})"
    return {"source": "test", "external_id": ext, "author": author,
            "text": f"Street flooding in {where}, water up to the car doors{tail}",
            "created_at": (NOW - timedelta(minutes=minutes)).isoformat()}


def precinct_rule():
    from alerts.rules import Rule

    return Rule(name="flood_precinct", categories=("flood",), sources=("post",), layer="precinct",
                window_s=600, min_count=3)


def signals_by_layer(session_factory, layer):
    """{observation id: {zone code: weight}} of the signals in `layer`."""
    out: dict[int, dict[str, float]] = {}
    with session_factory() as s:
        for oid, code, w in s.execute(text(
                "SELECT sg.observation_id, z.code, sg.weight FROM signals sg JOIN zones z ON z.id = sg.zone_id "
                "JOIN zone_layers l ON l.id = z.layer_id WHERE l.name = :layer"), {"layer": layer}):
            out.setdefault(oid, {})[code] = round(w, 3)
    return out


def stored_weights(session_factory, oid, layer):
    """The zone weights the observation keeps, in `layer`."""
    from ingest.posts.zones import unpack_weights

    with session_factory() as s:
        blob = s.execute(text("SELECT zone_weights FROM observations WHERE id = :id"), {"id": oid}).scalar_one()
        codes = dict(s.execute(text("SELECT z.id, z.code FROM zones z JOIN zone_layers l ON l.id = z.layer_id "
                                    "WHERE l.name = :layer"), {"layer": layer}).all())
    zones, weights = unpack_weights(bytes(blob))
    return {codes[z]: round(w, 3) for z, w in zip(zones.tolist(), weights.tolist()) if z in codes}


def test_a_layer_a_rule_starts_counting_is_backfilled_within_its_window(ingest, session_factory):
    """Three flood posts in P1 within 10 minutes, but only one after the precinct rule arrives: the
    rule opens its alert because the two before it were written to the precinct layer when it came."""
    first = ingest([flood("old", "u1", minutes=20),            # before the new rule's 10-minute window
                    flood("a", "u2", "Midway", minutes=5),
                    flood("b", "u3", minutes=4, same_text=True),
                    flood("b-again", "u3", minutes=3, same_text=True),   # a repost: stored, never counted
                    {"source": "test", "external_id": "chat", "author": "u9",
                     "text": "lovely brunch in Alphaville", "created_at": NOW.isoformat()}])
    assert [r.status for r in first] == ["created", "created", "created", "duplicate", "created"]
    ids = {name: r.id for name, r in zip(["old", "a", "b", "b-again", "chat"], first)}
    assert signals_by_layer(session_factory, "precinct") == {}  # no rule counts posts there yet
    assert set(signals_by_layer(session_factory, "district")) == {ids["old"], ids["a"], ids["b"]}

    rules = [*ingest.rules, precinct_rule()]
    later = ingest([flood("c", "u4")], rules=rules)
    precinct = signals_by_layer(session_factory, "precinct")
    assert precinct == {ids["a"]: {"P1": 1.0}, ids["b"]: {"P1": 1.0}, later[0].id: {"P1": 1.0}}
    for oid in (ids["a"], ids["b"]):
        assert precinct[oid] == stored_weights(session_factory, oid, "precinct")
    with session_factory() as s:
        alerts = s.execute(text("SELECT a.rule, z.code, a.evidence_count FROM alerts a "
                                "JOIN zones z ON z.id = a.zone_id WHERE a.rule = 'flood_precinct'")).all()
        layers = s.execute(text("SELECT l.name FROM signal_layers s JOIN zone_layers l ON l.id = s.layer_id "
                                "ORDER BY 1")).scalars().all()
        backfilled = s.execute(text("SELECT category, author_key IS NOT NULL, observed_at FROM signals "
                                    "WHERE observation_id = :id"), {"id": ids["a"]}).all()
    assert alerts == [("flood_precinct", "P1", 3)]
    assert layers == ["district", "precinct"]
    assert set(backfilled) == {("flood", True, NOW - timedelta(minutes=5))}  # the observation's own values

    # Once added, a layer is written like any other: no second backfill, no duplicate signals.
    ingest([flood("d", "u5")], rules=rules)
    with session_factory() as s:
        assert s.execute(text("SELECT count(*) FROM (SELECT observation_id, zone_id FROM signals "
                              "GROUP BY 1, 2 HAVING count(*) > 1) d")).scalar_one() == 0
    assert len(signals_by_layer(session_factory, "precinct")) == 4


@pytest.mark.committing  # threads, each on its own connection
def test_adding_a_layer_waits_for_batches_in_flight(ingest, session_factory):
    """A batch not yet committed holds the shared lock: the adder waits for it, then backfills its posts.
    Without the lock the adder would read before the batch's commit, and the post would never get its
    precinct signal."""
    from ingest.posts import signal_layers

    ingest([flood("before", "u0", minutes=30)])  # adds `district`: later batches take the shared lock only
    batch = session_factory()
    try:
        result = ingest([flood("inflight", "u1")], session=batch)  # written, not committed
        backend = batch.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert backend  # the batch's own connection, still in its transaction
        added: list[set[str]] = []

        def add():
            with session_factory() as s:
                added.append(signal_layers.layers_to_write(s, wanted={"district": 600, "precinct": 600}, now=NOW))
                s.commit()

        adder = threading.Thread(target=add)
        adder.start()
        deadline = time.monotonic() + 20
        with session_factory() as watch:
            while time.monotonic() < deadline:
                waiting = watch.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND classid = :a AND objid = :b"), {"a": signal_layers.LOCK[0], "b": signal_layers.LOCK[1]}
                ).scalar_one()
                if waiting:
                    break
                time.sleep(0.05)
        assert waiting == 1 and adder.is_alive() and not added
        batch.commit()
    finally:
        batch.close()
    adder.join(timeout=30)
    assert added == [{"district", "precinct"}]
    assert signals_by_layer(session_factory, "precinct") == {result[0].id: {"P1": 1.0}}


@pytest.mark.committing  # threads, each on its own connection
def test_a_batch_that_waited_for_an_adder_writes_the_new_layer(ingest, session_factory):
    """A batch whose rules know nothing of `precinct` starts while another process adds it: it waits for
    the adder's commit, then reads the layers again and writes its precinct signals too. (Had it kept what
    it read before the lock, its post would never get one: the adder's backfill could not see it.)"""
    from ingest.posts import signal_layers

    ingest([flood("before", "u0", minutes=30)])  # adds `district`
    adder = session_factory()
    try:
        signal_layers.layers_to_write(adder, wanted={"district": 600, "precinct": 600}, now=NOW)  # holds the lock
        results: list = []
        batch = threading.Thread(target=lambda: results.extend(ingest([flood("late", "u1")])))
        batch.start()
        deadline = time.monotonic() + 20
        with session_factory() as watch:
            while time.monotonic() < deadline and not watch.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = :a"),
                    {"a": signal_layers.LOCK[0]}).scalar_one():
                time.sleep(0.05)
        assert batch.is_alive() and not results  # waiting on the adder
        adder.commit()
    finally:
        adder.close()
    batch.join(timeout=30)
    assert [r.status for r in results] == ["created"]
    assert signals_by_layer(session_factory, "precinct") == {results[0].id: {"P1": 1.0}}


@pytest.mark.parametrize("wanted", [{"district": 600}, {"district": 600, "no_such_layer": 600}])
@pytest.mark.committing  # advisory locks end with the real transaction, not a savepoint
def test_a_batch_takes_the_shared_lock_when_it_adds_nothing(session_factory, districts, wanted):
    """The common path, and a rule naming a layer that does not exist, only take the shared lock (the
    exclusive one would serialise every batch)."""
    from ingest.posts import signal_layers

    with session_factory() as s:
        signal_layers.layers_to_write(s, wanted={"district": 600}, now=NOW)
        s.commit()
    with session_factory() as s:
        assert signal_layers.layers_to_write(s, wanted=wanted, now=NOW) == {"district"}
        modes = s.execute(text("SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                               "AND classid = :a"), {"a": signal_layers.LOCK[0]}).scalars().all()
        s.rollback()
    assert modes == ["ShareLock"]
