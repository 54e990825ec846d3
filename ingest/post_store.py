"""Set-based SQL for the post pipeline: a few statements per batch, never one round trip per post.

Zone matching of uncertain locations (docs/architecture.md, "Zone weights for posts"):
- a point whose uncertainty is at most POINT_RADIUS_M (coordinates, a station, an intersection)
  matches the zone that contains it, with weight 1;
- a point with a larger uncertainty (a neighbourhood known only by its centre) is matched as the
  circle of that radius, measured on the spheroid;
- a polygon (a tagged place, a neighbourhood or ZIP named in the text) matches every zone it touches,
  with weight = the share of its area inside that zone (1 when the zone covers it).
Rules only count a signal in a zone when its weight reaches the rule's min_zone_weight (default 0.5),
so a borough-wide guess never counts toward a neighbourhood's threshold.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.geotag import Geotag
from geo.matching import ZoneMatch

POINT_RADIUS_M = 300.0
SOURCE = "post"

_EXISTING = text("SELECT external_id, id FROM observations WHERE source = 'post' AND external_id = ANY(:ids)")

_RECENT = text(
    """
    SELECT text_fingerprint, id, observed_at FROM observations
    WHERE text_fingerprint = ANY(:fps) AND observed_at >= :since AND observed_at <= :until
    """
)

_INSERT = text(
    """
    INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at,
                              received_at, geom, uncertainty_m, geotag_method, raw, text_fingerprint)
    SELECT 'post', u.external_id, u.author_hash, u.text, u.category, u.confidence, u.observed_at, :now,
           ST_GeomFromWKB(u.wkb, 4326), u.uncertainty_m, u.geotag_method, CAST(u.raw AS jsonb), u.text_fingerprint
    FROM unnest(CAST(:external_id AS text[]), CAST(:author_hash AS text[]), CAST(:text AS text[]),
                CAST(:category AS text[]), CAST(:confidence AS float8[]), CAST(:observed_at AS timestamptz[]),
                CAST(:wkb AS bytea[]), CAST(:uncertainty_m AS float8[]), CAST(:geotag_method AS text[]),
                CAST(:raw AS text[]), CAST(:text_fingerprint AS text[]))
         AS u(external_id, author_hash, text, category, confidence, observed_at, wkb, uncertainty_m,
              geotag_method, raw, text_fingerprint)
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING external_id, id
    """
)

# Distinct locations of the batch are matched once each, against `zone_pieces` (zones cut into pieces of
# at most 128 vertices, migration 0003): a point tests a few small pieces instead of whole neighbourhood
# outlines, and an area (cut up the same way) sums its share of a zone over the pieces. Shares are ratios
# of areas in lon/lat degrees: at city scale they differ from spheroidal ratios by far less than 0.1%.
_LOCATIONS = """
    g AS MATERIALIZED (
        SELECT t.gi, CASE WHEN t.r IS NULL THEN ST_GeomFromWKB(t.w, 4326)
                          ELSE ST_Buffer(ST_GeomFromWKB(t.w, 4326)::geography, t.r)::geometry END AS g
        FROM unnest(CAST(:wkbs AS bytea[]), CAST(:radii AS float8[])) WITH ORDINALITY AS t(w, r, gi)
    ), ga AS MATERIALIZED (
        SELECT gi, g, CASE WHEN ST_Dimension(g) < 2 THEN 0 ELSE ST_Area(g) END AS area FROM g WHERE g IS NOT NULL
    ), area_pieces AS MATERIALIZED (
        SELECT gi, area, ST_Subdivide(g, 128) AS g FROM ga WHERE area > 0
    ), per_piece AS MATERIALIZED (
        -- Shortcuts for a zone piece holding the location piece and for a zone piece inside it;
        -- materialised so that geometries never reach a sort.
        SELECT a.gi, p.zone_id, a.area,
               CASE WHEN ST_Covers(p.geom, a.g) THEN ST_Area(a.g)
                    WHEN ST_Covers(a.g, p.geom) THEN ST_Area(p.geom)
                    ELSE ST_Area(ST_Intersection(p.geom, a.g)) END AS inside
        FROM area_pieces a JOIN zone_pieces p ON ST_Intersects(p.geom, a.g)
    ), gm AS MATERIALIZED (
        SELECT gi, zone_id, least(1.0, sum(inside) / area) AS weight FROM per_piece GROUP BY gi, zone_id, area
        UNION ALL
        SELECT DISTINCT ga.gi, p.zone_id, 1.0 FROM ga JOIN zone_pieces p ON ST_Intersects(p.geom, ga.g)
        WHERE ga.area = 0
        UNION ALL
        SELECT * FROM unnest(CAST(:known_gi AS bigint[]), CAST(:known_zone AS integer[]),
                             CAST(:known_weight AS float8[]))
    )
