"""Street centerlines as gazetteer entries, and the intersections derived from them (pure).

A street is one `GazetteerEntry` of kind "street" per (name, borough): every line of that name in that
borough merged into one (multi)line, so "Broadway" in Manhattan and "Broadway" in Brooklyn are two
readings the geotagger tells apart by the other street of an intersection or by the neighbourhood or
borough the post names. The borough travels in the entry's `code`. Geometry is EPSG:4326, lon/lat.

Intersections are where two differently named streets' lines touch or cross, or pass within a few
metres (centerline files often stop short of the crossing street's line). Two streets that meet more
than once (a curving road) give a multipoint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import shapely
from shapely.geometry import MultiPoint, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import linemerge, nearest_points, substring, unary_union

from geo.gazetteer import GazetteerEntry, normalise_name

# Lines closer than this meet (metres): a centerline that stops at the kerb of the street it joins.
TOUCH_M = 15.0
# Crossing points closer than this are one intersection (a divided avenue has two carriageways).
SAME_CROSSING_M = 60.0
_M_PER_DEG = 111_320.0
_DIRECTIONS = frozenset({"e", "w", "n", "s"})
_COMBINED_RE = re.compile(r"\s+(?:and|&)\s+|\s*,\s*", re.IGNORECASE)


@dataclass(frozen=True)
class StreetLine:
    """One feature of a centerline file, already in EPSG:4326."""

    name: str
    geometry: BaseGeometry
    alternates: tuple[str, ...] = ()
    borough: str | None = None


def _deg(metres: float, lat: float = 40.7) -> float:
    """Metres as degrees of longitude at `lat` (the smaller of the two degree lengths, so a bound errs wide)."""
    return metres / (_M_PER_DEG * math.cos(math.radians(lat)))


_DIRECTION_WORDS = {"e": "east", "w": "west", "n": "north", "s": "south"}


def street_aliases(name: str) -> list[str]:
    """Other ways people write a street: without its direction ("W 96 St" -> "96 St", "E Fordham Rd" ->
    "Fordham Rd"), and a named street's direction spelt out or cut to its initial ("East Fordham Rd" <->
    "E Fordham Rd"; numbered streets fold both ways already)."""
    words = normalise_name(name).split()
    if len(words) < 3:
        return []
    first = words[0]
    if first in _DIRECTION_WORDS.values():
        first = next(k for k, v in _DIRECTION_WORDS.items() if v == first)
    if first not in _DIRECTION_WORDS:
        return []
    rest = " ".join(words[1:])
    out = [rest]
    if not words[1].isdigit():
        out += [f"{first} {rest}", f"{_DIRECTION_WORDS[first]} {rest}"]
    return out


def _names(line: StreetLine) -> list[str]:
    """A feature's names: a combined name ("42 St And Park Ave", one segment carrying two streets) is
    both streets."""
    parts = [p.strip() for p in _COMBINED_RE.split(line.name) if p.strip()]
    return parts if len(parts) > 1 else [line.name.strip()]


def group_streets(lines: Iterable[StreetLine], *, source: str, region: str | None = None) -> list[GazetteerEntry]:
    """One entry per (normalised name, borough), its lines merged; alternates gathered from every line."""
    groups: dict[tuple[str, str | None], dict] = {}
    for line in lines:
        if line.geometry is None or line.geometry.is_empty:
            continue
        names = _names(line)
        for nm in names:
            key = normalise_name(nm)
            if not key:
                continue
            g = groups.setdefault((key, line.borough), {"name": nm, "geoms": [], "alts": []})
            g["geoms"].append(line.geometry)
            if len(names) == 1:
                g["alts"].extend(line.alternates)
    out = []
    for (key, borough), g in groups.items():
        merged = unary_union(g["geoms"])
        if merged.geom_type == "MultiLineString":
            merged = linemerge(merged)
        alts = [a for a in dict.fromkeys([*g["alts"], *street_aliases(g["name"])]) if normalise_name(a) != key]
        out.append(GazetteerEntry(name=g["name"], kind="street", geometry=merged, alternates=tuple(alts),
                                  source=source, code=borough, region=region))
    return out


def _cluster(points: list[Point]) -> BaseGeometry:
    """Points within SAME_CROSSING_M of a kept point fold into it; one point left is a Point."""
    kept: list[Point] = []
    for p in points:
        if not any(p.distance(k) <= _deg(SAME_CROSSING_M, p.y) for k in kept):
            kept.append(p)
    return kept[0] if len(kept) == 1 else MultiPoint(kept)


def street_crossing(a: BaseGeometry, b: BaseGeometry, *, touch_m: float = TOUCH_M) -> BaseGeometry | None:
    """Where two lines cross or come within `touch_m`; None when they do not meet."""
    inter = a.intersection(b)
    pts: list[Point] = []
    if not inter.is_empty:
        for g in getattr(inter, "geoms", [inter]):
            pts.append(g if g.geom_type == "Point" else g.representative_point())
    elif a.distance(b) <= _deg(touch_m, a.centroid.y):
        pa, pb = nearest_points(a, b)
        pts.append(Point((pa.x + pb.x) / 2, (pa.y + pb.y) / 2))
    return _cluster(pts) if pts else None


def derive_intersections(entries: list[GazetteerEntry], *, touch_m: float = TOUCH_M
                         ) -> dict[tuple[int, int], BaseGeometry]:
    """Every pair of differently named street entries that meet, keyed by entry positions (lower first),
    found through an STRtree so that only lines whose envelopes come close are intersected."""
    at = [i for i, e in enumerate(entries) if e.kind == "street" and e.geometry.geom_type in
          ("LineString", "MultiLineString")]
    if len(at) < 2:
        return {}
    geoms = [entries[i].geometry for i in at]
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=_deg(touch_m))
    keys = [normalise_name(entries[i].name) for i in at]
    out: dict[tuple[int, int], BaseGeometry] = {}
    for li, ri in zip(left.tolist(), right.tolist()):
        if li >= ri or keys[li] == keys[ri]:
            continue
        pt = street_crossing(geoms[li], geoms[ri], touch_m=touch_m)
        if pt is not None:
            out[(at[li], at[ri])] = pt
    return out


def segment_between(street: BaseGeometry, a: BaseGeometry, b: BaseGeometry) -> tuple[BaseGeometry, float] | None:
    """The stretch of `street` between two crossing points ("on X between Y and Z") and half its length
    in metres; None when the street's line does not run from one to the other."""
    pa, pb = _nearest_point(a, b), _nearest_point(b, a)
    lines = [street] if street.geom_type == "LineString" else list(getattr(street, "geoms", []))
    for line in lines:
        if line.distance(pa) > _deg(SAME_CROSSING_M) or line.distance(pb) > _deg(SAME_CROSSING_M):
            continue
        da, db = line.project(pa), line.project(pb)
        seg = substring(line, min(da, db), max(da, db))
        half = seg.length * _M_PER_DEG * math.cos(math.radians(seg.centroid.y)) / 2
        return seg, half
    return None


