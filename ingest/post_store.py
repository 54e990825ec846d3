"""The post pipeline's database work: a few statements per batch, never one round trip per post.

Observations go in by one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING (binary array
parameters); zone weights are computed in the process (geo.zone_match); zone links and signals go in
by COPY. Everything runs in the caller's transaction, which commits.

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
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.geotag import Geotag
from geo.matching import ZoneMatch
from geo import zone_match

POINT_RADIUS_M = 300.0
SOURCE = "post"

_EXISTING = text("SELECT external_id, id FROM observations WHERE source = 'post' AND external_id = ANY(:ids)")

_RECENT = text(
    """
    SELECT text_fingerprint, id, observed_at FROM observations
    WHERE text_fingerprint = ANY(:fps) AND observed_at >= :since AND observed_at <= :until
    """
)

# Column arrays go over as binary parameters: psycopg's text format escapes every element of every array
# in Python (a second per 10,000 posts); binary arrays are packed as they are.
_INSERT = """
    INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at,
                              received_at, geom, uncertainty_m, geotag_method, raw, text_fingerprint)
    SELECT 'post', u.external_id, u.author_hash, u.text, u.category, u.confidence, u.observed_at, %(now)b,
           ST_GeomFromWKB(u.wkb, 4326), u.uncertainty_m, u.geotag_method, CAST(u.raw AS jsonb), u.text_fingerprint
    FROM unnest(CAST(%(external_id)b AS text[]), CAST(%(author_hash)b AS text[]), CAST(%(text)b AS text[]),
                CAST(%(category)b AS text[]), CAST(%(confidence)b AS float8[]),
                CAST(%(observed_at)b AS timestamptz[]), CAST(%(wkb)b AS bytea[]), CAST(%(uncertainty_m)b AS float8[]),
                CAST(%(geotag_method)b AS text[]), CAST(%(raw)b AS text[]), CAST(%(text_fingerprint)b AS text[]))
         AS u(external_id, author_hash, text, category, confidence, observed_at, wkb, uncertainty_m,
              geotag_method, raw, text_fingerprint)
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING external_id, id
"""

_COPY_LINKS = "COPY observation_zones (observation_id, zone_id, weight) FROM STDIN (FORMAT BINARY)"
_COPY_SIGNALS = ("COPY signals (observation_id, zone_id, source, category, confidence, weight, author_key, "
                 "observed_at) FROM STDIN (FORMAT BINARY)")
_SIGNAL_TYPES = ["int8", "int4", "varchar", "varchar", "float8", "float8", "text", "timestamptz"]
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_LINK_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("obs", ">i8"), ("l2", ">i4"), ("zone", ">i4"),
                      ("l3", ">i4"), ("weight", ">f8")])

# Locations whose WKB is at least this long (gazetteer neighbourhoods, ZIPs, boroughs) are matched once per
# process and zones state (geo.zone_match.cached_area_weights); pipeline stores their centre instead.
LARGE_AREA_WKB_BYTES = 1_000


class SignalRow(NamedTuple):
    """What a counted observation's signals carry besides (observation, zone, weight)."""

    category: str
    confidence: float
    author_key: str | None
    observed_at: datetime


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


def _driver(session: Session):
    """The psycopg connection under the session, inside the session's transaction."""
    return session.connection().connection.driver_connection


def insert_observations(session: Session, *, columns: dict[str, list], now: datetime) -> dict[str, int]:
    """Insert new post observations; returns {external_id: id} for the rows this call inserted
    (a row already stored, or stored by a concurrent batch first, is left out: a duplicate)."""
    if not columns["external_id"]:
        return {}
    with _driver(session).cursor() as cur:
        cur.execute(_INSERT, {**columns, "now": now})
        return dict(cur.fetchall())


