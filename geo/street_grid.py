"""Numbered streets between the ones a street file has (pure).

A city's street file often carries only some members of a numbered grid: City Planning's arterials
have Manhattan's 14th, 23rd, 34th and 42nd Streets but not 47th, and Queens' 21st, 31st and 48th
Streets but not 30th. People write the others: "W 47th St & 8th Ave", "86th and Lex", "Roosevelt Ave y
la 83". A numbered family is the streets of one borough with one type and one direction prefix ("W ... St"
in Manhattan, "... St" in Queens; Brooklyn's "E 61 St" and "60 St" are two families, miles apart).
Where two members of a family cross a street E, each number between them crosses E at the point
interpolated by number between the two crossings; a few numbers beyond the last member, the step
of the last two carries on. Then:
- a number the file lacks becomes a synthetic street entry (source "grid"): a line through the points
  where it crosses the streets it was interpolated on (with one such street, a short stub through the
  point, parallel to its nearest numbered neighbour);
- a member the file has only in parts gains the crossings it lacks.

What keeps the grid honest: brackets at most MAX_GAP numbers apart, and a step per number between
MIN_STEP_M and MAX_STEP_M (a block, not a field or a river). A family that is not a grid in the data
(members that do not cross common streets in order) yields nothing.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from geo.gazetteer import GazetteerEntry, normalise_name
from geo.streets import street_aliases

MAX_GAP = 30  # numbers between two bracketing members
EXTRAPOLATE = 6  # numbers beyond the first or last member
MIN_STEP_M = 25.0
MAX_STEP_M = 400.0
STUB_M = 100.0  # half the length of a street known only where it crosses one street
SOURCE = "grid"
_M_PER_DEG = 111_320.0
_NUMBERED_RE = re.compile(r"^(?:([nsew]) )?(\d{1,3}) (st|ave|pl|rd|dr|ter|ct|ln)$")
_DIRECTION_PREFIX = {"e": "E", "w": "W", "n": "N", "s": "S"}
_TYPE_NAME = {"st": "St", "ave": "Ave", "pl": "Pl", "rd": "Rd", "dr": "Dr", "ter": "Ter", "ct": "Ct", "ln": "Ln"}


@dataclass(frozen=True)
class Numbered:
    """A street name read as a member of a numbered family."""

    direction: str | None  # e | w | n | s
    number: int
    type: str  # canonical street type token


def parse_numbered(name: str) -> Numbered | None:
    """"West 116th Street" -> Numbered("w", 116, "st"); None for a street that is not numbered."""
    m = _NUMBERED_RE.match(normalise_name(name))
    if m is None or int(m.group(2)) == 0:
        return None
    return Numbered(m.group(1), int(m.group(2)), m.group(3))


def same_family(a: str, b: str) -> bool:
    """Two numbered streets of one type ("W 42 St", "43 St"): parallel in a grid, never a corner."""
    na, nb = parse_numbered(a), parse_numbered(b)
    return na is not None and nb is not None and na.type == nb.type


def _metres(a: Point, b: Point) -> float:
    dx = (a.x - b.x) * _M_PER_DEG * math.cos(math.radians((a.y + b.y) / 2))
    return math.hypot(dx, (a.y - b.y) * _M_PER_DEG)


def _single_point(g: BaseGeometry) -> Point | None:
    """A crossing as one point; a street that meets E twice far apart is no rung of a ladder."""
    return g if g.geom_type == "Point" else None


def _ladders(entries: list[GazetteerEntry], numbered: dict[int, Numbered],
             crossings: dict[tuple[int, int], BaseGeometry]) -> dict[tuple[int, tuple], list[tuple[int, str | None, Point]]]:
    """For each (crossing street E, family): the members that cross E, as (number, direction, point)."""
    out: dict[tuple[int, tuple], list] = defaultdict(list)
    for (a, b), g in crossings.items():
        p = _single_point(g)
        if p is None:
            continue
        for member, other in ((a, b), (b, a)):
            nb = numbered.get(member)
            if nb is None or entries[member].code != entries[other].code:
                continue
            family = (entries[member].code, nb.type)
            no = numbered.get(other)
            if no is not None and (entries[other].code, no.type) == family:
                continue  # two members of one family do not make a rung
            out[(other, family)].append((nb.number, nb.direction, p))
    return out


def _interpolated(rungs: list[tuple[int, Point]]) -> dict[int, Point]:
    """Numbers between and a little beyond the rungs (number, point, sorted, distinct) -> points."""
    out: dict[int, Point] = {}
    have = {n for n, _ in rungs}
    pairs = list(zip(rungs, rungs[1:]))
    for (n1, p1), (n2, p2) in pairs:
        if n2 - n1 > MAX_GAP or n2 - n1 < 2:
            continue
        step = _metres(p1, p2) / (n2 - n1)
        if not MIN_STEP_M <= step <= MAX_STEP_M:
            continue
        for n in range(n1 + 1, n2):
            f = (n - n1) / (n2 - n1)
            out[n] = Point(p1.x + f * (p2.x - p1.x), p1.y + f * (p2.y - p1.y))
    for (n1, p1), (n2, p2), outward in ((rungs[0], rungs[1], -1), (rungs[-1], rungs[-2], 1)) if len(rungs) >= 2 else ():
        if abs(n2 - n1) > MAX_GAP:
            continue
        step = _metres(p1, p2) / abs(n2 - n1)
        if not MIN_STEP_M <= step <= MAX_STEP_M:
            continue
        for k in range(1, EXTRAPOLATE + 1):
            n = n1 + outward * k
            if n < 1 or n in have:
                break
            f = (n - n1) / (n2 - n1)
            out[n] = Point(p1.x + f * (p2.x - p1.x), p1.y + f * (p2.y - p1.y))
    return out


def _line_through(points: list[Point]) -> LineString:
    """The points in order along their main axis."""
    mx = sum(p.x for p in points) / len(points)
    my = sum(p.y for p in points) / len(points)
    sxx = sum((p.x - mx) ** 2 for p in points)
    syy = sum((p.y - my) ** 2 for p in points)
    sxy = sum((p.x - mx) * (p.y - my) for p in points)
    angle = 0.5 * math.atan2(2 * sxy, sxx - syy)
    ux, uy = math.cos(angle), math.sin(angle)
    ordered = sorted(points, key=lambda p: (p.x - mx) * ux + (p.y - my) * uy)
    return LineString([(p.x, p.y) for p in ordered])


def _stub(p: Point, neighbour: BaseGeometry) -> LineString:
    """A street known only where it crosses one street: a short line through that point running as its
    nearest numbered neighbour runs (STUB_M each way), so that it reads as a street, not a spot."""
    parts = [neighbour] if neighbour.geom_type == "LineString" else list(neighbour.geoms)
    part = min(parts, key=lambda g: g.distance(p))
    (x0, y0), (x1, y1) = part.coords[0], part.coords[-1]
    k = math.cos(math.radians(p.y))
    dx, dy = (x1 - x0) * k, y1 - y0
    norm = math.hypot(dx, dy) or 1.0
    ox, oy = dx / norm * STUB_M / _M_PER_DEG / k, dy / norm * STUB_M / _M_PER_DEG
    return LineString([(p.x - ox, p.y - oy), (p.x + ox, p.y + oy)])


def _name(nb: Numbered) -> str:
    prefix = f"{_DIRECTION_PREFIX[nb.direction]} " if nb.direction else ""
    return f"{prefix}{nb.number} {_TYPE_NAME[nb.type]}"


def fill_grid(entries: list[GazetteerEntry], crossings: dict[tuple[int, int], BaseGeometry]
              ) -> tuple[list[GazetteerEntry], dict[tuple[int, int], BaseGeometry]]:
    """Synthetic entries for the numbers a family lacks (appended after `entries`, so their positions
    follow) and the crossings they make, plus crossings that members present only in parts lack."""
    numbered = {i: nb for i, e in enumerate(entries) if e.kind == "street" and e.source != SOURCE
                and (nb := parse_numbered(e.name)) is not None}
    if len(numbered) < 2:
        return [], {}
    real: dict[tuple, int] = {}
    directions: dict[tuple, set] = defaultdict(set)
    region: dict[tuple, str | None] = {}
    for i, nb in numbered.items():
        family = (entries[i].code, nb.type)
        real.setdefault((family, nb.direction, nb.number), i)
        directions[family].add(nb.direction)
        region.setdefault(family, entries[i].region)
    # (family, direction, number) -> {crossing street E: point}
    virtual: dict[tuple, dict[int, Point]] = defaultdict(dict)
    for (street, family), members in _ladders(entries, numbered, crossings).items():
        for d in directions[family]:
            by_number: dict[int, Point] = {}
            for n, md, p in sorted(members, key=lambda r: r[0]):
                if md == d:
                    by_number.setdefault(n, p)
            if len(by_number) < 2:
                continue
            for n, p in _interpolated(sorted(by_number.items())).items():
                snapped = nearest_points(entries[street].geometry, p)[0]
                near = min(by_number, key=lambda k: abs(k - n))
                virtual[(family, d, n)][street] = (snapped, real.get((family, d, near)))
    new_entries: list[GazetteerEntry] = []
    new_crossings: dict[tuple[int, int], BaseGeometry] = {}
    for (family, d, n), points in sorted(virtual.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]), kv[0][2])):
        member = real.get((family, d, n))
        if member is None:
            nb = Numbered(d, n, family[1])
            name = _name(nb)
            if len(points) >= 2:
                line = _line_through([p for p, _ in points.values()])
            else:
                (p, near), = points.values()
                if near is None:
                    continue
                line = _stub(p, entries[near].geometry)
            member = len(entries) + len(new_entries)
            new_entries.append(GazetteerEntry(
                name=name, kind="street", geometry=line,
                alternates=tuple(a for a in street_aliases(name) if normalise_name(a) != normalise_name(name)),
                source=SOURCE, code=family[0], region=region[family]))
        for street, (p, _near) in points.items():
            pair = (member, street) if member < street else (street, member)
            if pair not in crossings:
                new_crossings[pair] = p
    return new_entries, new_crossings
