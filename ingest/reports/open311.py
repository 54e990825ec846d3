"""Open311 GeoReport v2 over the utility-report service: services, parameter mapping, reads.

A service request is a utility report. Its ``service_request_id`` is the report's external_id
(the one the client sent as ``service_request_id``, or one derived from a hash of the request so a
retried POST finds the same report). External ids are unique per utility, and a utility sees only
its own reports, so every request read needs the caller's ``api_key`` (the spec lets GETs go
without one; Tocsin's outage reports are not public).
"""

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts.rules import Rule
from db.errors import Forbidden, InvalidInput, NotFound
from accounts import keys
from ingest.reports import service as reports
from accounts.errors import BadApiKey
from ingest.reports.schemas import ReportCreate

OPEN_STATUSES = ("reported", "investigating", "restoring")
CLOSED_STATUSES = ("restored", "cancelled")
MAX_SPAN = timedelta(days=90)  # the spec's default and largest query window
MAX_RESULTS = 1000
MAX_DESCRIPTION = 4000
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_PLUS_AS_SPACE = re.compile(r" (\d{2}:?\d{2})$")
_ZIP = re.compile(r"(?<!\d)(\d{5})(?:-\d{4})?(?!\d)")


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool = False
    type: str = "realtime"
    keywords: str
    group: str


SERVICES: tuple[Service, ...] = (
    Service(service_code="power_outage", service_name="Power outage",
            description="Loss of electric supply to one or more customers.",
            keywords="power, outage, blackout, electricity, no power", group="electric"),
    Service(service_code="gas_leak", service_name="Gas leak",
            description="Smell of gas, or gas escaping from a main, service line or meter.",
            keywords="gas, leak, odor, smell, natural gas", group="gas"),
    Service(service_code="water_main", service_name="Water main break",
            description="A broken or leaking water main, or street flooding from one.",
            keywords="water, main, break, burst, flooding", group="water"),
    Service(service_code="other", service_name="Other utility hazard",
            description="Any other utility hazard: downed wires, steam, manhole fires.",
            keywords="hazard, wire down, steam, manhole", group="other"),
)
SERVICE_BY_CODE = {s.service_code: s for s in SERVICES}


class ServiceRequest(BaseModel):
    """One request as GeoReport v2 returns it (field names from the spec)."""

    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str | None
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: datetime
    updated_datetime: datetime | None
    expected_datetime: datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


class CreatedRequest(BaseModel):
    service_request_id: str
    service_notice: str | None
    account_id: str | None = None


class Open311Error(BaseModel):
    code: int
    description: str


@dataclass(frozen=True)
class RequestFilter:
    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


