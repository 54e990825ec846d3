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


# A polygon's weight per zone is the share of its area inside that zone, on the spheroid.
_MATCH_SQL = text(
    """
    WITH g AS (SELECT ST_GeomFromText(:wkt, 4326) AS geom)
    SELECT z.id, l.name, z.code, z.name,
           CASE WHEN GeometryType(g.geom) IN ('POINT', 'MULTIPOINT') THEN 1.0
                ELSE ST_Area(ST_Intersection(z.geom, g.geom)::geography)
                     / NULLIF(ST_Area(g.geom::geography), 0) END AS weight
    FROM zones z JOIN zone_layers l ON l.id = z.layer_id, g
    WHERE ST_Intersects(z.geom, g.geom)
    ORDER BY l.name, z.code
    """
)


def match_zones(session: Session, *, geometry: BaseGeometry, min_weight: float = 0.0) -> list[ZoneMatch]:
    """Every zone, in every layer, that the geometry touches, with its area weight."""
    rows = session.execute(_MATCH_SQL, {"wkt": geometry.wkt}).all()
    out = [ZoneMatch(r[0], r[1], r[2], r[3], float(r[4] or 0.0)) for r in rows]
    return [m for m in out if m.weight > min_weight or m.weight == 1.0]
