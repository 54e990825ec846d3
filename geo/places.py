"""Places in PostGIS: the city this Tocsin serves, its boundary, time zone, languages and context layers.

A place is a record (migration 0023): a name, the jurisdiction boundary (MultiPolygon, EPSG:4326), an
IANA time zone, the languages posts are read in, the region code its names carry, and which zone layer
plays which context level for the geotagger (`{"borough": "borough", "nta": "neighbourhood"}`). One place
is active: its boundary is the jurisdiction of reports and posts, and the geotagger reads its names
(gazetteer entries loaded for it, and those loaded for no place). Without a place, the jurisdiction is
TOCSIN_JURISDICTION_BBOX and every gazetteer entry is read, as before places existed.

`tocsin place init` (tocsin.cli_place) sets one up; geo.place_setup holds the steps it runs, and turns the
zones of context layers into gazetteer areas.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.errors import InvalidGeometry
from geo.jurisdiction import Jurisdiction
from geo.place_checks import CONTEXT_KINDS

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class Place:
    """`boundary` is a MultiPolygon in EPSG:4326; `context` maps zone layer names to context levels."""

    name: str
    boundary: BaseGeometry
    timezone: str
    languages: tuple[str, ...] = ("en",)
    region: str | None = None
    context: dict[str, str] = field(default_factory=dict)

    def jurisdiction(self) -> Jurisdiction:
        return Jurisdiction(tuple(self.boundary.bounds), self.boundary, self.name)


def check_place(place: Place) -> None:
    """ValueError naming the bad value: a name, time zone, boundary or context level that cannot be used."""
    if not place.name or place.name[0] in "_-" or not _NAME_CHARS.issuperset(place.name) or len(place.name) > 64:
        raise ValueError(f"place name {place.name!r} is not lower-case letters, digits, '-' or '_' (at most 64)")
    try:
        ZoneInfo(place.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time zone {place.timezone!r} is not an IANA time zone such as Europe/London") from None
    if place.boundary.geom_type not in ("Polygon", "MultiPolygon") or place.boundary.is_empty:
        raise ValueError(f"boundary is a {place.boundary.geom_type}, not a polygon")
    if not place.boundary.is_valid:
        raise ValueError(f"boundary is not a valid polygon ({shapely.is_valid_reason(place.boundary)})")
    w, s, e, n = place.boundary.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ValueError(f"boundary bounds {place.boundary.bounds} are not lon/lat in EPSG:4326")
    bad = {layer: level for layer, level in place.context.items() if level not in CONTEXT_KINDS}
    if bad:
        raise ValueError(f"context levels {bad} are not among {sorted(CONTEXT_KINDS)}")


def _multi(g: BaseGeometry) -> MultiPolygon:
    return g if isinstance(g, MultiPolygon) else MultiPolygon([g])


def save_place(session: Session, *, place: Place, activate: bool = True) -> None:
    """Insert or replace the place by name; with `activate` it becomes the active place."""
    try:
        check_place(place)
    except ValueError as exc:
        raise InvalidGeometry(str(exc), place.name) from None
    if activate:
        session.execute(text("UPDATE places SET active = false, updated_at = now() WHERE active AND name <> :n"),
                        {"n": place.name})
    session.execute(text(
        """
        INSERT INTO places (name, boundary, timezone, languages, region, context, active)
        VALUES (:name, ST_GeomFromWKB(:wkb, 4326), :tz, CAST(:langs AS text[]), :region, CAST(:context AS jsonb),
                :active)
        ON CONFLICT (name) DO UPDATE SET boundary = EXCLUDED.boundary, timezone = EXCLUDED.timezone,
            languages = EXCLUDED.languages, region = EXCLUDED.region, context = EXCLUDED.context,
            active = EXCLUDED.active OR places.active, updated_at = now()
        """), {"name": place.name, "wkb": shapely.to_wkb(_multi(place.boundary)), "tz": place.timezone,
               "langs": list(place.languages), "region": place.region, "context": _json(place.context),
               "active": activate})


def _json(value: object) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def activate(session: Session, *, name: str) -> bool:
    """Make `name` the active place; False when there is no such place."""
    if session.execute(text("SELECT 1 FROM places WHERE name = :n"), {"n": name}).scalar() is None:
        return False
    session.execute(text("UPDATE places SET active = false, updated_at = now() WHERE active AND name <> :n"),
                    {"n": name})
    session.execute(text("UPDATE places SET active = true, updated_at = now() WHERE name = :n AND NOT active"),
                    {"n": name})
    return True


_SELECT = ("SELECT name, ST_AsBinary(boundary), timezone, languages, region, context, active FROM places ")


def _place(row) -> Place:
    return Place(name=row[0], boundary=shapely.from_wkb(bytes(row[1])), timezone=row[2],
                 languages=tuple(row[3] or ()), region=row[4], context=dict(row[5] or {}))


def get_place(session: Session, *, name: str) -> Place | None:
    row = session.execute(text(_SELECT + "WHERE name = :n"), {"n": name}).first()
    return None if row is None else _place(row)


def active_place(session: Session) -> Place | None:
    """The active place, or None when no place is set up."""
    row = session.execute(text(_SELECT + "WHERE active")).first()
    return None if row is None else _place(row)


def list_places(session: Session) -> list[tuple[str, str, bool]]:
    """(name, time zone, active) of every place."""
    return [tuple(r) for r in session.execute(text("SELECT name, timezone, active FROM places ORDER BY name"))]


def active_timezone(session: Session, *, default: str) -> str:
    """The active place's time zone, or `default` without a place."""
    return session.execute(text("SELECT timezone FROM places WHERE active")).scalar() or default


_STAMP = text("SELECT count(*), max(updated_at) FROM places")


class JurisdictionCache:
    """The active place's jurisdiction, per process, read again when the places table changes (looked at no
    more than every `recheck_s`); without a place, the configured box."""

    def __init__(self, *, recheck_s: float = 5.0) -> None:
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._place: Jurisdiction | None = None
        self._checked = float("-inf")

    def due(self) -> bool:
        """Whether the next `get` asks the database (a caller on an event loop runs that one in a thread)."""
        return time.monotonic() - self._checked >= self._recheck_s

    def get(self, session: Session | None, *, fallback_bbox: tuple[float, float, float, float]) -> Jurisdiction:
        """The jurisdiction; `session` may be None when not `due()`."""
        if session is not None and self.due():
            stamp = tuple(session.execute(_STAMP).one())
            with self._lock:
                if stamp != self._stamp:
                    place = active_place(session) if stamp[0] else None
                    self._place = place.jurisdiction() if place is not None else None
                    self._stamp = stamp
                self._checked = time.monotonic()
        place = self._place
        return place if place is not None else Jurisdiction(tuple(fallback_bbox))
