"""Zone weights of post locations, computed in the process against a cached copy of `zone_pieces`.

The rules are those of docs/architecture.md ("Public posts"): a location of dimension < 2 (a point,
a line) matches every zone it touches with weight 1; an area matches every zone it overlaps with
weight = the share of its area inside the zone (1 when a zone covers it). Shares are ratios of areas
in lon/lat degrees, exactly as PostGIS computed them before (ST_Area(ST_Intersection(...)) over the
zone's pieces); the same GEOS operations run here, vectorised with shapely 2, so a batch costs a few
tens of milliseconds instead of seconds of per-row SQL.

`ZoneSet` holds the zone pieces (migration 0003: zones cut into pieces of at most 128 vertices) in an
STRtree, their zone ids and each zone's (layer, code, name). One is kept per database and zones state
(`zone_set`): a zone load or layer change gives a new stamp and the next batch reloads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Geod
from sqlalchemy import text
from sqlalchemy.orm import Session

# Every statement that writes zones or layers rewrites the one row of zone_state (migration 0018): its
# version, and its xmin, the writing transaction (which also tells a re-created row from the old one).
_STAMP = text("SELECT coalesce((SELECT version || ':' || xmin::text FROM zone_state WHERE id = 1), 'none')")
_PIECES = text("SELECT zone_id, ST_AsBinary(geom) FROM zone_pieces ORDER BY zone_id")
_ZONES = text("SELECT z.id, l.name, z.code, z.name FROM zones z JOIN zone_layers l ON l.id = z.layer_id")

_GEOD = Geod(ellps="WGS84")
CIRCLE_SEGMENTS = 32  # as ST_Buffer's default (8 per quarter circle)
LARGE_AREA_CACHE_MAX = 20_000


@dataclass(eq=False)
class ZoneSet:
    """The zones as matched: pieces (prepared, in an STRtree), their zone ids, and zone descriptions."""

    key: tuple
    pieces: np.ndarray
    piece_zone: np.ndarray
    tree: shapely.STRtree
    info: dict[int, tuple[str, str, str]]  # zone id -> (layer, code, name)
    # Every piece's ring edges (_edges): columns edge_start[p] to edge_start[p + 1] of `edges`, for exact
    # areas of overlap with rectangles.
    edges: np.ndarray
    edge_start: np.ndarray
    # Weights of large areas (named neighbourhoods, ZIPs, boroughs) by digest of their WKB: the same
    # few hundred outlines come back in every batch and cost far more than points to match.
    area_weights: dict[bytes, list[tuple[int, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ZoneSets:
    """The zones as matched, loaded once per database and zones state, for one process's app (owned by the
    post pipeline's state, ingest.posts.state.PostState): a few databases at most (tests use several)."""

    def __init__(self, *, keep: int = 4) -> None:
        self._lock = threading.Lock()
        self._sets: dict[tuple, ZoneSet] = {}
        self._keep = keep

    def get(self, session: Session) -> ZoneSet:
        """The zones as the session's transaction sees them."""
        key = (session.get_bind().url.render_as_string(hide_password=True), tuple(session.execute(_STAMP).one()))
        with self._lock:
            found = self._sets.get(key)
        if found is not None:
            return found
        rows = session.execute(_PIECES).all()
        zs = build(key, shapely.from_wkb(np.array([bytes(r[1]) for r in rows], dtype=object)),
                   np.array([r[0] for r in rows], dtype=np.int64),
                   {zid: (layer, code, name) for zid, layer, code, name in session.execute(_ZONES)})
        with self._lock:
            if key[0] in {k[0] for k in self._sets}:  # the zones of this database changed: drop the old state
                for k in [k for k in self._sets if k[0] == key[0]]:
                    del self._sets[k]
            if len(self._sets) >= self._keep:
                self._sets.clear()
            return self._sets.setdefault(key, zs)

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()


def build(key: tuple, geoms: np.ndarray, zone_ids: np.ndarray, info: dict[int, tuple[str, str, str]]) -> ZoneSet:
    """A ZoneSet from zone pieces (polygons or multipolygons) and the zone id of each."""
    pieces, part_of = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    polygon = shapely.get_type_id(pieces) == 3
    pieces, part_of = pieces[polygon], part_of[polygon]
    shapely.prepare(pieces)
    edges, edge_start = _edges(pieces)
    return ZoneSet(key=key, pieces=pieces, piece_zone=np.asarray(zone_ids, dtype=np.int64)[part_of],
                   tree=shapely.STRtree(pieces), info=info, edges=edges, edge_start=edge_start)


