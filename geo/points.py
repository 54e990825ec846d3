"""One point for a geometry (pure)."""

from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry


def representative_point(g: BaseGeometry) -> Point:
    """The centroid when it lies inside `g` (closest to where readers mean), else shapely's inside point."""
    if g.geom_type == "Point":
        return g
    c = g.centroid
    return c if g.geom_type not in ("Polygon", "MultiPolygon") or g.contains(c) else g.representative_point()
