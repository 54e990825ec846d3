"""Read observations for the map: GeoJSON features with age, uncertainty, and post text or report details."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from accounts.agencies import EVERYTHING, Coverage
from db.errors import InvalidInput

MAX_LIMIT = 10_000
MAX_IDS = 1_000
# Report fields the control room sees; raw holds the submitted body of that report version.
REPORT_FIELDS = ("external_id", "status", "customers_affected", "cause", "description", "started_at",
                 "estimated_restore_at", "address", "zip")

# (colons escaped: SQLAlchemy text() would read ":MI" as a bind parameter)
_UTC_ISO = "YYYY-MM-DD\"T\"HH24\\:MI\\:SS.US\"Z\""
_REPORT_JSON = ", ".join(f"'{k}', o.raw->'properties'->'{k}'" for k in REPORT_FIELDS)

# Each row's GeoJSON Feature is built by PostgreSQL: thousands of features without a Python object each.
_SELECT = f"""
    SELECT o.id, json_build_object(
        'type', 'Feature', 'id', o.id, 'geometry', ST_AsGeoJSON(o.geom, 6)::json,
        'properties', json_build_object(
            'id', o.id, 'event_id', 'obs:' || o.id, 'source', o.source, 'category', o.category,
            'confidence', round(o.confidence::numeric, 3),
            'observed_at', to_char(o.observed_at AT TIME ZONE 'UTC', '{_UTC_ISO}'),
            'received_at', to_char(o.received_at AT TIME ZONE 'UTC', '{_UTC_ISO}'),
            'age_s', round(greatest(0, extract(epoch FROM (:now - o.observed_at)))::numeric, 1),
            'uncertainty_m', round(o.uncertainty_m::numeric, 1), 'geotag_method', o.geotag_method,
            -- Post text is public; a report's description is in its details instead.
            'text', CASE WHEN o.source = 'utility_report' THEN NULL ELSE o.text END,
            'report', CASE WHEN o.source = 'utility_report' THEN
                jsonb_strip_nulls(jsonb_build_object({_REPORT_JSON})) || jsonb_build_object('utility', u.name) END
        ))::text
    FROM observations o
    LEFT JOIN utilities u ON o.source = 'utility_report' AND o.author_hash = 'utility:' || u.id::text
    WHERE o.geom IS NOT NULL
"""


# An observation lies in an agency's zone when the zone's polygon intersects its location (the zone tables
# index geom; this runs only for callers whose agencies list zones).
_ZONE_TEST = (
    "EXISTS (SELECT 1 FROM zones cz JOIN zone_layers cl ON cl.id = cz.layer_id "
    "WHERE cz.geom && o.geom AND ST_Intersects(cz.geom, o.geom) "
    "AND {zones} @> jsonb_build_array(jsonb_build_object('layer', cl.name, 'code', cz.code)))"
)


def coverage_filter(coverage: Coverage) -> tuple[str, dict[str, Any]]:
    """WHERE fragment (alias o for observations) and parameters: the observations `coverage` lets its caller
    see, by category and by the zones they lie in."""
    return coverage.sql(category="o.category", zone_test=_ZONE_TEST)


_SCOPES = text(
    """
    SELECT o.id, o.category, coalesce((
        SELECT array_agg(cl.name || chr(31) || cz.code) FROM zones cz JOIN zone_layers cl ON cl.id = cz.layer_id
        WHERE cl.name = ANY(:layers) AND o.geom IS NOT NULL AND cz.geom && o.geom AND ST_Intersects(cz.geom, o.geom)
    ), '{}')
    FROM observations o WHERE o.id = ANY(:ids)
    """
)


def scopes(session: Session, *, ids: Sequence[int], layers: Sequence[str]) -> dict[int, tuple[str, frozenset]]:
    """Each observation's category and the (layer, code) zones of `layers` it lies in (the live feed filters
    each socket's messages by them)."""
    out = {}
    for obs_id, category, zones in session.execute(_SCOPES, {"ids": list(ids), "layers": list(layers)}):
        out[int(obs_id)] = (category, frozenset(tuple(z.split(chr(31), 1)) for z in zones))
    return out


def parse_ids(value: str) -> list[int]:
    """'12,15' -> [12, 15]; at most MAX_IDS, else InvalidInput quoting the bad part."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    bad = next((p for p in parts if not p.isdigit()), None)
    if bad is not None:
        raise InvalidInput(f"ids item {bad!r} is not an observation id (a positive integer)", field="ids")
    if len(parts) > MAX_IDS:
        raise InvalidInput(f"ids has {len(parts)} items; at most {MAX_IDS} at once", field="ids")
    return [int(p) for p in parts]


def observation_features_json(
    session: Session,
    *,
    now: datetime,
    bbox: tuple[float, float, float, float] | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
    ids: Sequence[int] | None = None,
    limit: int = 2_000,
    coverage: Coverage = EVERYTHING,
) -> list[tuple[int, str]]:
    """(id, serialised GeoJSON feature) of located observations, newest first (by id), at most `limit`.

    `bbox` is (west, south, east, north) in EPSG:4326; `since` compares with observed_at; `after_id`
    keeps ids greater than it (the live feed's cursor); `ids` picks rows by id; `coverage` keeps what the
    caller's agencies cover.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit {limit} is not between 1 and {MAX_LIMIT}", field="limit")
    if since is not None and since.tzinfo is None:
        raise InvalidInput(f"since {since.isoformat()} has no timezone offset; add Z or +00:00", field="since")
    sql = _SELECT
    params: dict[str, Any] = {"limit": limit, "now": now}
    if bbox is not None:
        sql += " AND o.geom && ST_MakeEnvelope(:west, :south, :east, :north, 4326)"
        params.update(dict(zip(("west", "south", "east", "north"), bbox)))
    if since is not None:
        sql += " AND o.observed_at >= :since"
        params["since"] = since
    if after_id is not None:
        sql += " AND o.id > :after_id"
        params["after_id"] = after_id
    if ids is not None:
        sql += " AND o.id = ANY(:ids)"
        params["ids"] = list(ids)
    if not coverage.everything:
        visible, visible_params = coverage_filter(coverage)
        sql += f" AND {visible}"
        params.update(visible_params)
    sql += " ORDER BY o.id DESC LIMIT :limit"
    return [(int(obs_id), feature) for obs_id, feature in session.execute(text(sql), params).all()]
