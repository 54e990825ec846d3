"""Locate a post: explicit coordinates, then the place it was tagged with, then its text.

Pure: values in, a `Geotag` (or None) out. Geometry is shapely in EPSG:4326, lon/lat order.

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
"""

from __future__ import annotations

from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from geo.distance import haversine_m
from geo.gazetteer import GazetteerIndex
from geo.geoparse import (  # noqa: F401  (the module's public names)
    INTERSECTION_UNCERTAINTY_M,
    Geotag,
    geoparse,
)
from geo.geoparse_words import lines_named  # noqa: F401  (the module's public names)
from geo.geotag_inputs import place_geometry as place_geometry_of
from geo.geotag_inputs import valid_lonlat

COORDINATE_UNCERTAINTY_M = 10.0
__all__ = ["COORDINATE_UNCERTAINTY_M", "INTERSECTION_UNCERTAINTY_M", "Geotag", "geoparse", "geotag", "lines_named"]


def geotag(
    text: str,
    index: GazetteerIndex,
    *,
    coordinates: tuple[float, float] | None = None,
    place: dict | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    min_confidence: float = 0.5,
    place_geometry: BaseGeometry | None = None,
) -> Geotag | None:
    """Locate a post. `coordinates` is (lon, lat); `place` has a name and a bbox [w, s, e, n] or a GeoJSON
    polygon; `bounds` (w, s, e, n) is the jurisdiction. Invalid coordinates or place geometry are ignored.
    `place_geometry`, when given, is the place's geometry already built (geo.geotag_batch)."""
    if coordinates is not None and valid_lonlat(*coordinates):
        return Geotag(Point(float(coordinates[0]), float(coordinates[1])), COORDINATE_UNCERTAINTY_M, 0.99, "coordinates")
    place_tag = None
    if place:
        g = place_geometry if place_geometry is not None else place_geometry_of(place)
        if g is not None:
            w, s, e, n = g.bounds
            half_diag_m = max(haversine_m(w, s, e, n) / 2, COORDINATE_UNCERTAINTY_M)
            conf = 0.9 if half_diag_m <= 2_000 else 0.85 if half_diag_m <= 10_000 else 0.75 if half_diag_m <= 50_000 else 0.6
            place_tag = Geotag(g, half_diag_m, conf, "place", None, place.get("name"), "place")
            if half_diag_m <= 2_000:
                return place_tag
        elif isinstance(place.get("name"), str):
            named = geoparse("in " + place["name"], index, bounds=bounds, min_confidence=min_confidence)
            if named is not None:
                place_tag = Geotag(named.geometry, named.uncertainty_m, named.confidence, "place", None,
                                   place["name"], named.kind)
    found = geoparse(text, index, bounds=bounds, min_confidence=min_confidence) if text else None
    if place_tag is None:
        return found
    # A coarse place ("New York, NY") is refined by a finer place named in the text when they agree.
    if found is not None and found.uncertainty_m < place_tag.uncertainty_m:
        p = found.point
        if place_tag.geometry.buffer(0.01).contains(p):
            return Geotag(found.geometry, found.uncertainty_m, min(0.99, max(found.confidence, place_tag.confidence) + 0.05),
                          "text", found.span, found.matched, found.kind)
    return place_tag if place_tag.confidence >= min_confidence else None
