"""Zone weights computed in the process (geo.match_memory) against tests/conftest.py's hand-drawn districts:
known answers, and PostGIS itself as the oracle for random shapes."""

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box
from sqlalchemy import text

pytestmark = pytest.mark.integration


def weights_by_code(session, geoms):
    from geo import match_memory as zone_match

    zs = zone_match.ZoneSets().get(session)
    g, z, w = zone_match.weights(zs, np.array(geoms, dtype=object))
    out: list[dict] = [{} for _ in geoms]
    for gi, zid, weight in zip(g.tolist(), z.tolist(), w.tolist()):
        out[gi][zs.info[zid][1]] = weight
    return out


def postgis_shares(session, geom):
    """What PostGIS says: the share of the geometry's area inside each zone it overlaps."""
    return {code: w for code, w in session.execute(text(
        "SELECT z.code, ST_Area(ST_Intersection(z.geom, g)) / ST_Area(g) FROM zones z, "
        "ST_GeomFromWKB(:wkb, 4326) AS g WHERE ST_Intersects(z.geom, g)"), {"wkb": shapely.to_wkb(geom)})
        if w > 1e-9}


def test_known_answers(session_factory, districts):
    with session_factory() as s:
        got = weights_by_code(s, [
            Point(-73.975, 40.725),                   # in A
            Point(-73.95, 40.725),                    # on the A/B border: both
            Point(-75.0, 41.0),                       # nowhere
            box(-73.97, 40.71, -73.94, 40.74),        # Midway: 2/3 in A, 1/3 in B
            box(-73.99, 40.71, -73.96, 40.74),        # Alphaville: inside A
            box(-74.02, 40.68, -73.88, 40.82),        # Greater Borough: every district well below half
            box(-74.00, 40.75, -73.95, 40.80),        # the west half of C, touching A along an edge
        ])
    assert got[0] == {"A": 1.0, "P1": 1.0}
    assert got[1] == {"A": 1.0, "B": 1.0, "P1": 1.0}
    assert got[2] == {}
    assert got[3] == pytest.approx({"A": 2 / 3, "B": 1 / 3, "P1": 1.0}, abs=1e-9) and got[3]["P1"] == 1.0
    assert got[4] == {"A": 1.0, "P1": 1.0}
    whole = 0.14 * 0.14
    assert got[5] == pytest.approx({"A": 0.0025 / whole, "B": 0.0025 / whole, "C": 0.005 / whole, "P1": 1.0}, abs=1e-9)
    assert got[6] == {"C": 1.0, "P1": 1.0}


def test_random_shapes_agree_with_postgis(session_factory, districts):
    rng = np.random.default_rng(7)
    shapes = []
    for _ in range(12):
        x, y = rng.uniform(-74.06, -73.88), rng.uniform(40.64, 40.83)
        shapes.append(box(x, y, x + rng.uniform(0.001, 0.08), y + rng.uniform(0.001, 0.08)))
        shapes.append(Point(x, y).buffer(rng.uniform(0.005, 0.05), quad_segs=rng.choice([2, 8, 64])))
        shapes.append(shapely.Polygon([(x, y), (x + 0.06, y + 0.01), (x + 0.02, y + 0.05)]))
    with session_factory() as s:
        got = weights_by_code(s, shapes)
        for shape, mine in zip(shapes, got):
            assert mine == pytest.approx(postgis_shares(s, shape), abs=1e-9), shape.wkt


def test_geodesic_circles_match_postgis_buffers(session_factory, districts):
    from geo import match_memory as zone_match

    with session_factory() as s:
        circle = zone_match.geodesic_circles(np.array([-73.95]), np.array([40.725]), np.array([1500.0]))[0]
        mine = weights_by_code(s, [circle])[0]
        pg = s.execute(text("SELECT ST_AsBinary(ST_Buffer(ST_MakePoint(-73.95, 40.725)::geography, 1500)::geometry)"))
        theirs = postgis_shares(s, shapely.from_wkb(bytes(pg.scalar_one())))
    assert mine == pytest.approx(theirs, abs=2e-3)
    assert mine["A"] == pytest.approx(0.5, abs=1e-3) and mine["P1"] == 1.0


def test_a_zone_change_is_seen_by_the_next_batch(session_factory, districts):
    from shapely.geometry import MultiPolygon

    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord

    where = [box(-73.99, 40.71, -73.96, 40.74)]
    with session_factory() as s:
        assert weights_by_code(s, where)[0] == {"A": 1.0, "P1": 1.0}
    with transaction(session_factory) as s:  # A shrinks to its east half
        zone_service.upsert_zones(s, layer="district", records=[ZoneRecord(
            code="A", name="District A", geometry=MultiPolygon([box(-73.975, 40.70, -73.95, 40.75)]), properties={})])
    with session_factory() as s:
        assert weights_by_code(s, where)[0] == pytest.approx({"A": 0.5, "P1": 1.0}, abs=1e-9)


