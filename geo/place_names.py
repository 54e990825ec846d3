"""A place's names from the files a city has: a GeoNames dump (tab-separated, as geonames.org publishes
them per country) or a CSV/GeoJSON of names with alternate names (geo.gazetteer_entries.load_entries_file).

GeoNames rows are kept inside the boundary (a small margin around it): populated places (class P) and
their sections become neighbourhoods, administrative areas (class A) boroughs, spots, parks and buildings
(S, L) landmarks. Alternate names are kept when written in Latin letters (GeoNames' main file does not
say which language a name is in, so that is the filter for the place's Latin-script languages).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

from geo.gazetteer import GazetteerEntry, load_entries_file, normalise_name

_GEONAMES_KIND = {"P": "neighbourhood", "A": "borough", "S": "landmark", "L": "landmark"}
_MARGIN_DEG = 0.01  # about a kilometre: a name on the city line belongs to it
_MAX_ALTERNATES = 12


def _latin(s: str) -> bool:
    return all(c.isascii() or not c.isalpha() or unicodedata.name(c, "").startswith("LATIN") for c in s)


def is_geonames_dump(path: Path) -> bool:
    """A .txt whose first line has GeoNames' 19 tab-separated columns."""
    if path.suffix.lower() not in (".txt", ".tsv"):
        return False
    with path.open(encoding="utf-8") as fh:
        first = fh.readline()
    return first.count("\t") == 18


def read_geonames(path: Path, *, boundary: BaseGeometry, region: str | None, source: str) -> list[GazetteerEntry]:
    """Entries from a GeoNames dump, those inside the boundary only."""
    inside = prep(boundary.buffer(_MARGIN_DEG))
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 19:
                raise ValueError(f"{path} line {n}: {len(cols)} columns, a GeoNames dump has 19")
            kind = _GEONAMES_KIND.get(cols[6])
            if kind is None or not cols[1].strip():
                continue
            try:
                lat, lon = float(cols[4]), float(cols[5])
            except ValueError:
                raise ValueError(f"{path} line {n}: latitude {cols[4]!r} or longitude {cols[5]!r} is not a number")
            pt = Point(lon, lat)
            if not inside.contains(pt):
                continue
            key = normalise_name(cols[1])
            alts = [a for a in dict.fromkeys(a.strip() for a in cols[3].split(","))
                    if a and _latin(a) and normalise_name(a) and normalise_name(a) != key and not a.isdigit()]
            out.append(GazetteerEntry(
                name=cols[1].strip(), kind=kind, geometry=pt, alternates=tuple(alts[:_MAX_ALTERNATES]),
                priority=float(cols[14] or 0), source=source, code=cols[0],
                region=region or (cols[8] or None)))
    return out


def read_names(path: Path, *, boundary: BaseGeometry, region: str | None, source: str) -> list[GazetteerEntry]:
    """Names from a GeoNames dump, or from a CSV/GeoJSON (an entry without a kind is a neighbourhood); each
    gets the place's region when it has none, and `source`."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"names file {str(path)!r} does not exist")
    if is_geonames_dump(path):
        return read_geonames(path, boundary=boundary, region=region, source=source)
    entries = load_entries_file(path, default_kind="neighbourhood")
    return [GazetteerEntry(name=e.name, kind=e.kind, geometry=e.geometry, alternates=e.alternates,
                           priority=e.priority, source=source, code=e.code, region=e.region or region,
                           radius_m=e.radius_m) for e in entries]
