"""The gazetteer in PostGIS: save entries, read them back, and a cached `GazetteerIndex` (`IndexCache`).

Building the index (Aho-Corasick over every name) takes a moment, so each process keeps one per
database and rebuilds it only when the table changed: every `IndexCache.get` costs one small query
(row count, newest load time, highest id), so a `tocsin gazetteer load` in another process is picked up
by the running API on its next batch. `IndexCache.reload` forces a rebuild. The app owns its cache
(ingest.posts.state.PostState), not this module. Street intersections are derived
from the stored street lines when the index is built (geo.streets.derive_intersections), so the post
pipeline's forked workers inherit them in memory with the rest of the index.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.gazetteer import GazetteerEntry, GazetteerIndex, normalise_name

_INSERT = text(
    """
    INSERT INTO gazetteer_entries (name, normalised_name, kind, alternates, geom, priority, source, code, region,
                                   radius_m, place)
    SELECT u.name, u.nname, u.kind, CAST(u.alts AS text[]), ST_GeomFromWKB(u.wkb, 4326), u.priority, u.source,
           u.code, u.region, u.radius_m, CAST(:place AS varchar)
    FROM unnest(CAST(:name AS text[]), CAST(:nname AS text[]), CAST(:kind AS text[]), CAST(:alts AS text[]),
                CAST(:wkb AS bytea[]), CAST(:priority AS float8[]), CAST(:source AS text[]), CAST(:code AS text[]),
                CAST(:region AS text[]), CAST(:radius_m AS float8[]))
         AS u(name, nname, kind, alts, wkb, priority, source, code, region, radius_m)
    """
)

# The active place is part of the stamp: switching places (geo.places) rebuilds the index with its names.
_STAMP = text("SELECT count(*), coalesce(max(id), 0), max(loaded_at), (SELECT name FROM places WHERE active) "
              "FROM gazetteer_entries")
# Entries of the active place and those loaded for no place; every entry when no place is active.
_OF_ACTIVE_PLACE = ("WHERE place IS NULL OR NOT EXISTS (SELECT FROM places WHERE active) "
                    "OR place = (SELECT name FROM places WHERE active) ")


def _pg_array_literal(values: Sequence[str]) -> str:
    """A text[] literal; alternates travel as one string each so unnest keeps one row per entry."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def save_entries(session: Session, *, entries: Iterable[GazetteerEntry], replace_sources: bool = True,
                 place: str | None = None) -> int:
    """Insert entries; with replace_sources, entries already stored from the same sources are replaced
    first, so loading the same file twice leaves one copy. `place`: the place (geo.places) they are
    loaded for; None serves every place."""
    entries = list(entries)
    if not entries:
        return 0
    if replace_sources:
        session.execute(text("DELETE FROM gazetteer_entries WHERE source = ANY(:sources)"),
                        {"sources": sorted({e.source for e in entries})})
    session.execute(_INSERT, {
        "name": [e.name for e in entries],
        "nname": [normalise_name(e.name) for e in entries],
        "kind": [e.kind for e in entries],
        "alts": [_pg_array_literal(e.alternates) for e in entries],
        "wkb": list(shapely.to_wkb([e.geometry for e in entries])),
        "priority": [float(e.priority) for e in entries],
        "source": [e.source for e in entries],
        "code": [e.code for e in entries],
        "region": [e.region for e in entries],
        "radius_m": [e.radius_m for e in entries],
        "place": place,
    })
    return len(entries)


def delete_source(session: Session, *, source: str) -> int:
    return session.execute(text("DELETE FROM gazetteer_entries WHERE source = :s"), {"s": source}).rowcount


def delete_place(session: Session, *, place: str) -> int:
    """Delete the entries loaded for a place (before its setup is loaded again)."""
    return session.execute(text("DELETE FROM gazetteer_entries WHERE place = :p"), {"p": place}).rowcount


def load_entries(session: Session, *, every_place: bool = False) -> list[GazetteerEntry]:
    """The stored entries the active place reads (every one with `every_place`), in insertion order."""
    rows = session.execute(text(
        "SELECT name, kind, ST_AsBinary(geom), alternates, priority, source, code, region, radius_m "
        "FROM gazetteer_entries " + ("" if every_place else _OF_ACTIVE_PLACE) + "ORDER BY id")).all()
    geoms = shapely.from_wkb([bytes(r[2]) for r in rows]) if rows else []
    return [
        GazetteerEntry(name=r[0], kind=r[1], geometry=g, alternates=tuple(r[3] or ()), priority=float(r[4]),
                       source=r[5], code=r[6], region=r[7], radius_m=r[8])
        for r, g in zip(rows, geoms)
    ]


def count_by_source(session: Session) -> dict[str, int]:
    return dict(session.execute(text(
        "SELECT source, count(*) FROM gazetteer_entries GROUP BY source ORDER BY source")).all())


def _key(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=True)


class IndexCache:
    """The index of the stored gazetteer, per database, rebuilt only when the table has changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple, GazetteerIndex]] = {}

    def get(self, session: Session) -> GazetteerIndex:
        stamp = tuple(session.execute(_STAMP).one())
        key = _key(session)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
        index = build_index(load_entries(session))
        with self._lock:
            self._cache[key] = (stamp, index)
        return index

    def reload(self, session: Session) -> GazetteerIndex:
        """Rebuild the index from the table now."""
        with self._lock:
            self._cache.pop(_key(session), None)
        return self.get(session)


def build_index(entries: list[GazetteerEntry]) -> GazetteerIndex:
    """The index of `entries`, with the crossings of its street entries derived up front, and the numbered
    streets a grid implies (geo.street_grid) added with their crossings."""
    from geo.street_grid import fill_grid
    from geo.streets import derive_intersections

    crossings = derive_intersections(entries)
    extra, extra_crossings = fill_grid(entries, crossings)
    return GazetteerIndex([*entries, *extra], crossings={**crossings, **extra_crossings})
