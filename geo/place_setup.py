"""Setting up a place from the files a city already has (`tocsin place init`): read and check everything
first, then write it all in the caller's transaction (never committed here).

`read_setup` reads the boundary, zone layers, names, streets and landmarks and checks them
(geo.place_checks); `write_setup` loads the layers, saves the place (active) and its gazetteer entries:
the names, the streets and landmarks, and the zones of its context layers as areas of their level's
kind. Every gazetteer entry is stored for the place, so another place's names are never read there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shapely.geometry import MultiPolygon
from shapely.ops import unary_union
from sqlalchemy.orm import Session

from geo import gazetteer_store, zone_store
from geo.gazetteer import GazetteerEntry
from geo.place_checks import CONTEXT_KINDS, Problem, check_layer, check_names
from geo.place_names import read_names
from geo.places import Place, check_place, save_place
from geo.zones import ZoneRecord, read_zone_file

Progress = Callable[[int, str, str], object]  # tocsin.progress.progress: (total, description, unit) -> context


@dataclass(frozen=True)
class LayerSpec:
    """A zone layer to load: `--layer NAME=FILE[:CODE_FIELD[:NAME_FIELD]]`, with its context level (or None)."""

    name: str
    path: Path
    code_field: str | None = None
    name_field: str | None = None
    level: str | None = None

    @classmethod
    def parse(cls, value: str, levels: dict[str, str]) -> LayerSpec:
        """From NAME=FILE[:CODE_FIELD[:NAME_FIELD]]; the level is `levels[NAME]`, else NAME when NAME is a level."""
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise ValueError(f"--layer {value!r} is not NAME=FILE[:CODE_FIELD[:NAME_FIELD]]")
        parts = [rest] if Path(rest).exists() else rest.split(":")
        if len(parts) > 3:
            raise ValueError(f"--layer {value!r} is not NAME=FILE[:CODE_FIELD[:NAME_FIELD]]")
        path, code, zone_name = (parts + ["", ""])[:3]
        name = name.strip()
        level = levels.get(name) or (name if name in CONTEXT_KINDS else None)
        return cls(name, Path(path), code or None, zone_name or None, level)


def _named(records: list[ZoneRecord], name_field: str | None) -> list[ZoneRecord]:
    """Zones named from a `name` (or `...name`) property when no name field was given (`zones load` guesses
    it only with the code field)."""
    if name_field is not None or not records:
        return records
    props = records[0].properties
    field_ = next((k for k in props if k.lower() == "name"), None) or \
        next((k for k in props if k.lower().endswith("name")), None)
    if field_ is None:
        return records
    return [ZoneRecord(r.code, str(r.properties.get(field_) or r.code), r.geometry, r.properties) for r in records]


@dataclass
class Setup:
    """Everything read for a place, and what the checks found."""

    place: Place
    layers: list[tuple[LayerSpec, list[ZoneRecord]]] = field(default_factory=list)
    entries: list[GazetteerEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]


def read_boundary(path: Path, *, assume_crs: str | None = None) -> MultiPolygon:
    """The union of a polygon file's features (any format and CRS `zones load` reads), as a MultiPolygon."""
    records, _ = read_zone_file(path, assume_crs=assume_crs)
    if not records:
        raise ValueError(f"boundary file {str(path)!r} holds no polygon")
    g = unary_union([r.geometry for r in records])
    return g if isinstance(g, MultiPolygon) else MultiPolygon([g])


def context_entries(place: Place, layer: str, level: str, records: Sequence[ZoneRecord]) -> list[GazetteerEntry]:
    """The zones of a context layer as gazetteer areas of the level's kind (a London borough, a ward)."""
    kind = CONTEXT_KINDS[level]
    return [GazetteerEntry(name=r.name.strip(), kind=kind, geometry=r.geometry, source=f"place:{place.name}:{layer}",
                           code=r.code, region=place.region, priority=r.geometry.area)
            for r in records if (r.name or "").strip() and r.name.strip() != r.code]


def read_setup(place: Place, *, layers: Sequence[LayerSpec], names: Sequence[Path] = (),
               streets: Sequence[Path] = (), landmarks: Sequence[Path] = (), assume_crs: str | None = None,
               progress: Progress | None = None) -> Setup:
    """Read and check a place's files; nothing is written. Unreadable files are problems, not exceptions."""
    from geo.errors import ZoneFileError
    from geo.street_import import GazetteerFileError, read_landmarks, read_streets

    check_place(place)
    setup = Setup(place)
    for spec in layers:
        try:
            records, report = read_zone_file(spec.path, code_field=spec.code_field, name_field=spec.name_field,
                                             assume_crs=assume_crs, guess_code=True)
            records = _named(records, spec.name_field)
        except ZoneFileError as exc:
            setup.problems.append(Problem(spec.name, exc.message))
            continue
        setup.notes.append(f"layer {spec.name}: {len(records)} zones, codes from {report.code_field!r}"
                           + (f", context level {spec.level}" if spec.level else ""))
        setup.problems += check_layer(spec.name, place.boundary, records, rejected=report.rejected)
        setup.layers.append((spec, records))
        if spec.level:
            setup.entries += context_entries(place, spec.name, spec.level, records)
    for path in names:
        try:
            found = read_names(path, boundary=place.boundary, region=place.region,
                               source=f"place:{place.name}:{Path(path).name}")
        except (ValueError, OSError) as exc:
            setup.problems.append(Problem(str(path), str(exc)))
            continue
        setup.problems += check_names(str(path), found, place.boundary)
        setup.entries += found
    for kind, paths in (("streets", streets), ("landmarks", landmarks)):
        for path in paths:
            source = f"place:{place.name}:{Path(path).name}"
            try:
                found = (read_streets(path, source=source, region=place.region, progress=progress) if kind == "streets"
                         else read_landmarks(path, source=source, region=place.region, progress=progress))
            except (GazetteerFileError, ValueError, OSError) as exc:
                setup.problems.append(Problem(str(path), str(exc)))
                continue
            setup.problems += check_names(str(path), found, place.boundary)
            setup.entries += found
    return setup


def write_setup(session: Session, *, setup: Setup, progress: Progress | None = None) -> None:
    """Load the layers, save the place (active) and replace its gazetteer entries. Never commits."""
    place = setup.place
    context = {spec.name: spec.level for spec, _ in setup.layers if spec.level}
    for spec, records in setup.layers:
        if progress is None:
            zone_store.upsert_zones(session, layer=spec.name, records=records, description=f"place {place.name}")
            continue
        with progress(len(records), f"zones {spec.name}", "zone") as advance:
            zone_store.upsert_zones(session, layer=spec.name, records=records, description=f"place {place.name}",
                                    progress=advance)
    save_place(session, place=Place(place.name, place.boundary, place.timezone, place.languages, place.region,
                                    context), activate=True)
    gazetteer_store.delete_place(session, place=place.name)
    chunk = 500
    if progress is None:
        gazetteer_store.save_entries(session, entries=setup.entries, replace_sources=False, place=place.name)
        return
    with progress(len(setup.entries), "gazetteer entries", "entry") as advance:
        for start in range(0, len(setup.entries), chunk):
            part = setup.entries[start:start + chunk]
            gazetteer_store.save_entries(session, entries=part, replace_sources=False, place=place.name)
            advance(len(part))
