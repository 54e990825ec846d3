"""Read street centerlines and landmarks from the files a city already has, into gazetteer entries.

- Streets: any line file geopandas/pyogrio reads (TIGER/Line shapefiles with FULLNAME; OpenStreetMap
  extracts as GeoJSON/GPKG with name, alt_name and highway; NYC LION/CSCL-like files or City Planning's
  layers with a street name and a borough column). The name, alternate-name and borough columns are
  detected from common spellings or named by the caller; lines are reprojected to EPSG:4326 and grouped
  per (name, borough) by geo.streets.group_streets.
- Landmarks: GeoJSON (or any vector file) or CSV with WKT or lon/lat columns; points or polygons, with a
  name and aliases. Points that share a name within LANDMARK_CLUSTER_M are one landmark (a bridge's many
  points become its line of points, and its uncertainty their extent). `preset="nyc-poi"` reads NYC's
  Points of Interest (DoITT/CSCL COMMONPLACE): facility codes become kinds, bridges and tunnels get their
  word ("BROOKLYN" with the bridge code is "Brooklyn Bridge"), and kinds that are noise for locating
  posts (buoys, schools, churches, housing) are left out.

Both return entries and leave storage to the caller (geo.gazetteer_store.save_entries replaces a
source's earlier entries, so a re-import is idempotent). Nothing runs at import.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from shapely import wkt as shapely_wkt
from shapely.geometry import MultiPoint, Point
from shapely.geometry.base import BaseGeometry

from geo.gazetteer import KINDS, STREET_SUFFIXES, GazetteerEntry, normalise_name
from geo.streets import StreetLine, group_streets

NAME_COLUMNS = ("FULLNAME", "name", "Route_Name", "street", "st_name", "stname", "street_name", "full_stree",
                "FacilityName", "Stop Name", "NAME")
ALT_COLUMNS = ("alt_name", "official_name", "old_name", "short_name", "alternates", "aliases")
BOROUGH_COLUMNS = ("borough", "boroname", "boro_name", "lboro", "boro_code", "borocode", "county")
LON_COLUMNS = ("lon", "longitude", "lng", "long", "x", "gtfs longitude")
LAT_COLUMNS = ("lat", "latitude", "y", "gtfs latitude")
WKT_COLUMNS = ("wkt", "geometry", "the_geom", "geom")
# OpenStreetMap ways that are not streets people name in a post.
_OSM_SKIP = frozenset({"footway", "path", "steps", "cycleway", "bridleway", "corridor", "proposed", "construction",
                       "platform", "elevator", "track", "bus_stop", "raceway"})
_NYC_BORO = {"1": "Manhattan", "2": "Bronx", "3": "Brooklyn", "4": "Queens", "5": "Staten Island"}
LANDMARK_CLUSTER_M = 3_000.0
# Stations of one name are one only when they are one complex (platforms, entrances): Manhattan has four
# "125 St" stations on four lines within 2 km, told apart by the line a post names.
STATION_CLUSTER_M = 400.0
# Everyday names of NYC crossings that the Points of Interest file names officially.
NYC_POI_ALIASES = {
    "ed koch queensboro bridge": ("Queensboro Bridge", "59th Street Bridge", "59 St Bridge"),
    "robert f kennedy bridge": ("RFK Bridge", "Triborough Bridge", "Triboro Bridge"),
    "hugh l carey tunnel": ("Brooklyn-Battery Tunnel", "Battery Tunnel"),
    "whitestone bridge": ("Bronx-Whitestone Bridge",),
    "verrazzano bridge": ("Verrazano Bridge", "Verrazzano-Narrows Bridge", "Verrazano-Narrows Bridge", "Verrazzano",
                          "Verrazano"),
    "grand central terminal": ("Grand Central",),
    "george washington bridge": ("GWB", "GW Bridge"),
}
# Words after which a name is a place's full name and its first part its everyday one ("Kings Plaza
# Shopping Center" -> "Kings Plaza"); a station part naming a terminal or venue ("34 St-Penn Station").
_TRAILING_WORDS = (" shopping center", " shopping ctr", " mall")
_STATION_PART_WORDS = ("station", "stadium", "terminal", "center", "ctr", "airport")
# NYC Points of Interest: (FACILITY_T, FACI_DOM) -> (kind, word added to the name when missing).
NYC_POI = {
    (6, 1): ("landmark", ""), (6, 2): ("station", ""), (6, 4): ("landmark", ""), (6, 7): ("landmark", ""),
    (6, 8): ("landmark", "Bridge"), (6, 9): ("landmark", "Tunnel"),
    (7, 1): ("landmark", ""), (7, 3): ("landmark", ""),
    (4, 1): ("landmark", ""), (4, 2): ("landmark", ""), (4, 4): ("landmark", ""), (4, 8): ("landmark", ""),
    (3, 3): ("landmark", ""), (3, 4): ("landmark", ""),
    (10, 1): ("landmark", ""), (13, 1): ("landmark", ""), (13, 2): ("landmark", ""),
}


# How a caller hears progress (the CLI passes tocsin.progress.progress): called with the total, a description
# and a unit, it gives a context whose value is `advance(n)`. geo stays free of the command line's display.
Progress = Callable[[int, str, str], AbstractContextManager[Callable[[int], None]]]


def _silent(total: int, description: str, unit: str) -> AbstractContextManager[Callable[[int], None]]:
    return nullcontext(lambda n=1: None)


class GazetteerFileError(ValueError):
    """A file or column problem, with a message naming the file and the column."""


def _find_column(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], path: Path,
                 what: str, *, required: bool = True) -> str | None:
    if wanted:
        if wanted not in columns:
            raise GazetteerFileError(f"{path}: {what} column {wanted!r} is not one of {list(columns)}")
        return wanted
    lower = {c.lower(): c for c in columns}
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()]
    if required:
        raise GazetteerFileError(f"{path}: no {what} column found among {list(columns)}; name it with an option")
    return None


def _text(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def _split(v) -> list[str]:
    return [a.strip() for a in _text(v).replace("|", ";").split(";") if a.strip()]


def _display(name: str) -> str:
    """ALL-CAPS names from city files read better title-cased; "5 AVE" -> "5 Ave"."""
    return " ".join(w.capitalize() if not w[:1].isdigit() else w.lower() for w in name.split()) \
        if name.isupper() else name


def _read_frame(path: Path, layer: str | None):
    import geopandas as gpd

    try:
        gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as exc:  # pyogrio raises its own types for unreadable files
        raise GazetteerFileError(f"{path}: cannot read ({exc})") from None
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    return gdf


def _check_lonlat(g: BaseGeometry, where: str) -> None:
    w, s, e, n = g.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise GazetteerFileError(f"{where}: geometry bounds {g.bounds} are not lon/lat; the file names no CRS to "
                           "reproject from")


def read_street_lines(path: str | Path, *, name_col: str | None = None, alt_cols: Sequence[str] = (),
                      borough_col: str | None = None, layer: str | None = None,
                      progress: Progress | None = None) -> list[StreetLine]:
    """The named lines of a centerline file, in EPSG:4326; `progress` hears of every row read."""
    path = Path(path)
    gdf = _read_frame(path, layer)
    cols = [c for c in gdf.columns if c != "geometry"]
    name_c = _find_column(cols, name_col, NAME_COLUMNS, path, "street name")
    alt_cs = [_find_column(cols, a, (), path, "alternate name") for a in alt_cols] or \
        [c for c in cols if c.lower() in ALT_COLUMNS]
    boro_c = _find_column(cols, borough_col, BOROUGH_COLUMNS, path, "borough", required=False)
    highway = next((c for c in cols if c.lower() == "highway"), None)
    out = []
    with (progress or _silent)(len(gdf), "streets", "row") as advance:
        for i, row in enumerate(gdf.itertuples(index=False)):
            advance(1)
            rec = row._asdict()
            g = rec["geometry"]
            name = _text(rec[name_c])
            if g is None or g.is_empty or not name or g.geom_type not in ("LineString", "MultiLineString"):
                continue
            if highway and _text(rec[highway]) in _OSM_SKIP:
                continue
            _check_lonlat(g, f"{path} feature {i + 1}")
            borough = _text(rec[boro_c]) if boro_c else ""
            if boro_c and boro_c.lower() in ("lboro", "boro_code", "borocode"):
                borough = _NYC_BORO.get(borough, borough)
            alts = tuple(_display(a) for c in alt_cs for a in _split(rec[c]))
            out.append(StreetLine(_display(name), g, alts, borough or None))
    return out


def read_streets(path: str | Path, *, source: str | None = None, region: str | None = None,
                 progress: Progress | None = None, **kw) -> list[GazetteerEntry]:
    """Street entries (one per name and borough) from a centerline file."""
    path = Path(path)
    return group_streets(read_street_lines(path, progress=progress, **kw), source=source or path.name, region=region)


def _rows(path: Path, layer: str | None, wkt_col, lon_col, lat_col):
    """(properties, geometry) pairs of a landmark file."""
    if path.suffix.lower() == ".csv":
        import pandas as pd

        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        cols = list(df.columns)
        wkt_c = _find_column(cols, wkt_col, WKT_COLUMNS, path, "WKT", required=False) if not (lon_col or lat_col) \
            else None
        lon_c = lat_c = None
        if wkt_c is None:
            lon_c = _find_column(cols, lon_col, LON_COLUMNS, path, "longitude")
            lat_c = _find_column(cols, lat_col, LAT_COLUMNS, path, "latitude")
        out = []
        for i, rec in enumerate(df.to_dict("records"), start=2):
            where = f"{path} row {i}"
            if wkt_c:
                try:
                    g = shapely_wkt.loads(rec[wkt_c])
                except Exception:  # shapely raises several types for bad WKT
                    raise GazetteerFileError(f"{where}: {wkt_c} {rec[wkt_c][:60]!r} is not WKT") from None
            else:
                if not rec[lon_c].strip() and not rec[lat_c].strip():
                    continue  # a row the file could not place: nothing to locate it by
                try:
                    g = Point(float(rec[lon_c]), float(rec[lat_c]))
                except ValueError:
                    raise GazetteerFileError(f"{where}: {lon_c}/{lat_c} {rec[lon_c]!r}, {rec[lat_c]!r} are not "
                                       "numbers") from None
            _check_lonlat(g, where)
            out.append((rec, g))
        return cols, out
    gdf = _read_frame(path, layer)
    cols = [c for c in gdf.columns if c != "geometry"]
    return cols, [({c: r[c] for c in cols}, r["geometry"]) for r in gdf.to_dict("records")]


def read_landmarks(path: str | Path, *, name_col: str | None = None, alias_cols: Sequence[str] = (),
                   kind: str = "landmark", kind_col: str | None = None, lon_col: str | None = None,
                   lat_col: str | None = None, wkt_col: str | None = None, layer: str | None = None,
                   preset: str | None = None, source: str | None = None, region: str | None = None,
                   code_col: str | None = None, progress: Progress | None = None) -> list[GazetteerEntry]:
    """Landmark (or station) entries from a GeoJSON/vector file or a CSV with WKT or lon/lat columns.
    `code_col` is kept as each entry's code; for stations, the lines that serve it ("A C E"), so that a
    post naming a line ("125 St on the A train") picks the station that line serves. Rows of one name
    that fold into one place join their codes."""
    path = Path(path)
    if kind not in KINDS:
        raise GazetteerFileError(f"kind {kind!r} is not one of {sorted(KINDS)}")
    if preset not in (None, "nyc-poi"):
        raise GazetteerFileError(f"preset {preset!r} is not one of ['nyc-poi']")
    cols, rows = _rows(path, layer, wkt_col, lon_col, lat_col)
    name_c = _find_column(cols, name_col, NAME_COLUMNS, path, "name")
    alias_cs = [_find_column(cols, a, (), path, "alias") for a in alias_cols] or \
        [c for c in cols if c.lower() in ALT_COLUMNS]
    kind_c = _find_column(cols, kind_col, (), path, "kind") if kind_col else None
    code_c = _find_column(cols, code_col, (), path, "code") if code_col else None
    groups: dict[tuple[str, str], list[dict]] = {}
    with (progress or _silent)(len(rows), "landmarks", "row") as advance:
        for rec, g in rows:
            advance(1)
            name = _text(rec.get(name_c))
            if not name or g is None or g.is_empty:
                continue
            k = _text(rec.get(kind_c)) if kind_c else kind
            if preset == "nyc-poi":
                try:
                    code = (int(float(rec["FACILITY_T"])), int(float(rec["FACI_DOM"])))
                except (KeyError, ValueError):
                    raise GazetteerFileError(f"{path}: preset nyc-poi needs numeric FACILITY_T and FACI_DOM columns") from None
                if code not in NYC_POI:
                    continue
                k, word = NYC_POI[code]
                if word and not any(c.isalpha() for c in name):
                    continue  # "3" with the bridge code: a bridge number, not a name
                if word and word.lower() not in name.lower():
                    name = f"{_display(name)} {word}"
            if k not in KINDS:
                raise GazetteerFileError(f"{path}: kind {k!r} of {name!r} is not one of {sorted(KINDS)}")
            name = _display(name)
            key = (normalise_name(name), k)
            if not key[0]:
                continue
            aliases = [_display(a) for c in alias_cs for a in _split(rec.get(c))] + _derived_aliases(name, k, preset)
            codes = _text(rec.get(code_c)).split() if code_c else []
            clusters = groups.setdefault(key, [])
            reach = STATION_CLUSTER_M if k == "station" else LANDMARK_CLUSTER_M
            home = next((c for c in clusters if c["anchor"].distance(g) * 111_320 * 0.76 <= reach), None)
            if home is None:
                clusters.append({"name": name, "anchor": g, "geoms": [g], "aliases": aliases, "codes": codes})
            else:
                home["geoms"].append(g)
                home["aliases"].extend(aliases)
                home["codes"].extend(codes)
    src = source or path.name
    out = []
    for (_key, k), clusters in groups.items():
        for c in clusters:
            geom, radius = _landmark_geometry(c["geoms"])
            aliases = tuple(a for a in dict.fromkeys(c["aliases"]) if normalise_name(a) != _key)
            code = " ".join(dict.fromkeys(c["codes"])) or None
            out.append(GazetteerEntry(name=c["name"], kind=k, geometry=geom, alternates=aliases, source=src,
                                      region=region, radius_m=radius, code=code))
    return out


def _derived_aliases(name: str, kind: str, preset: str | None) -> list[str]:
    """Everyday names a landmark file leaves out: a mall without "Mall"/"Shopping Center", a station's part
    that names a terminal or venue, and the NYC preset's known aliases."""
    out = []
    low = name.lower()
    for w in _TRAILING_WORDS:
        if low.endswith(w) and len(low) > len(w) + 3:
            base = name[:-len(w)].strip()
            if normalise_name(base).split()[-1] not in STREET_SUFFIXES:  # "Fulton Street Mall" is not Fulton St
                out += [base, f"{base} Mall"]
    if kind == "station" and "-" in name:
        out += [p.strip() for p in name.split("-") if p.strip().lower().endswith(_STATION_PART_WORDS)]
    if preset == "nyc-poi":
        out += NYC_POI_ALIASES.get(normalise_name(name), ())
    return out


def _landmark_geometry(geoms: list[BaseGeometry]) -> tuple[BaseGeometry, float | None]:
    """One point or polygon as is (the gazetteer sizes it); several points as a multipoint whose
    uncertainty is half their extent, so a bridge given as points along its span is as long as it."""
    if len(geoms) == 1:
        return geoms[0], None
    if all(g.geom_type == "Point" for g in geoms):
        mp = MultiPoint(geoms)
        w, s, e, n = mp.bounds
        half = math.hypot((e - w) * 111_320 * math.cos(math.radians((s + n) / 2)), (n - s) * 110_574) / 2
        return mp, max(half, 100.0)
    from shapely.ops import unary_union

    return unary_union(geoms), None
