"""Reports find their zones through `zone_pieces` (each zone cut into parts of at most 128 vertices): the
same zones as the whole polygons give, for a zone of thousands of vertices too, after the zone is redrawn,
and by the pieces' index under the generic plans the write path uses."""

import math
import re

import pytest
from shapely.geometry import MultiPolygon, Point, Polygon
from sqlalchemy import text

from db.session import transaction
from geo import zone_store
from geo.match_postgis import MATCH_CTE, match_zones
from geo.zones import ZoneRecord

pytestmark = pytest.mark.integration


def star(cx: float, cy: float, n: int, r_out: float, r_in: float) -> Polygon:
    """A star of n points (2n vertices): every point near its edge is hard to place."""
    return Polygon([(cx + (r_out if k % 2 == 0 else r_in) * math.cos(math.pi * k / n),
                     cy + (r_out if k % 2 == 0 else r_in) * math.sin(math.pi * k / n)) for k in range(2 * n)])


def load(session_factory, shapes: dict[str, Polygon]) -> None:
    with transaction(session_factory) as s:
        zone_store.upsert_zones(s, layer="stars", records=[
            ZoneRecord(code=code, name=code, geometry=MultiPolygon([shape]), properties={})
            for code, shape in shapes.items()])


def test_a_zone_of_thousands_of_vertices_matches_as_its_whole_polygon(session_factory):
    big = star(-73.95, 40.70, 3000, 0.05, 0.03)  # 6,000 vertices: 47 pieces or more
    load(session_factory, {"BIG": big, "DOT": Polygon([(-73.80, 40.60), (-73.79, 40.60), (-73.79, 40.61)])})
    # Points on rays through the star's tips and notches, just inside and just outside its edge.
    probes = []
    for k in range(0, 6000, 37):
        angle = math.pi * k / 3000
        r = 0.05 if k % 2 == 0 else 0.03
        for f in (0.999, 1.001, 0.5):
            probes.append(Point(-73.95 + f * r * math.cos(angle), 40.70 + f * r * math.sin(angle)))
    with session_factory() as s:
        assert s.execute(text("SELECT count(*) FROM zone_pieces p JOIN zones z ON z.id = p.zone_id "
                              "WHERE z.code = 'BIG'")).scalar_one() > 40
        found = [[m.code for m in match_zones(s, geometry=p)] for p in probes]
    assert found == [["BIG"] if big.intersects(p) else [] for p in probes]
    assert sum(1 for f in found if f) not in (0, len(probes))  # both kinds were probed


def test_a_polygon_reports_weights_come_from_the_whole_zones(session_factory):
    left = Polygon([(-74.0, 40.7), (-73.9, 40.7), (-73.9, 40.8), (-74.0, 40.8)])
    right = Polygon([(-73.9, 40.7), (-73.8, 40.7), (-73.8, 40.8), (-73.9, 40.8)])
    load(session_factory, {"L": star(-73.95, 40.75, 400, 0.2, 0.19).intersection(left), "R": right})
    footprint = Polygon([(-73.92, 40.74), (-73.88, 40.74), (-73.88, 40.76), (-73.92, 40.76)])
    with session_factory() as s:
        weights = {m.code: m.weight for m in match_zones(s, geometry=footprint)}
    assert set(weights) == {"L", "R"} and weights["L"] == pytest.approx(0.5, abs=0.01)
    assert weights["L"] + weights["R"] == pytest.approx(1.0, abs=1e-6)


def test_a_redrawn_zone_matches_where_it_is_now(session_factory):
    here, there = Point(-73.95, 40.70), Point(-73.70, 40.90)
    load(session_factory, {"MOVER": star(-73.95, 40.70, 300, 0.02, 0.01)})
    with session_factory() as s:
        assert [m.code for m in match_zones(s, geometry=here)] == ["MOVER"]
    load(session_factory, {"MOVER": star(-73.70, 40.90, 300, 0.02, 0.01)})  # the same code, redrawn
    with session_factory() as s:
        assert match_zones(s, geometry=here) == []
        assert [m.code for m in match_zones(s, geometry=there)] == ["MOVER"]


@pytest.mark.parametrize("statement", ["lone", "batch"])
def test_the_match_probes_the_pieces_index_under_a_generic_plan(session_factory, districts, statement):
    """With a city's worth of zones loaded (the load ends with ANALYZE of the zones and their pieces), a
    report's match, in the generic plan the write path uses, probes the pieces' spatial index and reads each
    zone by its key: no scan of every zone or every piece."""
    from db import raw
    from ingest.reports import queries

    if statement == "lone":
        sql = raw.to_psycopg("WITH " + MATCH_CTE + " SELECT id FROM m").replace("%(wkt)s", "$1")
        wkt = "'POINT(-73.95 40.62)'"
    else:
        sql = (raw.to_psycopg("WITH " + queries._ARRAYS + " SELECT id FROM m")
               .replace("%(wkt)s", "$1").replace("%(ord)s", "'{1}'"))
        sql = re.sub(r"%\((\w+)\)s", "NULL", sql)
        wkt = "'{\"POINT(-73.95 40.62)\"}'"
    cells = {f"G{i}-{j}": Polygon([(-74.0 + i * 0.005, 40.6 + j * 0.005), (-74.0 + (i + 1) * 0.005, 40.6 + j * 0.005),
                                   (-74.0 + (i + 1) * 0.005, 40.6 + (j + 1) * 0.005),
                                   (-74.0 + i * 0.005, 40.6 + (j + 1) * 0.005)])
             for i in range(20) for j in range(15)}
    with session_factory() as s:
        zone_store.upsert_zones(s, layer="grid", records=[
            ZoneRecord(code=code, name=code, geometry=MultiPolygon([cell]), properties={})
            for code, cell in cells.items()])  # 300 zones: the load ends with ANALYZE
        s.execute(text("SET plan_cache_mode = force_generic_plan"))
        s.execute(text(f"PREPARE match_{statement}(text) AS {sql}"))
        plan = "\n".join(s.execute(text(f"EXPLAIN EXECUTE match_{statement}({wkt})")).scalars())
        s.execute(text(f"DEALLOCATE match_{statement}"))  # prepared statements outlive the transaction
        s.execute(text("RESET plan_cache_mode"))
        s.rollback()
    assert "ix_zone_pieces_geom" in plan, plan
    assert "Seq Scan on zone_pieces" not in plan and "ix_zone_pieces_zone_id" not in plan, plan
    assert "Seq Scan on zones" not in plan and "pk_zones" in plan, plan