"""

_WEIGHTS = text("WITH " + _LOCATIONS + " SELECT gi, zone_id, weight FROM gm WHERE weight > 0")

_MATCH = text(
    "WITH " + _LOCATIONS + """
    , kept AS MATERIALIZED (
        SELECT o.id AS observation_id, gm.zone_id, gm.weight, o.counted
        FROM unnest(CAST(:ids AS bigint[]), CAST(:gidx AS bigint[]), CAST(:counted AS boolean[])) AS o(id, gi, counted)
        JOIN gm ON gm.gi = o.gi
        WHERE gm.weight > 0
    ), links AS (
        INSERT INTO observation_zones (observation_id, zone_id, weight)
        SELECT observation_id, zone_id, weight FROM kept
    ), sig AS (
        INSERT INTO signals (observation_id, zone_id, source, category, confidence, weight, author_key, observed_at)
        SELECT k.observation_id, k.zone_id, 'post', ob.category, ob.confidence, k.weight, ob.author_hash,
               ob.observed_at
        FROM kept k JOIN observations ob ON ob.id = k.observation_id
        WHERE k.counted
    )
    SELECT k.observation_id, z.id, l.name, z.code, z.name, k.weight
    FROM kept k JOIN zones z ON z.id = k.zone_id JOIN zone_layers l ON l.id = z.layer_id
    WHERE k.counted AND l.name = ANY(:layers) AND k.weight >= :min_weight
    """
)

_ZONES_STAMP = text("SELECT count(*), coalesce(max(id), 0), max(updated_at) FROM zones")

# Zone weights of large areas (gazetteer neighbourhoods, ZIPs, boroughs named in posts), per process:
# the same few hundred outlines come back in every batch and cost far more than points to match.
# Keyed by the database and the zones' state, so a zone load invalidates it.
LARGE_AREA_WKB_BYTES = 1_000
_area_lock = threading.Lock()
_area_cache: dict[tuple, dict[bytes, list[tuple[int, float]]]] = {}
_AREA_CACHE_MAX = 20_000


def _area_weights(session: Session, large: dict[bytes, bytes]) -> dict[bytes, list[tuple[int, float]]]:
    """Zone weights for large areas {digest: wkb}, from the cache or computed in one statement."""
    key = (session.get_bind().url.render_as_string(hide_password=True), tuple(session.execute(_ZONES_STAMP).one()))
    with _area_lock:
        cache = _area_cache.setdefault(key, {})
        if len(_area_cache) > 4 or len(cache) > _AREA_CACHE_MAX:  # zones changed or much churn: start over
            _area_cache.clear()
            cache = _area_cache.setdefault(key, {})
        missing = [d for d in large if d not in cache]
    if missing:
        rows = session.execute(_WEIGHTS, {"wkbs": [large[d] for d in missing], "radii": [None] * len(missing),
                                          "known_gi": [], "known_zone": [], "known_weight": []})
        found: dict[bytes, list[tuple[int, float]]] = {d: [] for d in missing}
        for gi, zone_id, weight in rows:
            found[missing[gi - 1]].append((zone_id, float(weight)))
        with _area_lock:
            cache.update(found)
    with _area_lock:
        return {d: cache.get(d) or [] for d in large}


def existing_ids(session: Session, *, external_ids: Sequence[str]) -> dict[str, int]:
    """Observation ids of posts already stored under these (prefixed) external ids."""
    if not external_ids:
        return {}
    return dict(session.execute(_EXISTING, {"ids": list(external_ids)}).all())


def recent_fingerprints(session: Session, *, fingerprints: Sequence[str], since: datetime,
                        until: datetime) -> dict[str, list[tuple[int, datetime]]]:
    """Stored posts with these text fingerprints observed in [since, until]."""
    out: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
    if fingerprints:
        for fp, oid, at in session.execute(_RECENT, {"fps": list(fingerprints), "since": since, "until": until}):
            out[fp].append((oid, at))
    return out


def insert_observations(session: Session, *, columns: dict[str, list], now: datetime) -> dict[str, int]:
    """Insert new post observations; returns {external_id: id} for the rows this call inserted."""
    if not columns["external_id"]:
        return {}
    return dict(session.execute(_INSERT, {**columns, "now": now}).all())


def match_and_signal(
    session: Session,
    *,
    located: Sequence[tuple[int, Geotag]],
    counted: set[int],
    layers: Sequence[str],
    min_weight: float,
) -> dict[int, list[ZoneMatch]]:
    """Link located observations to zones and write signals for the counted ones, in one statement.

    Returns, for counted observations, their matches in `layers` with weight >= min_weight: what the
    rules need (everything else is in the tables)."""
    if not located:
        return {}
    distinct: dict[tuple[bytes, float | None], int] = {}
    wkbs: list[bytes | None] = []
    radii: list[float | None] = []
    gidx: list[int] = []
    large: dict[int, bytes] = {}  # gi -> digest of a large area
    geoms = [tag.geometry for _, tag in located]
    for (oid, tag), wkb in zip(located, shapely.to_wkb(geoms)):
        radius = tag.uncertainty_m if tag.geometry.geom_type == "Point" and tag.uncertainty_m > POINT_RADIUS_M \
            else None
        key = (wkb, radius)
        gi = distinct.get(key)
        if gi is None:
            wkbs.append(wkb)
            radii.append(radius)
            gi = distinct[key] = len(wkbs)  # WITH ORDINALITY counts from 1
            if radius is None and len(wkb) >= LARGE_AREA_WKB_BYTES:
                large[gi] = hashlib.blake2b(wkb, digest_size=16).digest()
        gidx.append(gi)
    known_gi: list[int] = []
    known_zone: list[int] = []
    known_weight: list[float] = []
    if large:
        weights = _area_weights(session, {d: wkbs[gi - 1] for gi, d in large.items()})
        for gi, digest in large.items():
            wkbs[gi - 1] = None  # matched already: the statement takes the known weights
            for zone_id, weight in weights[digest]:
                known_gi.append(gi)
                known_zone.append(zone_id)
                known_weight.append(weight)
    rows = session.execute(_MATCH, {
        "wkbs": wkbs, "radii": radii, "ids": [oid for oid, _ in located], "gidx": gidx,
        "counted": [oid in counted for oid, _ in located], "layers": list(layers), "min_weight": min_weight,
        "known_gi": known_gi, "known_zone": known_zone, "known_weight": known_weight,
    })
    out: dict[int, list[ZoneMatch]] = defaultdict(list)
    for oid, zone_id, layer, code, name, weight in rows:
        out[oid].append(ZoneMatch(zone_id, layer, code, name, float(weight)))
    return out


def purge_posts(session: Session, *, received_before: datetime) -> int:
    """Delete posts received before the cutoff (their zone links, signals and alert evidence cascade)."""
    return session.execute(
        text("DELETE FROM observations WHERE source = :source AND received_at < :before"),
        {"source": SOURCE, "before": received_before},
    ).rowcount