def _nearest_point(g: BaseGeometry, other: BaseGeometry) -> Point:
    """`g` itself when a point; the point of a multipoint nearest to `other`."""
    if g.geom_type == "Point":
        return g
    return min(g.geoms, key=lambda p: p.distance(other))


# A street the file has only in parts is carried on straight this far to meet a cross street (metres).
REACH_M = 1_500.0


def _ends(g: BaseGeometry) -> list[tuple[Point, float, float]]:
    """Each free end of a (multi)line with the unit direction (in metres' proportions) it points in."""
    out = []
    for line in ([g] if g.geom_type == "LineString" else list(getattr(g, "geoms", []))):
        coords = list(line.coords)
        if len(coords) < 2:
            continue
        for end, prev in ((coords[-1], coords[-2]), (coords[0], coords[1])):
            k = math.cos(math.radians(end[1]))
            dx, dy = (end[0] - prev[0]) * k, end[1] - prev[1]
            norm = math.hypot(dx, dy)
            if norm > 0:
                out.append((Point(end), dx / norm / k, dy / norm))
    return out


def reach_crossing(a: BaseGeometry, b: BaseGeometry, *, reach_m: float = REACH_M) -> tuple[Point, float] | None:
    """Where two streets that do not meet in the file would meet if one were carried on straight from an
    end, within `reach_m`: (point, metres carried). A file with a street only in parts ("82 St" stops
    short of Roosevelt Ave) still places "Roosevelt Ave & 82 St" at the corner."""
    best: tuple[Point, float] | None = None
    reach_deg = reach_m / _M_PER_DEG
    for this, other in ((a, b), (b, a)):
        for end, ux, uy in _ends(this):
            if end.distance(other) > _deg(reach_m, end.y):
                continue
            ray = shapely.LineString([(end.x, end.y), (end.x + ux * reach_deg, end.y + uy * reach_deg)])
            hit = ray.intersection(other)
            if hit.is_empty:
                continue
            p = min((g if g.geom_type == "Point" else g.representative_point() for g in getattr(hit, "geoms", [hit])),
                    key=lambda q: q.distance(end))
            if _glancing(other, p, ux, uy):
                continue
            m = math.hypot((p.x - end.x) * _M_PER_DEG * math.cos(math.radians(end.y)), (p.y - end.y) * _M_PER_DEG)
            if best is None or m < best[1]:
                best = (p, m)
    return best


def _glancing(line: BaseGeometry, p: Point, ux: float, uy: float) -> bool:
    """The carried-on street meets `line` at under 30 degrees: two near-parallel streets, not a corner."""
    parts = [line] if line.geom_type == "LineString" else list(getattr(line, "geoms", []))
    part = min(parts, key=lambda g: g.distance(p))
    at = part.project(p)
    step = _deg(20.0, p.y)
    a, b = part.interpolate(max(at - step, 0.0)), part.interpolate(min(at + step, part.length))
    k = math.cos(math.radians(p.y))
    vx, vy = (b.x - a.x) * k, b.y - a.y
    norm = math.hypot(vx, vy)
    if norm == 0:
        return True
    sin = abs((ux * k) * vy - uy * vx) / (norm * math.hypot(ux * k, uy))
    return sin < 0.5
