"""What a post says explicitly about where it is: coordinates, and a tagged place's bbox or outline.

Pure parsing, shared by geo.geotag (one post) and geo.geotag_batch (many). Anything invalid or out of
range is None: the caller then falls back to the text.
"""

from __future__ import annotations

import math

from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry


def valid_lonlat(lon, lat) -> bool:
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        return False
    # (0, 0) is the classic null-island placeholder, not a post from the Gulf of Guinea.
    return -180 <= lon <= 180 and -90 <= lat <= 90 and not (lon == 0 and lat == 0) and not math.isnan(lon + lat)


def has_bbox(place: dict) -> bool:
    return (place.get("bbox") or place.get("bounding_box")) is not None


def place_bbox(place: dict) -> tuple[float, float, float, float] | None:
    """The place's bbox as (west, south, east, north) when it has a valid one."""
    bbox = place.get("bbox") or place.get("bounding_box")
    if bbox is None:
        return None
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    return (w, s, e, n) if -180 <= w <= e <= 180 and -90 <= s <= n <= 90 else None


def place_geometry(place: dict) -> BaseGeometry | None:
    """The place's bbox as a polygon, or its GeoJSON geometry; None when invalid or out of range."""
    if has_bbox(place):
        wsen = place_bbox(place)
        return box(*wsen) if wsen is not None else None
    gj = place.get("geometry") or place.get("polygon") or (place if "coordinates" in place else None)
    if gj is None:
        return None
    try:
        g = shape(gj)
        w, s, e, n = g.bounds
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    return g if not g.is_empty and -180 <= w <= e <= 180 and -90 <= s <= n <= 90 else None
