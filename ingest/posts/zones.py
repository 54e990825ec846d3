"""Zone weights of located posts, in the process (pure: tags and a geo.match_memory.ZoneSet in, arrays out).

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
from collections.abc import Collection, Sequence

import numpy as np
import shapely

from geo import match_memory as zone_match
from geo.geotag import Geotag
from geo.match_postgis import ZoneMatch

POINT_RADIUS_M = 300.0
# Locations whose WKB is at least this long (gazetteer neighbourhoods, ZIPs, boroughs) are matched once per
# process and zones state (geo.match_memory.cached_area_weights); the pipeline stores their centre instead.
LARGE_AREA_WKB_BYTES = 1_000


def locate(tags: Sequence[Geotag], zs: zone_match.ZoneSet,
           wkbs: Sequence[bytes] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every zone each tag's location touches: parallel arrays (position in `tags`, zone id, weight),
    grouped by position. `wkbs`: the tags' geometries as WKB, when the caller has them already."""
    if not len(tags):
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    gidx, matches = _distinct_locations(tags, zs, wkbs)
    return _expand(gidx, matches)


def _distinct_locations(tags: Sequence[Geotag], zs: zone_match.ZoneSet,
                        wkbs: Sequence[bytes] | None) -> tuple[np.ndarray, tuple]:
    """Each tag's distinct location (an index), and the zone weights of those locations as parallel
    arrays (location index, zone id, weight)."""
    geoms = np.array([tag.geometry for tag in tags], dtype=object)
    uncertainty = np.array([tag.uncertainty_m for tag in tags], dtype=np.float64)
    circle = (shapely.get_type_id(geoms) == 0) & (uncertainty > POINT_RADIUS_M)
    radii = [u if c else None for u, c in zip(uncertainty.tolist(), circle.tolist())]  # None: not a circle
    if wkbs is None:
        wkbs = shapely.to_wkb(geoms).tolist()
    distinct: dict[tuple[bytes, float | None], int] = {}
    first: list[int] = []  # position of each distinct location's first tag
    gidx = np.empty(len(tags), dtype=np.int64)
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
        digests = [_digest(wkbs[first[gi]]) for gi in large_gi.tolist()]
        known = zone_match.cached_area_weights(zs, dict(zip(digests, shapes[large_gi])))
        extra = [(gi, z, w) for gi, d in zip(large_gi.tolist(), digests) for z, w in known[d]]
        if extra:
            eg, ez, ew = (np.array(c) for c in zip(*extra))
            g, zone, weight = np.concatenate([g, eg]), np.concatenate([zone, ez]), np.concatenate([weight, ew])
    return gidx, (g, zone, weight)


def _digest(wkb: bytes) -> bytes:
    """The key of a large area's cached zone weights (geo.match_memory.cached_area_weights)."""
    return hashlib.blake2b(wkb, digest_size=16).digest()


def _expand(gidx: np.ndarray, matches: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tag (by position), every match of its location: (position, zone id, weight)."""
    g, zone, weight = matches
    order = np.argsort(g, kind="stable")
    g, zone, weight = g[order], zone[order], weight[order]
    starts = np.searchsorted(g, gidx, "left")
    counts = np.searchsorted(g, gidx, "right") - starts
    pos = np.repeat(np.arange(len(gidx)), counts)
    rows = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(starts, counts)
    return pos, zone[rows], weight[rows]


# A counted post's zone weights, every layer, as kept on its observation (observations.zone_weights): one
# record per zone, little-endian. ingest.posts.signal_layers writes signals from them when a rule starts
# counting a layer whose signals were not written.
WEIGHTS = np.dtype([("zone", "<i4"), ("weight", "<f8")])


def pack_weights(pos: np.ndarray, zone: np.ndarray, weight: np.ndarray, n: int) -> list[bytes | None]:
    """Per position 0..n-1, its rows of (pos, zone, weight) (grouped by position, as `locate` gives them)
    as WEIGHTS records; None for a position without any."""
    out: list[bytes | None] = [None] * n
    if not len(pos):
        return out
    records = np.empty(len(pos), WEIGHTS)
    records["zone"], records["weight"] = zone, weight
    blob, size = records.tobytes(), WEIGHTS.itemsize
    starts = np.flatnonzero(np.concatenate([[True], pos[1:] != pos[:-1]]))
    ends = np.concatenate([starts[1:], [len(pos)]])
    for p, start, end in zip(pos[starts].tolist(), starts.tolist(), ends.tolist()):
        out[p] = blob[start * size:end * size]
    return out


def unpack_weights(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The (zone ids, weights) that pack_weights stored."""
    records = np.frombuffer(blob, WEIGHTS)
    return records["zone"].astype(np.int64), records["weight"].astype(np.float64)


def layer_mask(zs: zone_match.ZoneSet, layers: Collection[str]) -> np.ndarray:
    """Booleans by zone id: the zone is in one of `layers`."""
    mask = np.zeros(max(zs.info, default=-1) + 1, dtype=bool)
    wanted = set(layers)
    mask[[zid for zid, (layer, _, _) in zs.info.items() if layer in wanted]] = True
    return mask


def zone_matches(zs: zone_match.ZoneSet, obs: Sequence[int], zone: Sequence[int], weight: Sequence[float]
                 ) -> dict[int, list[ZoneMatch]]:
    """(observation, zone, weight) rows as the rules read them, by observation. The caller picks the rows
    (with `layer_mask` and the rules' min_zone_weight)."""
    out: dict[int, list[ZoneMatch]] = defaultdict(list)
    for oid, zid, w in zip(obs, zone, weight):
        layer, code, name = zs.info[zid]
        out[oid].append(ZoneMatch(zid, layer, code, name, w))
    return out


def warm(zs: zone_match.ZoneSet, outlines: Sequence[object]) -> int:
    """Compute and keep the zone weights of the detailed outlines among `outlines` (shapely geometries,
    typically the gazetteer's neighbourhoods, ZIPs and boroughs), so that the first batch naming them
    does not pay for it. Returns how many are now cached."""
    geoms = np.array([g for g in outlines if shapely.get_dimensions(g) == 2], dtype=object)
    if not len(geoms):
        return 0
    wkbs = shapely.to_wkb(geoms).tolist()
    large = {_digest(w): g for w, g in zip(wkbs, geoms) if len(w) >= LARGE_AREA_WKB_BYTES}
    return len(zone_match.cached_area_weights(zs, large))