def test_locate_write_and_rule_matches(session_factory, districts):
    """The pipeline's steps one by one: a point known to 1.5 km (a circle) on the A/B border, a box in A and
    a point in C; only counted observations get signals; the rule matches hold rule layers at min_weight."""
    from datetime import UTC, datetime

    from db.session import transaction
    from geo import match_memory as zone_match
    from geo.geotag import Geotag
    from db import raw
    from ingest.posts import store as post_store, zones as post_zones

    now = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    tags = [Geotag(Point(-73.95, 40.725), 1500.0, 0.8, "text"),
            Geotag(box(-73.99, 40.71, -73.96, 40.74), 900.0, 0.9, "place"),
            Geotag(Point(-73.925, 40.775), 10.0, 1.0, "coordinates")]
    columns = {
        "external_id": ["t:1", "t:2", "t:3"], "author_hash": ["a1", "a2", None], "text": ["x", "y", "z"],
        "category": ["flood", "flood", "none"], "confidence": [0.8, 0.9, 0.1], "observed_at": [now] * 3,
        "wkb": [shapely.to_wkb(t.geometry) for t in tags], "uncertainty_m": [t.uncertainty_m for t in tags],
        "geotag_method": [t.method for t in tags], "raw": ["{}"] * 3, "text_fingerprint": ["f1", "f2", "f3"],
        "zone_weights": [None] * 3}
    with transaction(session_factory) as s:
        zs = zone_match.ZoneSets().get(s)
        pos, zone, weight = post_zones.locate(tags, zs)
        # Where each location falls, counted or not (t:3 is chatter the caller would not match).
        assert sorted((columns["external_id"][p], _code(s, int(z)), round(float(w), 3))
                      for p, z, w in zip(pos, zone, weight)) == sorted((
                          ("t:1", "A", 0.5), ("t:1", "B", 0.5), ("t:1", "P1", 1.0), ("t:2", "A", 1.0),
                          ("t:2", "P1", 1.0), ("t:3", "C", 1.0), ("t:3", "P1", 1.0)))
        keep = pos < 2  # t:1 and t:2 are counted
        with raw.pipeline(s):  # sent, then read after the sync, as the pipeline does
            sent = post_store.send_posts(s, columns=columns, now=now, links=post_store.Links(
                [columns["external_id"][p] for p in pos[keep].tolist()], zone[keep], weight[keep]))
        ids = sent.ids()
        assert post_store.send_posts(s, columns={  # the same external id again: not inserted, no signals
            "external_id": ["t:1"], "author_hash": [None], "text": [None], "category": ["none"],
            "confidence": [0.0], "observed_at": [now], "wkb": [None], "uncertainty_m": [None],
            "geotag_method": ["none"], "raw": ["{}"], "text_fingerprint": [None], "zone_weights": [None]}, now=now,
            links=post_store.Links(["t:1"], np.array([_zone_id(s, "C")]), np.array([1.0]))).ids() == {}
        oid = [ids["t:1"], ids["t:2"], ids["t:3"]]
        obs = np.array(oid, dtype=np.int64)[pos]
        ruled = keep & post_zones.layer_mask(zs, ["district"])[zone] & (weight >= 0.5)
        matches = post_zones.zone_matches(zs, obs[ruled].tolist(), zone[ruled].tolist(), weight[ruled].tolist())
    assert {o: sorted((m.code, round(m.weight, 3)) for m in ms) for o, ms in matches.items()} == {
        oid[0]: [("A", 0.5), ("B", 0.5)], oid[1]: [("A", 1.0)]}
    with session_factory() as s:
        signals = s.execute(text("SELECT s.observation_id, z.code, round(s.weight::numeric, 3), s.source, s.category, "
                                 "s.confidence, s.author_key, s.observed_at FROM signals s "
                                 "JOIN zones z ON z.id = s.zone_id ORDER BY 1, 2")).all()
        assert s.execute(text("SELECT count(*) FROM observation_zones")).scalar_one() == 0
    assert [(o, c, float(w)) for o, c, w, *_ in signals] == [
        (oid[0], "A", 0.5), (oid[0], "B", 0.5), (oid[0], "P1", 1.0), (oid[1], "A", 1.0), (oid[1], "P1", 1.0)]
    assert signals[0][3:] == ("post", "flood", 0.8, "a1", now)


def _code(session, zone_id: int) -> str:
    return session.execute(text("SELECT code FROM zones WHERE id = :id"), {"id": zone_id}).scalar_one()


def _zone_id(session, code: str) -> int:
    return session.execute(text("SELECT id FROM zones WHERE code = :code"), {"code": code}).scalar_one()