def _one(params: Mapping[str, Any], name: str) -> str | None:
    """A parameter as trimmed text; empty counts as absent (the spec's 'optional' rule)."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise InvalidInput(f"{name} must be a single value, got {json.dumps(value)[:80]}", field=name)
    value = str(value).strip() if not isinstance(value, bool) else str(value).lower()
    return value or None


def _coordinate(params: Mapping[str, Any], name: str, limit: float) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise InvalidInput(f"{name} must be a number, got {raw!r}", field=name)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {raw!r}", field=name) from None
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise InvalidInput(f"{name} {raw} is outside [-{limit:g}, {limit:g}]", field=name)
    return value


def service_code(value: str | None) -> str:
    if value is None:
        raise InvalidInput("service_code was not provided; GET services.json lists them", field="service_code")
    if value not in SERVICE_BY_CODE:
        raise InvalidInput(f"service_code {value!r} is not one of {', '.join(SERVICE_BY_CODE)}",
                           field="service_code")
    return value


def derived_id(fields: Mapping[str, Any]) -> str:
    """A stable id from the request's content: the same POST sent twice names the same report."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return "o311-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def to_report(params: Mapping[str, Any]) -> ReportCreate:
    """POST requests.json parameters (form or JSON, api_key already taken out) -> a report body."""
    problems: list[InvalidInput] = []

    def attempt(fn, *args):
        try:
            return fn(*args)
        except InvalidInput as exc:
            problems.append(exc)
            return None

    code = attempt(lambda: service_code(_one(params, "service_code")))
    lat = attempt(_coordinate, params, "lat", 90.0)
    lon = attempt(_coordinate, params, "long", 180.0)
    address = attempt(_one, params, "address_string")
    description = attempt(_one, params, "description")
    given_id = attempt(_one, params, "service_request_id") or attempt(_one, params, "external_id")
    zipcode = attempt(_one, params, "zipcode")
    if (lat is None) != (lon is None) and not any(p.details.get("field") in ("lat", "long") for p in problems):
        missing = "long" if lon is None else "lat"
        problems.append(InvalidInput(f"lat and long must both be sent; {missing} is missing", field=missing))
    if lat is None and lon is None and address is None and zipcode is None \
            and not any(p.details.get("field") in ("lat", "long") for p in problems):
        problems.append(InvalidInput("no location: send lat and long, or an address_string with a 5-digit ZIP",
                                     field="lat"))
    if description is not None and len(description) > MAX_DESCRIPTION:
        problems.append(InvalidInput(f"description has {len(description)} characters, more than the "
                                     f"{MAX_DESCRIPTION} the spec allows", field="description"))
    if given_id is not None and not _ID.match(given_id):
        problems.append(InvalidInput(f"service_request_id {given_id!r} must be 1-200 letters, digits or . _ : -",
                                     field="service_request_id"))
    if problems:
        raise InvalidInput("; ".join(p.message for p in problems), errors=[p.message for p in problems])

    if zipcode is None and address is not None:
        found = _ZIP.findall(address)
        zipcode = found[-1] if found else None  # the postal code comes last ("most specific to most general")
    external_id = given_id or derived_id({"service_code": code, "lat": lat, "long": lon, "address_string": address,
                                          "zipcode": zipcode, "description": description})
    properties: dict[str, Any] = {"external_id": external_id, "category": code, "description": description}
    if address is not None:
        properties["address"] = address
    if zipcode is not None:
        properties["zip"] = zipcode
    geometry = {"type": "Point", "coordinates": [lon, lat]} if lat is not None else None
    try:
        return ReportCreate.model_validate({"type": "Feature", "geometry": geometry, "properties": properties})
    except ValidationError as exc:
        messages = [f"{_param_name(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
        raise InvalidInput("; ".join(messages), errors=messages) from None


def _param_name(loc: Sequence[Any]) -> str:
    names = {"zip": "zipcode", "address": "address_string", "external_id": "service_request_id",
             "category": "service_code", "geometry": "lat/long"}
    last = str(loc[-1]) if loc else "request"
    return names.get(last, last)


def authenticate(session: Session, *, api_key: str | None) -> keys.Caller:
    if not api_key:
        raise BadApiKey("missing api_key: send the api_key parameter (or 'Authorization: Bearer <key>')")
    caller = keys.authenticate(session, key=api_key)
    if caller.role != "utility" or caller.utility_id is None:
        raise Forbidden("this api_key is not a utility key; only utilities submit and read service requests")
    return caller


def submit(session: Session, *, caller: keys.Caller, params: Mapping[str, Any], rules: Sequence[Rule],
           jurisdiction_bbox: tuple[float, float, float, float], now: datetime,
           max_vertices: int = reports.DEFAULT_MAX_VERTICES,
           max_area_km2: float = reports.DEFAULT_MAX_AREA_KM2) -> tuple[CreatedRequest, bool]:
    """Create (or find again) the report for a POST requests.json; returns the answer and whether it is new."""
    result = reports.create_report(session, caller=caller, body=to_report(params), idempotency_key=None,
                                   rules=rules, jurisdiction_bbox=jurisdiction_bbox, now=now,
                                   max_vertices=max_vertices, max_area_km2=max_area_km2)
    zones = ", ".join(f"{z.layer} {z.code}" for z in result.zones) or "no zones"
    notice = f"Recorded as Tocsin report {result.report.id}; matched {zones}."
    return CreatedRequest(service_request_id=result.report.external_id, service_notice=notice), result.created


def _csv(params: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = _one(params, name)
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def _w3_datetime(params: Mapping[str, Any], name: str) -> datetime | None:
    value = _one(params, name)
    if value is None:
        return None
    try:
        # An unencoded '+' in a query string arrives as a space: '...T00:00:00 05:00'.
        parsed = datetime.fromisoformat(_PLUS_AS_SPACE.sub(r"+\1", value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} {value!r} is not a w3 date-time such as 2010-01-01T00:00:00Z", field=name) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{name} {value!r} has no time zone; add Z or an offset such as -05:00", field=name)
    return parsed.astimezone(UTC)


def parse_filter(params: Mapping[str, Any], *, now: datetime) -> RequestFilter:
    """GET requests.json query parameters; service_request_id overrides every other filter (spec)."""
    ids = _csv(params, "service_request_id")
    if ids:
        return RequestFilter(ids=ids)
    codes = _csv(params, "service_code")
    for code in codes:
        service_code(code)
    statuses = _csv(params, "status")
    for s in statuses:
        if s not in ("open", "closed"):
            raise InvalidInput(f"status {s!r} is not one of open, closed", field="status")
    start, end = _w3_datetime(params, "start_date"), _w3_datetime(params, "end_date")
    if start is None and end is None:
        end = now
    start = start if start is not None else end - MAX_SPAN
    end = end if end is not None else start + MAX_SPAN
    if start > end:
        raise InvalidInput(f"start_date {start.isoformat()} is after end_date {end.isoformat()}", field="start_date")
    if end - start > MAX_SPAN:
        raise InvalidInput(f"start_date to end_date spans {(end - start).days} days; at most 90 are allowed",
                           field="end_date")
    return RequestFilter(service_codes=codes, statuses=statuses, start=start, end=end)


_SELECT = """
SELECT r.external_id, r.status, r.category, r.description, r.created_at, r.updated_at,
       r.estimated_restore_at, u.name AS utility, o.raw -> 'properties' ->> 'address' AS address,
       COALESCE(o.raw -> 'properties' ->> 'zip',
                (SELECT z.code FROM observation_zones oz JOIN zones z ON z.id = oz.zone_id
                 JOIN zone_layers l ON l.id = z.layer_id
                 WHERE oz.observation_id = r.observation_id AND l.name = 'zcta'
                 ORDER BY oz.weight DESC, z.code LIMIT 1)) AS zipcode,
       ST_Y(ST_PointOnSurface(r.footprint)) AS lat, ST_X(ST_PointOnSurface(r.footprint)) AS lon
FROM utility_reports r
JOIN utilities u ON u.id = r.utility_id
JOIN observations o ON o.id = r.observation_id
WHERE r.utility_id = :utility_id
"""


def _request(row: Any) -> ServiceRequest:
    service = SERVICE_BY_CODE.get(row.category)
    return ServiceRequest(
        service_request_id=row.external_id, status="open" if row.status in OPEN_STATUSES else "closed",
        status_notes=f"utility status: {row.status}", service_name=service.service_name if service else None,
        service_code=row.category, description=row.description, agency_responsible=row.utility,
        service_notice=None, requested_datetime=row.created_at, updated_datetime=row.updated_at,
        expected_datetime=row.estimated_restore_at, address=row.address, address_id=None, zipcode=row.zipcode,
        lat=row.lat, long=row.lon, media_url=None,
    )


def list_requests(session: Session, *, caller: keys.Caller, where: RequestFilter) -> list[ServiceRequest]:
    """The caller's requests matching the filter, newest first, at most MAX_RESULTS."""
    sql, params = _SELECT, {"utility_id": caller.utility_id, "limit": MAX_RESULTS}
    if where.ids:
        sql += " AND r.external_id = ANY(:ids)"
        params["ids"] = list(where.ids)
    else:
        sql += " AND r.created_at >= :start AND r.created_at <= :end"
        params.update(start=where.start, end=where.end)
        if where.service_codes:
            sql += " AND r.category = ANY(:codes)"
            params["codes"] = list(where.service_codes)
        wanted = set(where.statuses)
        if wanted and wanted != {"open", "closed"}:
            sql += " AND r.status = ANY(:statuses)"
            params["statuses"] = list(OPEN_STATUSES if wanted == {"open"} else CLOSED_STATUSES)
    sql += " ORDER BY r.created_at DESC, r.id DESC LIMIT :limit"
    return [_request(row) for row in session.execute(text(sql), params)]


def get_request(session: Session, *, caller: keys.Caller, service_request_id: str) -> ServiceRequest:
    row = session.execute(text(_SELECT + " AND r.external_id = :id"),
                          {"utility_id": caller.utility_id, "id": service_request_id}).first()
    if row is None:
        # Also when another utility has this id: no existence leak.
        raise NotFound(f"service_request_id {service_request_id!r} was not found", field="service_request_id")
    return _request(row)
