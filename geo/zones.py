"""Read zone files (GeoJSON, GeoPackage, Shapefile) into clean EPSG:4326 MultiPolygons."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS

from geo.errors import ZoneFileError
from geo.geojson import polygonal_part

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class ZoneRecord:
    code: str
    name: str
    geometry: shapely.MultiPolygon
    properties: dict[str, Any]


@dataclass
class ZoneReadReport:
    read: int = 0
    code_field: str | None = None  # the field codes came from (None: numbered by row)
    repaired: list[tuple[int, str]] = field(default_factory=list)  # (feature index, reason)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _unique(frame, column: str) -> bool:
    values = frame[column]
    return bool(values.notna().all()) and values.astype(str).str.strip().ne("").all() and values.is_unique


def guess_code_field(frame) -> str | None:
    """The column that obviously holds each zone's code: unique and never empty, and named `code`, then
    `...code` (NTACode, GEOCODE), then `geoid`/`id`, then `..._id`/`...id`; None when none is."""
    columns = [c for c in frame.columns if _unique(frame, c)]
    for test in (lambda c: c == "code", lambda c: c.endswith("code"), lambda c: c in ("geoid", "id"),
                 lambda c: c.endswith(("_id", "id")) or c.endswith("num")):
        found = [c for c in columns if test(str(c).lower())]
        if found:
            return found[0]
    return None


def guess_name_field(frame) -> str | None:
    """A column named `name` or `...name` (NTAName, BoroName), for display; None when there is none."""
    names = [c for c in frame.columns if str(c).lower() == "name"] or \
        [c for c in frame.columns if str(c).lower().endswith("name")]
    return names[0] if names else None


def read_zone_file(
    path: str | Path,
    *,
    code_field: str | None = None,
    name_field: str | None = None,
    assume_crs: str | None = None,
    file_layer: str | None = None,
    guess_code: bool = False,
) -> tuple[list[ZoneRecord], ZoneReadReport]:
    """Read, reproject to EPSG:4326, promote to MultiPolygon and repair; bad features are reported, not fatal.
    Without `code_field`, codes come from an obvious code column when `guess_code` (`guess_code_field`;
    none found is an error naming the fields), else from the row number (a territory's parts)."""
    path = Path(path)
    if not path.exists():
        raise ZoneFileError(f"zone file {str(path)!r} does not exist", path=str(path))
    try:
        frame = gpd.read_file(path, layer=file_layer) if file_layer else gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types; the message is what matters
        raise ZoneFileError(f"cannot read zone file {str(path)!r}: {exc}", path=str(path)) from exc
    if frame.crs is None:
        if not assume_crs:
            raise ZoneFileError(
                f"zone file {str(path)!r} declares no CRS; pass --assume-crs (e.g. EPSG:4326 or EPSG:2263)",
                path=str(path),
            )
        try:
            frame = frame.set_crs(CRS.from_user_input(assume_crs))
        except Exception as exc:
            raise ZoneFileError(f"--assume-crs {assume_crs!r} is not a CRS pyproj knows: {exc}") from exc
    if frame.crs != WGS84:
        frame = frame.to_crs(WGS84)

    columns = [c for c in frame.columns if c != frame.geometry.name]
    for wanted, what in ((code_field, "--code-field"), (name_field, "--name-field")):
        if wanted and wanted not in columns:
            raise ZoneFileError(f"{what} {wanted!r} is not a field of {path.name}; fields are {columns}")
    if code_field is None and guess_code:
        code_field = guess_code_field(frame[columns])
        if code_field is None:
            raise ZoneFileError(f"{path.name} has no obvious code field (a unique column named like code, id or "
                                f"geoid); pass --code-field, one of {columns}")
        if name_field is None:
            name_field = guess_name_field(frame[columns])

    report = ZoneReadReport(code_field=code_field)
    records: list[ZoneRecord] = []
    seen: set[str] = set()
    for index, (geom, row) in enumerate(zip(frame.geometry, frame[columns].itertuples(index=False))):
        report.read += 1
        props = {c: _jsonable(v) for c, v in zip(columns, row)}
        code = str(props[code_field]) if code_field else str(index)
        name = str(props[name_field]) if name_field and props.get(name_field) is not None else code
        if geom is None or geom.is_empty:
            report.rejected.append((index, "empty geometry"))
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            report.rejected.append((index, f"geometry type {geom.geom_type} is not a polygon"))
            continue
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            report.rejected.append((index, f"coordinates out of range after reprojection: bounds {geom.bounds}"))
            continue
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            geom = shapely.make_valid(geom)
            report.repaired.append((index, reason))
        multi = polygonal_part(geom)
        if multi is None or multi.area == 0:
            report.rejected.append((index, "no area left after repair"))
            continue
        if code in seen:
            report.rejected.append((index, f"duplicate code {code!r}"))
            continue
        seen.add(code)
        records.append(ZoneRecord(code=code, name=name, geometry=multi, properties=props))
    return records, report
