"""Gather what a CAP message needs about one alert, with its zone simplified to CAP's point limit."""

import json

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts.cap import MAX_POLYGON_POINTS, CapAlert
from alerts.errors import UnknownAlert

# Tried in order, in metres, per polygon part: the first that leaves <= 100 points wins, so small
# zones keep their exact outline and only large, detailed ones lose detail.
TOLERANCES_M = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)

_ALERT = text(
    """
    SELECT a.id, a.rule, a.category, a.severity, a.state, a.evidence_count, a.distinct_authors,
           a.opened_at, a.expires_at, a.zone_id, l.name, z.code, z.name
    FROM alerts a JOIN zones z ON z.id = a.zone_id JOIN zone_layers l ON l.id = z.layer_id
    WHERE a.id = :alert_id
    """
)

_VERSIONS = text("SELECT at FROM alert_history WHERE alert_id = :alert_id ORDER BY at, id")

_SOURCES = text(
    """
    SELECT DISTINCT s.source
    FROM alert_evidence e JOIN signals s ON s.observation_id = e.observation_id AND s.zone_id = :zone_id
    WHERE e.alert_id = :alert_id
    """
)

# Exterior rings only (CAP polygons have no holes), simplified in the zone's UTM zone so the
# tolerance is in metres, then returned in EPSG:4326.
_POLYGONS = text(
    """
    WITH zone AS (
        SELECT geom,
               CASE WHEN ST_Y(ST_Centroid(geom)) >= 0 THEN 32600 ELSE 32700 END
                 + LEAST(60, floor((ST_X(ST_Centroid(geom)) + 180) / 6)::int + 1) AS utm
        FROM zones WHERE id = :zone_id
    ), parts AS (
        SELECT (d).path[1] AS part, ST_Transform(ST_MakePolygon(ST_ExteriorRing((d).geom)), utm) AS g, utm
        FROM (SELECT ST_Dump(geom) AS d, utm FROM zone) dumped
    )
    SELECT p.part, ST_AsGeoJSON(ST_Transform(coalesce(best.g, ST_Envelope(p.g)), 4326), 7)
    FROM parts p
    LEFT JOIN LATERAL (
        SELECT ST_SimplifyPreserveTopology(p.g, u.t) AS g
        FROM unnest(CAST(:tolerances AS float8[])) WITH ORDINALITY AS u(t, i)
        WHERE ST_NPoints(ST_SimplifyPreserveTopology(p.g, u.t)) <= :max_points
        ORDER BY u.i LIMIT 1
    ) best ON true
    ORDER BY p.part
    """
)


def zone_polygons(session: Session, *, zone_id: int,
                  max_points: int = MAX_POLYGON_POINTS) -> tuple[tuple[tuple[float, float], ...], ...]:
    """The zone's polygon parts as exterior rings of (lon, lat), each with at most `max_points` points."""
    rows = session.execute(_POLYGONS, {"zone_id": zone_id, "tolerances": list(TOLERANCES_M),
                                       "max_points": max_points}).all()
    rings = []
    for _, geojson in rows:
        exterior = json.loads(geojson)["coordinates"][0]
        rings.append(tuple((float(lon), float(lat)) for lon, lat in exterior))
    return tuple(rings)


def load_cap_alert(session: Session, *, alert_id: int, web_base: str | None = None) -> CapAlert:
    """The CAP view of an alert (raises UnknownAlert)."""
    row = session.execute(_ALERT, {"alert_id": alert_id}).first()
    if row is None:
        raise UnknownAlert(f"alert {alert_id} does not exist", alert_id=alert_id)
    (aid, rule, category, severity, state, evidence_count, distinct_authors, opened_at, expires_at,
     zone_id, layer, code, zone_name) = row
    versions = tuple(session.execute(_VERSIONS, {"alert_id": aid}).scalars()) or (opened_at,)
    sources = frozenset(session.execute(_SOURCES, {"alert_id": aid, "zone_id": zone_id}).scalars())
    return CapAlert(
        alert_id=aid, rule=rule, category=category, severity=severity, state=state,
        evidence_count=evidence_count, distinct_authors=distinct_authors, sources=sources,
        opened_at=opened_at, expires_at=expires_at, zone_layer=layer, zone_code=code, zone_name=zone_name,
        polygons=zone_polygons(session, zone_id=zone_id), versions=versions,
        web=f"{web_base.rstrip('/')}/a/{aid}" if web_base else None,
    )