def _locate(located: Sequence[tuple[int, Geotag]], zs: zone_match.ZoneSet) -> tuple[np.ndarray, tuple]:
    """Each observation's distinct location (an index), and the zone weights of those locations as
    parallel arrays (location index, zone id, weight)."""
    geoms = np.array([tag.geometry for _, tag in located], dtype=object)
    uncertainty = np.array([tag.uncertainty_m for _, tag in located], dtype=np.float64)
    circle = (shapely.get_type_id(geoms) == 0) & (uncertainty > POINT_RADIUS_M)
    radii = [u if c else None for u, c in zip(uncertainty.tolist(), circle.tolist())]  # None: not a circle
    wkbs = shapely.to_wkb(geoms).tolist()
    distinct: dict[tuple[bytes, float | None], int] = {}
    first: list[int] = []  # position of each distinct location's first observation
    gidx = np.empty(len(located), dtype=np.int64)
    for k, key in enumerate(zip(wkbs, radii)):
        gi = distinct.get(key)
        if gi is None:
            gi = distinct[key] = len(first)
            first.append(k)
        gidx[k] = gi
    first_arr = np.array(first, dtype=np.int64)
    shapes = geoms[first_arr]
    is_circle = circle[first_arr]
    is_large = ~is_circle & (np.array([len(wkbs[k]) for k in first]) >= LARGE_AREA_WKB_BYTES)
    if is_circle.any():
        centres = shapely.get_coordinates(shapes[is_circle])
        shapes[is_circle] = zone_match.geodesic_circles(centres[:, 0], centres[:, 1], uncertainty[first_arr][is_circle])
    here = np.flatnonzero(~is_large)
    g, zone, weight = zone_match.weights(zs, shapes[here])
    g = here[g]
    if is_large.any():
        large_gi = np.flatnonzero(is_large)
        digests = [hashlib.blake2b(wkbs[first[gi]], digest_size=16).digest() for gi in large_gi.tolist()]
        known = zone_match.cached_area_weights(zs, dict(zip(digests, shapes[large_gi])))
        extra = [(gi, z, w) for gi, d in zip(large_gi.tolist(), digests) for z, w in known[d]]
        if extra:
            eg, ez, ew = (np.array(c) for c in zip(*extra))
            g, zone, weight = np.concatenate([g, eg]), np.concatenate([zone, ez]), np.concatenate([weight, ew])
    return gidx, (g, zone, weight)


def _expand(gidx: np.ndarray, matches: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per observation (by position), every match of its location: (position, zone id, weight)."""
    g, zone, weight = matches
    order = np.argsort(g, kind="stable")
    g, zone, weight = g[order], zone[order], weight[order]
    starts = np.searchsorted(g, gidx, "left")
    counts = np.searchsorted(g, gidx, "right") - starts
    pos = np.repeat(np.arange(len(gidx)), counts)
    rows = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(starts, counts)
    return pos, zone[rows], weight[rows]


def _copy_links(cur, obs: np.ndarray, zone: np.ndarray, weight: np.ndarray) -> None:
    """COPY (observation, zone, weight) rows in binary, packed by numpy rather than row by row."""
    rows = np.empty(len(obs), dtype=_LINK_ROW)
    rows["n"], rows["l1"], rows["l2"], rows["l3"] = 3, 8, 4, 8
    rows["obs"], rows["zone"], rows["weight"] = obs, zone, weight
    with cur.copy(_COPY_LINKS) as copy:
        copy.write(_PGCOPY_HEADER + rows.tobytes() + b"\xff\xff")


def match_and_signal(
    session: Session,
    *,
    located: Sequence[tuple[int, Geotag]],
    counted: Mapping[int, SignalRow],
    layers: Sequence[str],
    min_weight: float,
) -> dict[int, list[ZoneMatch]]:
    """Link located observations to zones and write signals for the counted ones (ids -> what their
    signals carry). Zone weights are computed in the process (geo.zone_match); the rows go in by COPY.

    Returns, for counted observations, their matches in `layers` with weight >= min_weight: what the
    rules need (everything else is in the tables)."""
    if not located:
        return {}
    zs = zone_match.zone_set(session)
    gidx, matches = _locate(located, zs)
    pos, zone, weight = _expand(gidx, matches)
    ids = np.fromiter((oid for oid, _ in located), dtype=np.int64, count=len(located))
    is_counted = np.fromiter((oid in counted for oid, _ in located), dtype=bool, count=len(located))
    obs = ids[pos]
    sig = np.flatnonzero(is_counted[pos])
    with _driver(session).cursor() as cur:
        if len(obs):
            _copy_links(cur, obs, zone, weight)
        if len(sig):
            with cur.copy(_COPY_SIGNALS) as copy:
                copy.set_types(_SIGNAL_TYPES)
                for oid, zid, w in zip(obs[sig].tolist(), zone[sig].tolist(), weight[sig].tolist()):
                    s = counted[oid]
                    copy.write_row((oid, zid, SOURCE, s.category, s.confidence, w, s.author_key, s.observed_at))
    wanted = set(layers)
    out: dict[int, list[ZoneMatch]] = defaultdict(list)
    for oid, zid, w in zip(obs[sig].tolist(), zone[sig].tolist(), weight[sig].tolist()):
        layer, code, name = zs.info[zid]
        if layer in wanted and w >= min_weight:
            out[oid].append(ZoneMatch(zid, layer, code, name, w))
    return out


def purge_posts(session: Session, *, received_before: datetime) -> int:
    """Delete posts received before the cutoff (their zone links, signals and alert evidence cascade)."""
    return session.execute(
        text("DELETE FROM observations WHERE source = :source AND received_at < :before"),
        {"source": SOURCE, "before": received_before},
    ).rowcount
