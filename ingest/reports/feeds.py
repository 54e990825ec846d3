"""Parse public outage-map snapshots into report bodies; pure (values in, values out).

Two formats:

- ``pge``: PG&E's outage map as archived by simonw/pge-outages: a JSON array of point outages
  (``F_OUTAGE_ID``, ``OUTAGE_LATITUDE``/``OUTAGE_LONGITUDE``, ``EST_CUSTOMERS``, ``OUTAGE_CAUSE``,
  ``OUTAGE_START``/``CURRENT_ETOR`` in epoch milliseconds, ``CREW_CURRENT_STATUS``, ...).
- ``az``: the normalised Arizona utilities format (vmanam1/az-power-outage-archive): an object with
  ``metadata.provider`` and ``outages``, each with latitude/longitude, customers, cause, comments,
  boundary (a street description, or for TEP a SW/NE box), and local ``"YYYY-MM-DD HH:MM[:SS] MST"`` times.

Every outage becomes a power_outage ``ReportCreate``; an outage that cannot be used becomes a
``Rejection`` with its index in the file and the reason, so one bad row never sinks the import.
"""

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError

from ingest.reports.schemas import ReportCreate

CATEGORY = "power_outage"

# PG&E crew status -> report status. Statuses only move forward on import (see feed_import).
PGE_CREW_STATUS = {
    "awaiting crew": "reported",
    "awaiting t-man": "reported",
    "crew enroute": "investigating",
    "t-man enroute": "investigating",
    "crew on site": "restoring",
    "t-man on site": "restoring",
}

# Arizona does not observe daylight saving time, so its feeds say MST all year.
AZ_TIMEZONES = {"MST": timezone(timedelta(hours=-7)), "MDT": timezone(timedelta(hours=-6)), "UTC": UTC}
_AZ_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?)\s+([A-Z]{3,4})$")

_WEB_MERCATOR_R = 6_378_137.0
# PG&E's map returns at most this many outages; a snapshot that size may be missing some.
PGE_PAGE_CAP = 2000


@dataclass(frozen=True)
class FeedItem:
    index: int
    external_id: str
    body: ReportCreate


@dataclass(frozen=True)
class Rejection:
    index: int
    external_id: str | None
    reason: str


