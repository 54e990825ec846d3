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
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import linemerge, substring, unary_union

from geo.crossings import SAME_CROSSING_M, TOUCH_M, deg, street_crossing
from geo.gazetteer import GazetteerEntry, normalise_name

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
    left, right = tree.query(geoms, predicate="dwithin", distance=deg(touch_m))
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
        if line.distance(pa) > deg(SAME_CROSSING_M) or line.distance(pb) > deg(SAME_CROSSING_M):
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
