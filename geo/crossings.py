"""Where two street lines meet (pure shapely, lon/lat): a crossing in the file, or where a street the
file has only in parts would meet another if carried on straight. geo.streets derives every crossing
of a gazetteer's streets with these; geo.gazetteer finds one on demand."""

from __future__ import annotations

import math

import shapely
from shapely.geometry import MultiPoint, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

# Lines closer than this meet (metres): a centerline that stops at the kerb of the street it joins.
TOUCH_M = 15.0
# Crossing points closer than this are one intersection (a divided avenue has two carriageways).
SAME_CROSSING_M = 60.0
_M_PER_DEG = 111_320.0


def deg(metres: float, lat: float = 40.7) -> float:
    """Metres as degrees of longitude at `lat` (the smaller of the two degree lengths, so a bound errs wide)."""
    return metres / (_M_PER_DEG * math.cos(math.radians(lat)))


def _cluster(points: list[Point]) -> BaseGeometry:
    """Points within SAME_CROSSING_M of a kept point fold into it; one point left is a Point."""
    kept: list[Point] = []
    for p in points:
        if not any(p.distance(k) <= deg(SAME_CROSSING_M, p.y) for k in kept):
            kept.append(p)
    return kept[0] if len(kept) == 1 else MultiPoint(kept)


def street_crossing(a: BaseGeometry, b: BaseGeometry, *, touch_m: float = TOUCH_M) -> BaseGeometry | None:
    """Where two lines cross or come within `touch_m`; None when they do not meet."""
    inter = a.intersection(b)
    pts: list[Point] = []
    if not inter.is_empty:
        for g in getattr(inter, "geoms", [inter]):
            pts.append(g if g.geom_type == "Point" else g.representative_point())
    elif a.distance(b) <= deg(touch_m, a.centroid.y):
        pa, pb = nearest_points(a, b)
        pts.append(Point((pa.x + pb.x) / 2, (pa.y + pb.y) / 2))
    return _cluster(pts) if pts else None


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
            if end.distance(other) > deg(reach_m, end.y):
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
    step = deg(20.0, p.y)
    a, b = part.interpolate(max(at - step, 0.0)), part.interpolate(min(at + step, part.length))
    k = math.cos(math.radians(p.y))
    vx, vy = (b.x - a.x) * k, b.y - a.y
    norm = math.hypot(vx, vy)
    if norm == 0:
        return True
    sin = abs((ux * k) * vy - uy * vx) / (norm * math.hypot(ux * k, uy))
    return sin < 0.5