@dataclass
class ParsedFeed:
    items: list[FeedItem] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    # False when the snapshot may have been cut off: then absence does not mean restored.
    complete: bool = True

    def envelope(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) around every usable outage, or None when there is none."""
        boxes = [_bounds(item.body.geometry) for item in self.items]
        if not boxes:
            return None
        return (min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[2] for b in boxes), max(b[3] for b in boxes))


    def outside(self, bbox: tuple[float, float, float, float]) -> int:
        """How many usable outages do not touch `bbox` (west, south, east, north)."""
        w, s, e, n = bbox
        return sum(1 for item in self.items
                   for b in [_bounds(item.body.geometry)] if b[2] < w or b[0] > e or b[3] < s or b[1] > n)


class FeedError(ValueError):
    """The snapshot as a whole is unusable (wrong top-level shape); the message says why."""


def _bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    coords = geometry["coordinates"]
    if geometry["type"] == "Point":
        return (coords[0], coords[1], coords[0], coords[1])
    ring = coords[0] if geometry["type"] == "Polygon" else [p for poly in coords for p in poly[0]]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return (min(xs), min(ys), max(xs), max(ys))


def _number(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _epoch_ms(value: Any, name: str) -> datetime | None:
    number = _number(value, name)
    if number is None:
        return None
    try:
        return datetime.fromtimestamp(number / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{name} {value!r} is not a time in epoch milliseconds") from None


def _iso(value: Any, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{name} {value!r} has no time zone")
    return parsed.astimezone(UTC)


def az_time(value: Any, name: str) -> datetime | None:
    """'2026-08-22 02:42 MST' (seconds optional) as an aware UTC datetime."""
    if value is None or value == "":
        return None
    match = _AZ_TIME.match(str(value).strip())
    if match is None:
        raise ValueError(f"{name} {value!r} is not 'YYYY-MM-DD HH:MM[:SS] ZONE'")
    stamp, zone = match.groups()
    if zone not in AZ_TIMEZONES:
        raise ValueError(f"{name} {value!r} has unknown time zone {zone!r}; known: {', '.join(AZ_TIMEZONES)}")
    fmt = "%Y-%m-%d %H:%M:%S" if stamp.count(":") == 2 else "%Y-%m-%d %H:%M"
    try:
        local = datetime.strptime(stamp, fmt)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a valid date and time") from None
    return local.replace(tzinfo=AZ_TIMEZONES[zone]).astimezone(UTC)


def web_mercator_to_lonlat(x: float, y: float) -> tuple[float, float]:
    """EPSG:3857 metres to EPSG:4326 (lon, lat) degrees, on the sphere that projection uses."""
    lon = math.degrees(x / _WEB_MERCATOR_R)
    lat = math.degrees(2 * math.atan(math.exp(y / _WEB_MERCATOR_R)) - math.pi / 2)
    return lon, lat


def _report(external_id: str, geometry: dict[str, Any], **props: Any) -> ReportCreate:
    """Build through the API schema, so feed rows pass exactly the checks a POST would."""
    clean = {k: v for k, v in props.items() if v is not None}
    try:
        return ReportCreate.model_validate({
            "type": "Feature", "geometry": geometry,
            "properties": {"external_id": external_id, "category": CATEGORY, **clean},
        })
    except ValidationError as exc:
        raise ValueError("; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )) from None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _pge_item(row: Any) -> tuple[str | None, ReportCreate]:
    if not isinstance(row, dict):
        raise _Reject(None, f"an outage is a JSON object, got {type(row).__name__}")
    raw_id = row.get("F_OUTAGE_ID")
    external_id = _text(raw_id)
    if external_id is None:
        raise _Reject(None, "F_OUTAGE_ID is missing")
    try:
        lat = _number(row.get("OUTAGE_LATITUDE"), "OUTAGE_LATITUDE")
        lon = _number(row.get("OUTAGE_LONGITUDE"), "OUTAGE_LONGITUDE")
        if lat is None or lon is None:
            # The map also carries the point in Web Mercator; use it when lat/lon are absent.
            x = _number(row.get("geometry_x"), "geometry_x")
            y = _number(row.get("geometry_y"), "geometry_y")
            if x is None or y is None:
                raise ValueError("no location: OUTAGE_LATITUDE/OUTAGE_LONGITUDE and geometry_x/geometry_y are missing")
            lon, lat = web_mercator_to_lonlat(x, y)
        started = _epoch_ms(row.get("OUTAGE_START"), "OUTAGE_START") or _iso(
            row.get("OUTAGE_START_TEXT"), "OUTAGE_START_TEXT")
        etr = (_epoch_ms(row.get("CURRENT_ETOR"), "CURRENT_ETOR")
               or _iso(row.get("CURRENT_ETOR_TEXT"), "CURRENT_ETOR_TEXT")
               or _epoch_ms(row.get("AUTO_ETOR"), "AUTO_ETOR"))
        customers = _number(row.get("EST_CUSTOMERS"), "EST_CUSTOMERS")
        crew = _text(row.get("CREW_CURRENT_STATUS"))
        extent = _text(row.get("OUTAGE_EXTENT"))
        city = _text(row.get("CITY"))
        description = (f"{extent.lower() if extent else 'PG&E'} outage"
                       + (f" in {city}" if city else "") + (f" (crew: {crew})" if crew else ""))
        body = _report(
            external_id, {"type": "Point", "coordinates": [lon, lat]},
            status=PGE_CREW_STATUS.get((crew or "").lower(), "reported"),
            customers_affected=_customers(customers, "EST_CUSTOMERS"),
            cause=_text(row.get("OUTAGE_CAUSE")), started_at=started, estimated_restore_at=etr,
            description=description, city=city,
        )
    except ValueError as exc:
        raise _Reject(external_id, str(exc)) from None
    return external_id, body


def _customers(value: float | None, name: str) -> int | None:
    if value is None:
        return None
    if value != int(value):
        raise ValueError(f"{name} {value!r} is not a whole number")
    return int(value)


def _az_geometry(row: dict[str, Any]) -> dict[str, Any]:
    lat = _number(row.get("latitude"), "latitude")
    lon = _number(row.get("longitude"), "longitude")
    box = row.get("boundary")
    if isinstance(box, dict):
        south = _number(box.get("coordLatSW"), "boundary.coordLatSW")
        west = _number(box.get("coordLngSW"), "boundary.coordLngSW")
        north = _number(box.get("coordLatNE"), "boundary.coordLatNE")
        east = _number(box.get("coordLngNE"), "boundary.coordLngNE")
        if None not in (south, west, north, east) and west < east and south < north:
            ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
            return {"type": "Polygon", "coordinates": [ring]}
        if lat is None or lon is None:
            lat = _number(box.get("coordLatCenter"), "boundary.coordLatCenter")
            lon = _number(box.get("coordLngCenter"), "boundary.coordLngCenter")
    if lat is None or lon is None:
        raise ValueError("no location: latitude/longitude are missing")
    return {"type": "Point", "coordinates": [lon, lat]}


def az_external_id(provider: str, row: dict[str, Any]) -> str:
    """The feed's incident_id when it has one; otherwise provider + start time + location.

    Most Arizona providers publish no outage id. An outage keeps its start time and pin from one
    snapshot to the next, so those identify it; one whose pin moves is seen as a new outage.
    """
    incident = _text(row.get("incident_id"))
    if incident:
        return incident
    key = "|".join((provider, str(row.get("start_time")), f"{row.get('latitude')}", f"{row.get('longitude')}"))
    return f"{provider.lower()}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _az_item(provider: str, row: Any) -> tuple[str | None, ReportCreate]:
    if not isinstance(row, dict):
        raise _Reject(None, f"an outage is a JSON object, got {type(row).__name__}")
    external_id = az_external_id(provider, row)
    try:
        boundary = row.get("boundary")
        place = ", ".join(p for p in (_text(row.get("city")),
                                      _text(boundary) if isinstance(boundary, str) else None) if p)
        comments = _text(row.get("comments"))
        description = " - ".join(p for p in (place or None, comments) if p) or None
        event = (_text(row.get("event")) or "").lower()
        body = _report(
            external_id, _az_geometry(row),
            status="restored" if event == "restored" else "reported",
            customers_affected=_customers(_number(row.get("customers"), "customers"), "customers"),
            cause=_text(row.get("cause")), started_at=az_time(row.get("start_time"), "start_time"),
            estimated_restore_at=az_time(row.get("etr"), "etr"), description=description,
        )
    except ValueError as exc:
        raise _Reject(external_id, str(exc)) from None
    return external_id, body


class _Reject(Exception):
    def __init__(self, external_id: str | None, reason: str) -> None:
        self.external_id = external_id
        self.reason = reason


def _collect(rows: list[Any], one: Callable[[Any], tuple[str | None, ReportCreate]]) -> ParsedFeed:
    parsed = ParsedFeed()
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        try:
            external_id, body = one(row)
        except _Reject as exc:
            parsed.rejected.append(Rejection(index, exc.external_id, exc.reason))
            continue
        if external_id in seen:
            reason = f"duplicate outage id {external_id!r} (first at index {seen[external_id]})"
            parsed.rejected.append(Rejection(index, external_id, reason))
            continue
        seen[external_id] = index
        parsed.items.append(FeedItem(index, external_id, body))
    return parsed


def parse_pge(data: Any) -> ParsedFeed:
    """A PG&E outages.json snapshot (a JSON array)."""
    if not isinstance(data, list):
        raise FeedError(f"a PG&E snapshot is a JSON array of outages, got {type(data).__name__}")
    parsed = _collect(data, _pge_item)
    parsed.complete = len(data) < PGE_PAGE_CAP
    return parsed


def parse_az(data: Any) -> ParsedFeed:
    """A normalised Arizona snapshot ({"metadata": {"provider": ...}, "outages": [...]})."""
    if not isinstance(data, dict) or not isinstance(data.get("outages"), list):
        raise FeedError("an Arizona snapshot is an object with an 'outages' array")
    provider = _text((data.get("metadata") or {}).get("provider"))
    if provider is None:
        raise FeedError("an Arizona snapshot needs metadata.provider (e.g. 'SRP')")
    return _collect(data["outages"], lambda row: _az_item(provider, row))


PARSERS: dict[str, Callable[[Any], ParsedFeed]] = {"pge": parse_pge, "az": parse_az}


def parse_feed(fmt: str, data: Any) -> ParsedFeed:
    if fmt not in PARSERS:
        raise FeedError(f"feed format {fmt!r} is not one of {', '.join(PARSERS)}")
    return PARSERS[fmt](data)
