"""Parse and check RFC 7946 GeoJSON geometries (lon, lat order) into shapely, without I/O."""

import json
import math
from collections.abc import Sequence
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidGeometry

ALLOWED_TYPES = ("Point", "Polygon", "MultiPolygon")


def _position(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) < 2:
        raise InvalidGeometry(f"{where}: a position is [longitude, latitude], got {value!r}", value)
    lon, lat = value[0], value[1]
    for name, v in (("longitude", lon), ("latitude", lat)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidGeometry(f"{where}: {name} must be a number, got {v!r}", v)
    if not -180 <= lon <= 180:
        raise InvalidGeometry(f"{where}: longitude {lon} is outside [-180, 180]", lon)
    if not -90 <= lat <= 90:
        raise InvalidGeometry(f"{where}: latitude {lat} is outside [-90, 90]", lat)
    return float(lon), float(lat)


def _ring(value: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidGeometry(f"{where}: a linear ring is a list of positions, got {value!r}", value)
    ring = [_position(p, f"{where}[{i}]") for i, p in enumerate(value)]
    if len(ring) < 4:
        raise InvalidGeometry(f"{where}: a linear ring needs at least 4 positions, got {len(ring)}", len(ring))
    if ring[0] != ring[-1]:
        raise InvalidGeometry(
            f"{where}: linear ring is not closed: first position {list(ring[0])} != last {list(ring[-1])}",
            [list(ring[0]), list(ring[-1])],
        )
    return ring


def _polygon(value: Any, where: str) -> Polygon:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise InvalidGeometry(f"{where}: a polygon is a non-empty list of rings, got {value!r}", value)
    rings = [_ring(r, f"{where}[{i}]") for i, r in enumerate(value)]
    return Polygon(rings[0], rings[1:])


def parse_geometry(obj: Any, *, max_vertices: int = 10_000) -> BaseGeometry:
    """A shapely geometry from a GeoJSON dict; invalid polygons are returned as-is for `repair`."""
    if not isinstance(obj, dict):
        raise InvalidGeometry(f"geometry must be a GeoJSON object, got {type(obj).__name__}", obj)
    gtype = obj.get("type")
    if gtype not in ALLOWED_TYPES:
        raise InvalidGeometry(f"geometry.type {gtype!r} is not one of {', '.join(ALLOWED_TYPES)}", gtype)
    coords = obj.get("coordinates")
    if coords is None:
        raise InvalidGeometry("geometry.coordinates is missing", None)
    if gtype == "Point":
        return Point(_position(coords, "geometry.coordinates"))
    if gtype == "Polygon":
        geom: BaseGeometry = _polygon(coords, "geometry.coordinates")
    else:
        if not isinstance(coords, Sequence) or isinstance(coords, str) or not coords:
            raise InvalidGeometry(f"geometry.coordinates: a MultiPolygon is a list of polygons, got {coords!r}", coords)
        geom = MultiPolygon([_polygon(p, f"geometry.coordinates[{i}]") for i, p in enumerate(coords)])
    check_vertices(geom, max_vertices=max_vertices)
    return geom


def as_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """The geometry as a GeoJSON object (a dict). A 2-D point, what most reports are, is written here: the same
    object as through GEOS's writer, without a JSON text to parse back."""
    if isinstance(geom, Point) and not geom.has_z and not geom.is_empty:
        return {"type": "Point", "coordinates": [geom.x, geom.y]}
    return json.loads(shapely.to_geojson(geom))


def check_vertices(geom: BaseGeometry, *, max_vertices: int) -> None:
    """Refuse a geometry of more than `max_vertices` vertices."""
    n = shapely.get_num_coordinates(geom)
    if n > max_vertices:
        raise InvalidGeometry(f"geometry has {n} vertices, more than the limit of {max_vertices}", n)


def repair(geom: BaseGeometry) -> tuple[BaseGeometry, str | None]:
    """Make a polygonal geometry valid; returns it and a note of what was repaired, or None."""
    if geom.geom_type == "Point" or geom.is_valid:
        return geom, None
    reason = shapely.is_valid_reason(geom)
    fixed = shapely.make_valid(geom)
    polys = polygonal_part(fixed)
    if polys is None:
        raise InvalidGeometry(f"geometry is invalid ({reason}) and has no usable area after repair", reason)
    return polys, f"repaired invalid geometry: {reason}"


def polygonal_part(geom: BaseGeometry) -> MultiPolygon | None:
    """The polygons of a geometry as one MultiPolygon, or None when it has no area."""
    if geom.is_empty:
        return None
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, (Polygon, MultiPolygon)) and not g.is_empty]
    flat: list[Polygon] = []
    for p in parts:
        flat.extend(p.geoms if isinstance(p, MultiPolygon) else [p])
    return MultiPolygon(flat) if flat else None


def within_bbox(geom: BaseGeometry, bbox: tuple[float, float, float, float]) -> bool:
    west, south, east, north = bbox
    minx, miny, maxx, maxy = geom.bounds
    return west <= minx and maxx <= east and south <= miny and maxy <= north


def area_km2(geom: BaseGeometry) -> float:
    """Area on the WGS84 ellipsoid, in km² (0 for points)."""
    if geom.geom_type == "Point":
        return 0.0
    from pyproj import Geod  # imported on first use: nothing heavy at import time

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(geom)[0]) / 1e6


def check_limits(geom: BaseGeometry, *, max_vertices: int, max_area_km2: float) -> None:
    """Refuse footprints with too many vertices or too large an area; both limits are configurable."""
    check_vertices(geom, max_vertices=max_vertices)
    area = area_km2(geom)
    if area > max_area_km2:
        raise InvalidGeometry(f"geometry covers {area:.1f} km², more than the limit of {max_area_km2:g} km²", area)


def parse_bbox(value: str, *, field: str = "bbox") -> tuple[float, float, float, float]:
    """'west,south,east,north' in degrees, longitude first (a query parameter), else an error quoting it."""
    parts = value.split(",")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise InvalidGeometry(f"{field} {value!r} is not four numbers 'west,south,east,north'", value,
                              field=field) from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        raise InvalidGeometry(f"{field} {value!r} has a non-finite number", value, field=field)
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InvalidGeometry(f"{field} {value!r} is not west,south,east,north in degrees (lon before lat, "
                              "west < east in [-180, 180], south < north in [-90, 90])", value, field=field)
    return west, south, east, north
