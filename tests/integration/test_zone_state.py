"""Migration 0018: zone pieces kept by statement triggers, and the one-row zones state the in-memory
zone matcher checks, against the real PostGIS."""

import pytest
from shapely.geometry import MultiPolygon, Polygon, box
from sqlalchemy import text

pytestmark = [pytest.mark.integration, pytest.mark.committing]


def _records(n, *, shift=0.0):
    from geo.zones import ZoneRecord

    out = []
    for i in range(n):
        w = -74.0 + (i % 10) * 0.01 + shift
        s = 40.7 + (i // 10) * 0.01
        out.append(ZoneRecord(code=f"C{i}", name=f"Cell {i}", geometry=MultiPolygon([Polygon(box(w, s, w + 0.01,
                                                                                           s + 0.01).exterior)]),
                              properties={"i": i}))
    return out


def _load(session_factory, records, layer="grid"):
    from db.session import transaction
    from geo import zone_store as service

    with transaction(session_factory) as session:
        return service.upsert_zones(session, layer=layer, records=records)


def _one(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_every_loaded_zone_is_cut_into_pieces_and_a_reload_recuts_only_what_moved(session_factory, engine):
    counts = _load(session_factory, _records(1200))  # more than one statement's worth
    assert (counts.inserted, counts.updated) == (1200, 0)
    assert _one(engine, "SELECT count(DISTINCT zone_id) FROM zone_pieces") == 1200
    moved = _records(1200)
    moved[5] = _records(6, shift=0.5)[5]  # one zone moves half a degree east
    counts = _load(session_factory, moved)
    assert (counts.inserted, counts.updated) == (0, 1200)
    assert _one(engine, "SELECT count(*) FROM zone_pieces") == 1200
    east = _one(engine, "SELECT ST_XMin(ST_Collect(p.geom)) FROM zone_pieces p JOIN zones z ON z.id = p.zone_id "
                        "WHERE z.code = 'C5'")
    assert east == pytest.approx(-74.0 + 0.05 + 0.5)


def test_the_zones_state_changes_with_every_write_and_the_matcher_reloads(session_factory, engine):
    from db.session import transaction
    from geo import zone_store as service, match_memory as zone_match

    def stamp():
        return _one(engine, "SELECT version || ':' || xmin::text FROM zone_state")

    sets = zone_match.ZoneSets()
    _load(session_factory, _records(3))
    first = stamp()
    with session_factory() as session:
        before = sets.get(session)
        assert sets.get(session) is before  # nothing changed: the same copy
    _load(session_factory, _records(4))
    assert stamp() != first
    with session_factory() as session:
        after = sets.get(session)
    assert after is not before and len(after.info) == 4
    with transaction(session_factory) as session:
        service.delete_layer(session, layer="grid")
    with session_factory() as session:
        assert sets.get(session).info == {}


def test_each_owner_keeps_its_own_zones(session_factory, districts):
    """No module-level cache: two owners (two apps in one process) never share what they loaded."""
    from ingest.posts.state import PostState

    one, two = PostState(), PostState()
    with session_factory() as session:
        assert one.zones.get(session) is one.zones.get(session)
        assert two.zones.get(session) is not one.zones.get(session)
        assert two.gazetteer.get(session) is not one.gazetteer.get(session)
