"""Zone layers: upsert from records, list as GeoJSON."""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db.errors import Conflict
from geo.errors import UnknownZone
from geo.models import ZoneLayer
from geo.zones import ZoneRecord


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int


ANALYZE_AFTER = 200  # zones written by one load before it refreshes the planner's statistics

# Zones are written UPSERT_CHUNK at a time, one statement each (geometries as WKB): a round trip per zone
# was most of a large layer's load. The zone_pieces triggers (migration 0018) cut each statement's zones
# in one go.
UPSERT_CHUNK = 500
_UPSERT = """
    INSERT INTO zones (layer_id, code, name, properties, geom, area_m2, updated_at)
    SELECT :layer_id, t.code, t.name, CAST(t.properties AS jsonb), ST_Multi(g.geom),
           ST_Area(g.geom::geography), now()
    FROM unnest(CAST(:code AS text[]), CAST(:name AS text[]), CAST(:properties AS text[]), CAST(:wkb AS bytea[]))
         AS t(code, name, properties, wkb),
         LATERAL (SELECT ST_GeomFromWKB(t.wkb, 4326) AS geom) g
    ON CONFLICT (layer_id, code) DO UPDATE
      SET name = EXCLUDED.name, properties = EXCLUDED.properties, geom = EXCLUDED.geom,
          area_m2 = EXCLUDED.area_m2, updated_at = now()
    RETURNING (xmax = 0) AS inserted
"""


def ensure_layer(session: Session, *, name: str, description: str = "") -> ZoneLayer:
    layer = session.scalar(select(ZoneLayer).where(ZoneLayer.name == name))
    if layer is None:
        layer = ZoneLayer(name=name, description=description)
        session.add(layer)
        session.flush()
    elif description and layer.description != description:
        layer.description = description
    return layer


def upsert_zones(
    session: Session,
    *,
    layer: str,
    records: Iterable[ZoneRecord],
    description: str = "",
    progress: Callable[[int], None] | None = None,
) -> UpsertCounts:
    """Insert or update zones by (layer, code)."""
    import shapely

    from db import raw

    layer_row = ensure_layer(session, name=layer, description=description)
    inserted = updated = 0
    records = list(records)
    for start in range(0, len(records), UPSERT_CHUNK):
        chunk = records[start:start + UPSERT_CHUNK]
        rows = raw.execute(session, _UPSERT, {
            "layer_id": layer_row.id, "code": [r.code for r in chunk], "name": [r.name for r in chunk],
            "properties": [json.dumps(r.properties, default=str) for r in chunk],
            "wkb": list(shapely.to_wkb([r.geometry for r in chunk])),
        }).fetchall()
        n_inserted = sum(1 for r in rows if r.inserted)
        inserted += n_inserted
        updated += len(rows) - n_inserted
        if progress:
            progress(len(chunk))
    if inserted + updated >= ANALYZE_AFTER:
        # Statistics now, not when autovacuum next looks (up to a minute): until then the planner takes the
        # layer for a handful of zones, and the report path's zone look-ups scan the whole layer. The pieces
        # too: reports find their zones through them (geo.match_postgis), and a generic plan made while they
        # were few walked every piece. New statistics make PostgreSQL plan such statements again.
        session.execute(text("ANALYZE zones, zone_pieces"))
    return UpsertCounts(inserted, updated)


def delete_layer(session: Session, *, layer: str) -> int:
    """Delete a zone layer with its zones (their pieces, baselines and responders' coverage go with them);
    the number of zones deleted. A layer with alerts in its zones stays: alert history is a record, and
    the database refuses (Conflict). Signals and zone links of old evidence keep their zone ids, which no
    zone has any more; nothing reads them by those."""
    from sqlalchemy.exc import IntegrityError

    layer_row = session.scalar(select(ZoneLayer).where(ZoneLayer.name == layer))
    if layer_row is None:
        raise UnknownZone(f"zone layer {layer!r} is not loaded", layer=layer)
    zones = session.execute(text("SELECT count(*) FROM zones WHERE layer_id = :id"), {"id": layer_row.id}).scalar_one()
    try:
        with session.begin_nested():
            session.execute(text("DELETE FROM zone_layers WHERE id = :id"), {"id": layer_row.id})
    except IntegrityError:
        raise Conflict(f"zone layer {layer!r} has alerts in its zones, and alert history is kept: it cannot be "
                       "deleted", layer=layer) from None
    session.expunge(layer_row)
    return zones


def list_layers(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT l.name, l.description, count(z.id) FROM zone_layers l "
            "LEFT JOIN zones z ON z.layer_id = l.id GROUP BY l.id ORDER BY l.name"
        )
    ).all()
    return [{"name": r[0], "description": r[1], "zones": r[2]} for r in rows]


def zones_geojson(session: Session, *, layer: str, simplify_m: float = 0.0) -> str:
    """A FeatureCollection of one layer's zones (lon/lat) as JSON text, optionally simplified for display.

    PostgreSQL builds the JSON: serialising every coordinate in Python costs seconds for the 262 NTAs.
    """
    layer_row = session.scalar(select(ZoneLayer).where(ZoneLayer.name == layer))
    if layer_row is None:
        raise UnknownZone(f"zone layer {layer!r} is not loaded", layer=layer)
    # Simplify in a metric CRS (3857 is fine for a tolerance at city scale), never in degrees.
    return session.execute(
        text(
            """
            SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
                json_build_object(
                    'type', 'Feature',
                    'id', :layer || '/' || z.code,
                    'geometry', ST_AsGeoJSON(CASE WHEN :tol > 0
                        THEN ST_Transform(ST_SimplifyPreserveTopology(ST_Transform(z.geom, 3857), :tol), 4326)
                        ELSE z.geom END, 6)::json,
                    'properties', json_build_object('layer', :layer, 'code', z.code, 'name', z.name))
                ORDER BY z.code), '[]'::json))::text
            FROM zones z WHERE z.layer_id = :layer_id
            """
        ),
        {"layer_id": layer_row.id, "tol": simplify_m, "layer": layer},
    ).scalar_one()


def zone_outlines(session: Session, zones: list[tuple[str, str]], *, simplify_m: float = 20.0
                  ) -> dict[tuple[str, str], dict[str, Any]]:
    """GeoJSON geometries of zones by (layer, code), simplified by `simplify_m` metres for display."""
    if not zones:
        return {}
    rows = session.execute(text(
        """
        SELECT l.name, z.code, ST_AsGeoJSON(ST_Transform(ST_SimplifyPreserveTopology(ST_Transform(z.geom, 3857),
                                                                                    :tol), 4326), 6)
        FROM zones z JOIN zone_layers l ON l.id = z.layer_id
        JOIN unnest(CAST(:layers AS text[]), CAST(:codes AS text[])) AS w(layer, code)
          ON w.layer = l.name AND w.code = z.code
        """), {"layers": [z[0] for z in zones], "codes": [z[1] for z in zones], "tol": simplify_m}).all()
    return {(r[0], r[1]): json.loads(r[2]) for r in rows}