def _edges(pieces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pieces' ring edges (shells counter-clockwise, holes clockwise) that are not vertical, grouped by
    piece, as rows (left x, right x, height at the left end, slope, highest y, direction: +1 rightwards);
    and each piece's first row (one more at the end)."""
    rings, ring_piece = shapely.get_rings(shapely.orient_polygons(pieces), return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    same = (coord_ring[1:] == coord_ring[:-1]) & (coords[1:, 0] != coords[:-1, 0])
    (xa, ya), (xb, yb) = coords[:-1][same].T, coords[1:][same].T
    right = xb > xa
    lo, hi = np.where(right, xa, xb), np.where(right, xb, xa)
    ylo, yhi = np.where(right, ya, yb), np.where(right, yb, ya)
    edges = np.stack([lo, hi, ylo, (yhi - ylo) / (hi - lo), np.maximum(ya, yb), np.where(right, 1.0, -1.0)])
    edge_start = np.searchsorted(ring_piece[coord_ring[:-1][same]], np.arange(len(pieces) + 1))
    return edges, edge_start


def _antiderivative(y: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """F(y) = integral from y0 to y of (clamp(t, y0, y1) - y0) dt."""
    c = np.clip(y, y0, y1) - y0
    return 0.5 * c * c + (y1 - y0) * np.maximum(y - y1, 0.0)


def rectangle_overlaps(zs: ZoneSet, piece: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """Exact area of piece[i] inside the axis-aligned rectangle rect[i] = (x0, y0, x1, y1), vectorised.

    Green's theorem over the piece's oriented edges: the area inside the rectangle is minus the sum, over
    edges, of the integral along x, within [x0, x1], of the edge's height clamped to [y0, y1], less y0.
    Edges beside the rectangle or below it add nothing and are dropped first."""
    counts = zs.edge_start[piece + 1] - zs.edge_start[piece]
    pair = np.repeat(np.arange(len(piece)), counts)
    row = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(
        zs.edge_start[piece], counts)
    lo, hi, ylo, slope, ymax, direction = zs.edges
    x0, y0, x1, y1 = (c[pair] for c in rect.T)
    keep = (hi[row] > x0) & (lo[row] < x1) & (ymax[row] > y0)
    pair, row, x0, y0, x1, y1 = pair[keep], row[keep], x0[keep], y0[keep], x1[keep], y1[keep]
    lo, ylo, slope = lo[row], ylo[row], slope[row]
    u0, u1 = np.maximum(lo, x0), np.minimum(hi[row], x1)
    v0, v1 = ylo + slope * (u0 - lo), ylo + slope * (u1 - lo)
    dy = v1 - v0
    flat = np.abs(dy) <= 1e-12 * np.maximum(1.0, np.abs(v0))
    mean = np.where(flat, np.clip(0.5 * (v0 + v1), y0, y1) - y0,
                    (_antiderivative(v1, y0, y1) - _antiderivative(v0, y0, y1)) / np.where(flat, 1.0, dy))
    return -np.bincount(pair, weights=(u1 - u0) * mean * direction[row], minlength=len(piece))


def geodesic_circles(lon: np.ndarray, lat: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
    """Polygons approximating circles on the WGS84 spheroid (vertices exactly radius_m from the centre)."""
    n = len(lon)
    if n == 0:
        return np.empty(0, dtype=object)
    az = np.linspace(0.0, 360.0, CIRCLE_SEGMENTS, endpoint=False)
    lons, lats, _ = _GEOD.fwd(np.repeat(lon, CIRCLE_SEGMENTS), np.repeat(lat, CIRCLE_SEGMENTS),
                              np.tile(az, n), np.repeat(radius_m, CIRCLE_SEGMENTS))
    ring = np.stack([lons, lats], axis=1).reshape(n, CIRCLE_SEGMENTS, 2)
    ring = np.concatenate([ring[:, ::-1], ring[:, -1:]], axis=1)  # counter-clockwise, closed
    return shapely.polygons(shapely.linearrings(ring.reshape(-1, 2), indices=np.repeat(np.arange(n),
                                                                                      CIRCLE_SEGMENTS + 1)))


def _touching(zs: ZoneSet, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(geometry index, piece index) of every piece each geometry intersects (pieces prepared)."""
    gi, pi = zs.tree.query(geoms, predicate=None)
    if len(gi):
        hit = shapely.intersects(zs.pieces[pi], geoms[gi])
        gi, pi = gi[hit], pi[hit]
    return gi, pi


def subdivide(geoms: np.ndarray, max_vertices: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Polygons cut, like ST_Subdivide, into parts of at most max_vertices (halving the longer side of
    their extent); returns (parts, index of the geometry each came from). The parts' areas add up."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    out_parts, out_owner = [], []
    for _ in range(24):
        polygon = shapely.get_type_id(parts) == 3
        parts, owner = parts[polygon], owner[polygon]
        small = shapely.get_num_coordinates(parts) <= max_vertices
        out_parts.append(parts[small])
        out_owner.append(owner[small])
        parts, owner = parts[~small], owner[~small]
        if not len(parts):
            break
        x0, y0, x1, y1 = shapely.bounds(parts).T
        wide = (x1 - x0) >= (y1 - y0)
        xm, ym = np.where(wide, 0.5 * (x0 + x1), x1), np.where(wide, y1, 0.5 * (y0 + y1))
        halves = np.concatenate([shapely.box(x0, y0, xm, ym),
                                 shapely.box(np.where(wide, xm, x0), np.where(wide, y0, ym), x1, y1)])
        parts, index = shapely.get_parts(shapely.intersection(np.concatenate([parts, parts]), halves),
                                         return_index=True)
        owner = np.concatenate([owner, owner])[index]
    out_parts.append(parts)
    out_owner.append(owner)
    return np.concatenate(out_parts), np.concatenate(out_owner)


def _rectangles(geoms: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Which geometries are axis-aligned rectangles (a 4-vertex polygon with the area of its extent)."""
    x0, y0, x1, y1 = shapely.bounds(geoms).T
    return (shapely.get_type_id(geoms) == 3) & (shapely.get_num_coordinates(geoms) == 5) & np.isclose(
        (x1 - x0) * (y1 - y0), area, rtol=1e-12, atol=0.0)


def _area_inside(zs: ZoneSet, geoms: np.ndarray, area: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(geometry index, piece index, area of the geometry inside the piece) for areas and the pieces near
    them (zero where they do not overlap)."""
    rect = _rectangles(geoms, area)
    # Rectangles (a tagged place's bbox): exact overlaps from the pieces' edges, no GEOS overlay at all.
    idx = np.flatnonzero(rect)
    rg, rp = zs.tree.query(geoms[idx], predicate=None)
    rg = idx[rg]
    inside_r = rectangle_overlaps(zs, rp, shapely.bounds(geoms[rg])) if len(rg) else np.empty(0)
    # Other areas (circles, outlines), cut into parts no larger than the pieces.
    idx = np.flatnonzero(~rect)
    parts, owner = subdivide(geoms[idx])
    shapely.prepare(parts)
    gi, pi = _touching(zs, parts)
    pieces, locs = zs.pieces[pi], parts[gi]
    # A piece holding the whole part, or a part holding the whole piece, needs no intersection.
    inside = np.where(shapely.covers(pieces, locs), shapely.area(locs), np.nan)
    todo = np.flatnonzero(np.isnan(inside))
    if len(todo):
        within = shapely.covers(locs[todo], pieces[todo])
        inside[todo] = np.where(within, shapely.area(pieces[todo]), np.nan)
        cut = todo[~within]
        inside[cut] = shapely.area(shapely.intersection(pieces[cut], locs[cut]))
    return np.concatenate([rg, idx[owner[gi]]]), np.concatenate([rp, pi]), np.concatenate([inside_r, inside])


def weights(zs: ZoneSet, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zone weights of shapely geometries: parallel arrays (geometry index, zone id, weight > 0).

    A geometry of dimension < 2, or of zero area, weighs 1 in every zone it touches; an area weighs
    the share of its area inside each zone (1 when the zone covers it, up to rounding)."""
    geoms = np.asarray(geoms, dtype=object)
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    if len(geoms) == 0 or len(zs.pieces) == 0:
        return empty
    area = shapely.area(geoms)
    is_area = (shapely.get_dimensions(geoms) == 2) & (area > 0)
    out = []

    idx = np.flatnonzero(~is_area)
    if len(idx):
        gi, pi = _touching(zs, geoms[idx])
        key = np.unique((idx[gi].astype(np.int64) << 32) | zs.piece_zone[pi])
        out.append((key >> 32, key & 0xFFFFFFFF, np.ones(len(key))))

    idx = np.flatnonzero(is_area)
    if len(idx):
        gi, pi, inside = _area_inside(zs, geoms[idx], area[idx])
        key, inverse = np.unique((idx[gi].astype(np.int64) << 32) | zs.piece_zone[pi], return_inverse=True)
        total = np.bincount(inverse.ravel(), weights=inside, minlength=len(key))
        g = key >> 32
        w = total / area[g]
        w[w > 1.0 - 1e-9] = 1.0  # covered, up to rounding over pieces and parts
        keep = w > 1e-9  # not merely touching (up to rounding)
        out.append((g[keep], (key & 0xFFFFFFFF)[keep], w[keep]))

    if not out:
        return empty
    return tuple(np.concatenate(parts) for parts in zip(*out))  # type: ignore[return-value]


def cached_area_weights(zs: ZoneSet, large: dict[bytes, object]) -> dict[bytes, list[tuple[int, float]]]:
    """Weights of large areas {digest: geometry}, computed once per zone set and kept."""
    with zs.lock:
        have = {d: zs.area_weights[d] for d in large if d in zs.area_weights}
    missing = [d for d in large if d not in have]
    if missing:
        gi, zone, w = weights(zs, np.array([large[d] for d in missing], dtype=object))
        found: dict[bytes, list[tuple[int, float]]] = {d: [] for d in missing}
        for g, z, x in zip(gi.tolist(), zone.tolist(), w.tolist()):
            found[missing[g]].append((z, x))
        with zs.lock:
            if len(zs.area_weights) + len(found) > LARGE_AREA_CACHE_MAX:  # much churn: start over
                zs.area_weights.clear()
            zs.area_weights.update(found)
        have.update(found)
    return have
