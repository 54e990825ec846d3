"""Gazetteer entries: what a named place is, how far it extends, and reading operator-supplied files of them.

Everything is EPSG:4326 with lon, lat order.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from shapely import wkt as shapely_wkt
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from geo.normalise import normalise_name

KINDS = frozenset({"neighbourhood", "zip", "borough", "station", "landmark", "street", "city", "state", "country"})

# Default extent of a named point when the entry gives no radius_m (metres).
POINT_RADIUS_M = {
    "station": 150.0, "landmark": 250.0, "street": 1000.0, "neighbourhood": 1500.0, "zip": 1500.0,
    "borough": 8000.0, "city": 5000.0, "state": 150_000.0, "country": 300_000.0,
}


@dataclass(frozen=True)
class GazetteerEntry:
    """One named place. `geometry` is shapely in EPSG:4326 (lon, lat)."""

    name: str
    kind: str  # neighbourhood|zip|borough|station|landmark|street|city|state|country
    geometry: BaseGeometry
    alternates: tuple[str, ...] = ()
    priority: float = 0.0  # population or rank; breaks ties between equally plausible readings
    source: str = ""
    code: str | None = None  # NTA code, modzcta, ISO country code, station id ...
    region: str | None = None  # ISO 3166 country or subdivision ("US-NY", "JM"); lets "Astoria, Oregon" disagree
    radius_m: float | None = None  # extent of a point entry; polygons use their equal-area radius


# ---------------------------------------------------------------- measures


def equal_area_radius_m(geom: BaseGeometry) -> float:
    """Radius of the circle with the polygon's area, from a local equirectangular scale."""
    lat = geom.centroid.y
    area_m2 = geom.area * 110_574.0 * 111_320.0 * math.cos(math.radians(lat))
    return math.sqrt(max(area_m2, 0.0) / math.pi)


def entry_radius_m(entry: GazetteerEntry) -> float:
    """How far the named place extends around its representative point, in metres."""
    if entry.radius_m is not None:
        return float(entry.radius_m)
    if entry.geometry.geom_type in ("Polygon", "MultiPolygon"):
        return equal_area_radius_m(entry.geometry)
    if entry.geometry.geom_type in ("LineString", "MultiLineString"):
        lat = entry.geometry.centroid.y
        return entry.geometry.length * 111_320.0 * math.cos(math.radians(lat)) / 2
    return POINT_RADIUS_M.get(entry.kind, 1000.0)


# ---------------------------------------------------------------- operator files


def _parse_alternates(raw: object, where: str) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        return tuple(a.strip() for a in raw.split(";") if a.strip())
    if isinstance(raw, (list, tuple)) and all(isinstance(a, str) for a in raw):
        return tuple(a.strip() for a in raw if a.strip())
    raise ValueError(f"{where}: alternates {raw!r} is neither a ';'-separated string nor a list of strings")


def _check_entry(name: object, kind: object, geom: BaseGeometry, where: str,
                 default_kind: str = "landmark") -> tuple[str, str]:
    if not isinstance(name, str) or not name.strip() or not normalise_name(name):
        raise ValueError(f"{where}: name {name!r} is empty")
    kind = (kind or default_kind) if isinstance(kind, str) or kind is None else kind
    if kind not in KINDS:
        raise ValueError(f"{where}: kind {kind!r} is not one of {sorted(KINDS)}")
    if geom.is_empty:
        raise ValueError(f"{where}: geometry is empty")
    w, s, e, n = geom.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ValueError(f"{where}: geometry bounds {geom.bounds} are not lon/lat in EPSG:4326")
    return name.strip(), kind


def _csv_geometry(row: dict, where: str) -> BaseGeometry:
    if (row.get("wkt") or "").strip():
        try:
            return shapely_wkt.loads(row["wkt"])
        except Exception as exc:  # shapely raises several types for bad WKT
            raise ValueError(f"{where}: wkt {row['wkt'][:60]!r} does not parse ({exc})") from None
    try:
        lon, lat = float(row.get("lon") or ""), float(row.get("lat") or "")
    except ValueError:
        raise ValueError(f"{where}: needs lon and lat or wkt, got lon={row.get('lon')!r} lat={row.get('lat')!r}") from None
    if not -180 <= lon <= 180:
        raise ValueError(f"{where}: longitude {lon} is outside [-180, 180]")
    if not -90 <= lat <= 90:
        raise ValueError(f"{where}: latitude {lat} is outside [-90, 90]")
    return Point(lon, lat)


def _optional_float(raw: object, field: str, where: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {field} {raw!r} is not a number") from None


def load_entries_file(path: str | Path, *, default_kind: str = "landmark") -> list[GazetteerEntry]:
    """Read operator-supplied entries from CSV (name, alternates, kind, lon/lat or wkt) or GeoJSON; an entry
    without a kind is a `default_kind`."""
    path = Path(path)
    source = path.name
    entries = []
    if path.suffix.lower() in (".geojson", ".json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        features = doc.get("features") if isinstance(doc, dict) else None
        if not isinstance(features, list):
            raise ValueError(f"{path}: expected a GeoJSON FeatureCollection, got {str(doc)[:60]!r}")
        for i, feat in enumerate(features, start=1):
            where = f"{path} feature {i}"
            props = (feat or {}).get("properties") or {}
            try:
                geom = shape(feat["geometry"])
            except Exception as exc:
                raise ValueError(f"{where}: geometry does not parse ({exc})") from None
            name, kind = _check_entry(props.get("name"), props.get("kind"), geom, where, default_kind)
            entries.append(GazetteerEntry(
                name=name, kind=kind, geometry=geom, alternates=_parse_alternates(props.get("alternates"), where),
                priority=_optional_float(props.get("priority"), "priority", where) or 0.0, source=source,
                code=props.get("code"), region=props.get("region"),
                radius_m=_optional_float(props.get("radius_m"), "radius_m", where)))
        return entries
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "name" not in reader.fieldnames:
            raise ValueError(f"{path}: CSV needs a 'name' column, has {reader.fieldnames}")
        for i, row in enumerate(reader, start=2):  # row 1 is the header
            where = f"{path} row {i}"
            geom = _csv_geometry(row, where)
            name, kind = _check_entry(row.get("name"), (row.get("kind") or "").strip() or None, geom, where,
                                      default_kind)
            entries.append(GazetteerEntry(
                name=name, kind=kind, geometry=geom, alternates=_parse_alternates(row.get("alternates"), where),
                priority=_optional_float(row.get("priority"), "priority", where) or 0.0, source=source,
                code=(row.get("code") or None), region=(row.get("region") or None),
                radius_m=_optional_float(row.get("radius_m"), "radius_m", where)))
    return entries
