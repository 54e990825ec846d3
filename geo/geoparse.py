"""Locate a post from its text (pure): the scoring behind geo.geotag, in steps one can test alone.

Text scoring, in brief. Each gazetteer reading of a mention starts from a prior for its kind and
moves with evidence: a cue word before it ("in", "near"), capitalisation, the jurisdiction
(`bounds`), a qualifier after it ("Astoria, Oregon"), sports context ("Chelsea FC"), a street
suffix after a neighbourhood name ("Jamaica Ave" is never Jamaica), agreement with the post's other
mentions ("Astoria, Queens"; "Broadway" in the borough the post names) and ambiguity between far-apart
readings. Street-level phrases (intersections, blocks, house numbers) are read by geo.street_parse.
The most specific confident reading wins (landmark/station > intersection/block > address >
neighbourhood > street > zip > borough); a street that agrees with a coarser area the post names is
returned as its stretch inside that area. Below `min_confidence` the answer is None: no place is better
than a wrong one. Uncertainty follows the kind: an intersection tens of metres, a block or street half
its length, a landmark its footprint (or a small radius for a point).

Here: the pipeline, and how readings are weighed against each other and chosen. The readings themselves
and the evidence that scores them are in geo.geoparse_readings, the words they look for in
geo.geoparse_words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from geo.distance import haversine_m
from geo.gazetteer import GazetteerIndex
from geo.geoparse_readings import (
    Post,
    Reading,
    apply_context_names,
    in_bounds,
    mention_readings,
    read_post,
    street_readings,
    zip_readings,
)
from geo.geotag_inputs import valid_lonlat
from geo.points import representative_point
from geo.street_parse import INTERSECTION_UNCERTAINTY_M, line_half_length_m

# Specificity: among confident readings the finer one wins.
_RANK = {"station": 6, "landmark": 6, "intersection": 5, "block": 5, "address": 4, "neighbourhood": 3, "street": 2.8,
         "zip": 2.5,
         "city": 2, "borough": 1, "state": 0.5, "country": 0}
# Lines and multipoints up to this uncertainty keep their shape (ingest.posts.zones.POINT_RADIUS_M).
_SHAPE_KEPT_M = 300.0
# Two lines this close are one thing named twice (a street's pieces in two boroughs), in degrees (~100 m).
_LINES_TOUCH_DEG = 0.0012
# "40.6413,-73.7781" pasted from a map: decimal degrees with at least three decimals, lat first by convention.
_TEXT_COORDS_RE = re.compile(r"(?<![\w.])(-?\d{1,3}\.\d{3,})\s*[,;/ ]\s*(-?\d{1,3}\.\d{3,})(?![\w.])")
TEXT_COORDINATE_UNCERTAINTY_M = 25.0


@dataclass(frozen=True)
class Geotag:
    """Where a post is about. `geometry` is EPSG:4326; `uncertainty_m` is a radius in metres."""

    geometry: BaseGeometry
    uncertainty_m: float
    confidence: float
    method: str  # coordinates | place | text
    span: tuple[int, int] | None = None
    matched: str | None = None
    kind: str | None = None

    @cached_property
    def point(self) -> Point:
        """A point inside the geometry: its centroid when that falls inside, else a representative point."""
        return representative_point(self.geometry)


def _agree(a: Reading, b: Reading) -> bool:
    """Two readings describe overlapping places (near each other, or one contains the other)."""
    if haversine_m(a.lon, a.lat, b.lon, b.lat) <= a.radius_m + b.radius_m:
        return True
    if a.kind == b.kind == "street" and a.geometry.distance(b.geometry) <= _LINES_TOUCH_DEG:
        return True
    for big, small in ((a, b), (b, a)):
        g = big.geometry
        if g.geom_type in ("Polygon", "MultiPolygon"):
            w, s, e, n = g.bounds
            if w <= small.lon <= e and s <= small.lat <= n:
                shapely.prepare(g)
                if shapely.contains_xy(g, small.lon, small.lat):
                    return True
    return False


def _coordinates_in_text(text: str, bounds) -> Geotag | None:
    """Decimal coordinates written in the text, read lat, lon unless only lon, lat makes sense."""
    for m in _TEXT_COORDS_RE.finditer(text):
        a, b = float(m.group(1)), float(m.group(2))
        options = [(b, a), (a, b)]  # (lon, lat): "lat, lon" first
        options = [(lon, lat) for lon, lat in options if valid_lonlat(lon, lat) and abs(lat) <= 90]
        if bounds is not None and any(in_bounds(lon, lat, bounds) for lon, lat in options):
            options = [o for o in options if in_bounds(o[0], o[1], bounds)]
        if options:
            lon, lat = options[0]
            return Geotag(Point(lon, lat), TEXT_COORDINATE_UNCERTAINTY_M, 0.95, "text", m.span(), m.group(), "coordinates")
    return None


def geoparse(
    text: str,
    index: GazetteerIndex,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    min_confidence: float = 0.5,
) -> Geotag | None:
    """Locate a post from its text alone (see the module docstring for the scoring), in steps:
    coordinates written in the text; the readings of each mention, ZIP code and street phrase; context
    names; ambiguity and agreement; the choice; a street narrowed to the area the post names."""
    if "." in text:
        found = _coordinates_in_text(text, bounds)
        if found is not None:
            return found
    post = read_post(text, index, bounds)
    if post is None:
        return None
    readings = [r for mi, m in enumerate(post.mentions) if m.entry_ids for r in [mention_readings(post, mi, m)]]
    readings += zip_readings(post)
    apply_context_names(post, readings)
    if index.has_streets:
        extra = street_readings(post)
        if extra:
            readings.append(extra)
    best = resolve(readings, min_confidence)
    picked = choose(best, min_confidence)
    if picked is None:
        return None
    chosen, confidence = picked
    return _answer(post, chosen, best, confidence, min_confidence)


def resolve(readings_by_mention: list[list[Reading]], min_confidence: float) -> list[list[Reading]]:
    """Ambiguity within a mention (two far-apart places that fit equally well lose), then agreement across
    mentions (the best agreeing pair lifts both: "Astoria, Queens"); each list sorted best first."""
    best = []
    for readings in readings_by_mention:
        if not readings:
            continue
        readings.sort(key=lambda r: -r.score)
        top = readings[0]
        if len(readings) > 1 and top.score - readings[1].score < 0.15 and not _agree(top, readings[1]):
            top.score -= 0.3  # two far-apart places fit equally well ("Murray Hill")
        best.append(readings)
    if len(best) > 1:
        for i, ri in enumerate(best):
            for rj in best[i + 1:]:
                if ri[0].mention == rj[0].mention:
                    continue
                pair = next(((x, y) for x in ri for y in rj
                             if x.score >= min_confidence and y.score >= min_confidence and _agree(x, y)), None)
                if pair is not None:
                    x, y = pair
                    x.score += 0.1
                    y.score += 0.1
        for readings in best:
            readings.sort(key=lambda r: -r.score)
    return best


def choose(best: list[list[Reading]], min_confidence: float) -> tuple[Reading, float] | None:
    """The most specific confident reading, and its confidence (lower when the post also names an unrelated
    place); None below `min_confidence`."""
    chosen = max((r[0] for r in best), key=lambda r: r.score + 0.03 * _RANK.get(r.kind, 0), default=None)
    if chosen is None:
        return None
    confidence = chosen.score
    for readings in best:
        other = readings[0]
        if other is not chosen and other.score >= min_confidence and not _agree(chosen, other):
            confidence -= 0.1  # the post names two unrelated places
            break
    confidence = min(0.99, confidence)
    return (chosen, confidence) if confidence >= min_confidence else None


def _answer(post: Post, chosen: Reading, best: list[list[Reading]], confidence: float,
            min_confidence: float) -> Geotag:
    text, index = post.text, post.index
    refined = _street_within_area(chosen, best, min_confidence) if index.has_streets else None
    if refined is not None:
        street, geometry, radius = refined
        m = post.mentions[street.mention]
        return Geotag(_located(geometry, radius), radius, confidence, "text", (m.start, m.end), text[m.start:m.end],
                      "street")
    if isinstance(chosen.mention, tuple):
        span = (chosen.mention[1], chosen.mention[2])
    else:
        m = post.mentions[chosen.mention]
        span = (m.start, m.end)
    return Geotag(_located(chosen.geometry, chosen.radius_m), chosen.radius_m, confidence, "text", span,
                  text[span[0]:span[1]], chosen.kind)


def _located(g: BaseGeometry, radius_m: float) -> BaseGeometry:
    """A long line or a spread of points (a street, a bridge given as points) as its central point: zone
    matching weighs a line or points 1 in every zone they touch, but a point with its uncertainty as a
    circle, so a 5 km avenue is spread over the zones along it rather than counted whole in each.
    Short ones (a block, a crossing) keep their shape."""
    if g.geom_type in ("Point", "Polygon", "MultiPolygon") or radius_m <= _SHAPE_KEPT_M:
        return g
    return representative_point(g)


def _street_within_area(chosen: Reading, best: list[list[Reading]], min_confidence: float):
    """A confident street named with the area it runs through ("Myrtle Ave in Bushwick") is placed on its
    stretch inside the area when that is tighter than the area: (street reading, geometry, radius)."""
    g = chosen.geometry
    if chosen.kind not in ("neighbourhood", "zip", "borough", "city") or g.geom_type not in ("Polygon", "MultiPolygon"):
        return None
    for readings in best:
        for r in readings:
            if r.kind != "street" or r.score < min_confidence or not isinstance(r.mention, int):
                continue
            inside = r.geometry.intersection(g)
            if inside.is_empty or inside.geom_type not in ("LineString", "MultiLineString"):
                continue
            radius = max(line_half_length_m(inside), INTERSECTION_UNCERTAINTY_M)
            if radius < chosen.radius_m:
                return r, inside, radius
    return None
