"""Match geometries to zones in PostGIS; spatial predicates run in the database."""

from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ZoneMatch:
    zone_id: int
    layer: str
    code: str
    name: str
    weight: float  # share of the geometry's area inside the zone; 1.0 for points


# SQL fragment for a WITH clause: `m` is every zone, in every layer, that the geometry :wkt touches,
# as (id, layer, code, name, weight). A point weighs 1 in each zone holding it; a polygon's weight per
# zone is the share of its area inside that zone, on the spheroid. Zero weights (a polygon only
# touching a zone's edge) are left out. Writers put it in their own statement to save a round trip.
# Candidates come from `zone_pieces` (each zone cut into parts of at most 128 vertices, kept by the zones
# table's triggers, migration 0018): a point-in-polygon test on a borough of 36,000 vertices cost about
# 140 µs of server CPU per report across New York's five layers, on a piece about 20 µs.
MATCH_CTE = """
    g AS (SELECT ST_GeomFromText(:wkt, 4326) AS geom),
    m AS MATERIALIZED (
        SELECT * FROM (
            SELECT z.id, l.name AS layer, z.code, z.name,
                   coalesce(CASE WHEN GeometryType(g.geom) IN ('POINT', 'MULTIPOINT') THEN 1.0
                                 ELSE ST_Area(ST_Intersection(z.geom, g.geom)::geography)
                                      / NULLIF(ST_Area(g.geom::geography), 0) END, 0) AS weight
            FROM (SELECT DISTINCT p.zone_id FROM zone_pieces p, g WHERE ST_Intersects(p.geom, g.geom)) hit
            -- Each zone by its key: fenced (OFFSET 0) so that a generic plan made while the table was small
            -- cannot hash the whole zones table for every report.
            CROSS JOIN LATERAL (SELECT * FROM zones z WHERE z.id = hit.zone_id OFFSET 0) z
            JOIN zone_layers l ON l.id = z.layer_id, g
        ) touching WHERE weight > 0
    )
"""
_MATCH_SQL = text("WITH " + MATCH_CTE + " SELECT id, layer, code, name, weight FROM m ORDER BY layer, code")


def match_zones(session: Session, *, geometry: BaseGeometry, min_weight: float = 0.0) -> list[ZoneMatch]:
    """Every zone, in every layer, that the geometry touches, with its area weight."""
    rows = session.execute(_MATCH_SQL, {"wkt": geometry.wkt}).all()
    out = [ZoneMatch(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]
    return [m for m in out if m.weight > min_weight or m.weight == 1.0]
