"""Responders and their coverage: validation, CRUD and CSV import. Services never commit."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, selectinload

from accounts import agencies as agency_service
from db.errors import Conflict, InvalidInput, NotFound
from db.input_guard import text_problem
from dispatch.models import CoverageRow, Responder, ResponderAgency
from dispatch.routing import DEFAULT_TIMEZONE, WeeklySchedule
from dispatch.schemas import CoverageSpec

log = logging.getLogger(__name__)

CSV_COLUMNS = ("name", "phone", "coverage", "tier", "on_call")  # and optionally timezone, agencies


def normalize_phone(raw: str, *, region: str = "US") -> str:
    """E.164 for any dialable form (`(212) 555-0143` -> `+12125550143`); InvalidInput otherwise."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(f"phone {raw!r} is not a phone number ({exc})", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"phone {raw!r} is not a valid number for its region", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _check_schedule(spec: CoverageSpec) -> None:
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"timezone {spec.timezone!r} is not an IANA timezone", field="timezone") from None
    if spec.on_call:
        try:
            WeeklySchedule.parse(spec.on_call, timezone=spec.timezone)
        except ValueError as exc:
            raise InvalidInput(f"on_call {spec.on_call!r}: {exc}", field="on_call") from None


def _resolve_zone(session: Session, spec: CoverageSpec) -> int | None:
    """The zone id for `spec` (None for a whole layer); InvalidInput naming an unknown layer or zone."""
    layer_id = session.execute(text("SELECT id FROM zone_layers WHERE name = :n"), {"n": spec.layer}).scalar()
    if layer_id is None:
        raise InvalidInput(f"zone layer {spec.layer!r} does not exist", field="coverage")
    if spec.zone is None:
        return None
    zone_id = session.execute(
        text("SELECT id FROM zones WHERE layer_id = :l AND code = :c"), {"l": layer_id, "c": spec.zone}
    ).scalar()
    if zone_id is None:
        raise InvalidInput(f"zone {spec.layer}:{spec.zone} does not exist", field="coverage")
    return zone_id


def _coverage_rows(session: Session, specs: list[CoverageSpec]) -> list[CoverageRow]:
    rows = []
    for spec in specs:
        if spec.timezone is None:  # the caller did not fill in the place's: the package default
            spec = spec.model_copy(update={"timezone": DEFAULT_TIMEZONE})
        _check_schedule(spec)
        rows.append(CoverageRow(layer=spec.layer, zone_id=_resolve_zone(session, spec), tier=spec.tier,
                                on_call=spec.on_call or None, timezone=spec.timezone))
    return rows


def coverage_specs(session: Session, responder: Responder) -> list[CoverageSpec]:
    """A responder's coverage as API values (zone codes, not ids)."""
    ids = [c.zone_id for c in responder.coverage if c.zone_id is not None]
    codes = dict(session.execute(text("SELECT id, code FROM zones WHERE id = ANY(:ids)"), {"ids": ids}).all()) \
        if ids else {}
    return [CoverageSpec(layer=c.layer, zone=codes.get(c.zone_id) if c.zone_id else None, tier=c.tier,
                         on_call=c.on_call, timezone=c.timezone) for c in responder.coverage]


def get_responder(session: Session, *, responder_id: int) -> Responder:
    responder = session.get(Responder, responder_id, options=[selectinload(Responder.coverage)])
    if responder is None:
        raise NotFound(f"responder {responder_id} does not exist")
    return responder


def list_responders(session: Session, *, limit: int = 1000, offset: int = 0) -> list[Responder]:
    return list(session.scalars(
        select(Responder).options(selectinload(Responder.coverage)).order_by(Responder.id).limit(limit).offset(offset)
    ))


def _phone_taken(session: Session, phone: str, *, other_than: int | None = None) -> bool:
    found = session.scalar(select(Responder.id).where(Responder.phone == phone))
    return found is not None and found != other_than


def create_responder(session: Session, *, name: str, phone: str, coverage: list[CoverageSpec], now: datetime,
                     region: str = "US") -> Responder:
    e164 = normalize_phone(phone, region=region)
    if _phone_taken(session, e164):
        raise Conflict(f"a responder with phone {phone!r} already exists", field="phone")
    responder = Responder(name=name.strip(), phone=e164, opted_out=False, created_at=now, updated_at=now,
                          coverage=_coverage_rows(session, coverage))
    session.add(responder)
    session.flush()
    log.info("responder %s created with %d coverage rows", responder.id, len(responder.coverage))
    return responder


def update_responder(session: Session, *, responder_id: int, now: datetime, name: str | None = None,
                     phone: str | None = None, opted_out: bool | None = None,
                     coverage: list[CoverageSpec] | None = None, region: str = "US") -> Responder:
    responder = get_responder(session, responder_id=responder_id)
    if name is not None:
        responder.name = name.strip()
    if phone is not None:
        e164 = normalize_phone(phone, region=region)
        if _phone_taken(session, e164, other_than=responder.id):
            raise Conflict(f"a responder with phone {phone!r} already exists", field="phone")
        responder.phone = e164
    if opted_out is not None and opted_out != responder.opted_out:
        responder.opted_out = opted_out
        responder.opted_out_at = now if opted_out else None
    if coverage is not None:
        responder.coverage = _coverage_rows(session, coverage)
    responder.updated_at = now
    session.flush()
    return responder


def delete_responder(session: Session, *, responder_id: int) -> None:
    session.delete(get_responder(session, responder_id=responder_id))
    session.flush()


def set_opt_out(session: Session, *, phone: str, opted_out: bool, now: datetime) -> Responder | None:
    """STOP / START from `phone` (E.164); None when no responder has that number."""
    responder = session.scalar(select(Responder).where(Responder.phone == phone).with_for_update())
    if responder is None:
        return None
    if responder.opted_out != opted_out:
        responder.opted_out = opted_out
        responder.opted_out_at = now if opted_out else None
        responder.updated_at = now
        log.info("responder %s opted %s", responder.id, "out" if opted_out else "in")
    return responder


def set_agencies(session: Session, *, responder_id: int, agency_ids: list[int]) -> None:
    """Make a responder's agencies exactly these (none: paged for whatever their coverage matches)."""
    session.execute(delete(ResponderAgency).where(ResponderAgency.responder_id == responder_id))
    session.add_all(ResponderAgency(responder_id=responder_id, agency_id=a) for a in dict.fromkeys(agency_ids))
    session.flush()


# --- CSV import ------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    coverage_rows: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)


_COVERAGE_SPLIT = re.compile(r"[\s;|]+")


def parse_coverage(value: str, *, tier: int, on_call: str | None, timezone: str) -> list[CoverageSpec]:
    """`district:A district:B` (zones) or `district:*` / `district` (whole layers), space/;/| separated."""
    specs = []
    for item in filter(None, _COVERAGE_SPLIT.split(value.strip())):
        layer, _, zone = item.partition(":")
        if not layer:
            raise ValueError(f"coverage item {item!r} has no layer (write layer:zone or layer:*)")
        specs.append(CoverageSpec(layer=layer, zone=None if zone in ("", "*") else zone, tier=tier,
                                  on_call=on_call, timezone=timezone))
    if not specs:
        raise ValueError("coverage is empty (write layer:zone or layer:*)")
    return specs


def _parse_row(session: Session, row: dict[str, str], region: str,
               default_timezone: str = DEFAULT_TIMEZONE) -> tuple[str, str, list[CoverageSpec]]:
    for column, value in row.items():  # before any of it reaches PostgreSQL, which cannot store NUL
        problem = text_problem(value) if isinstance(column, str) and isinstance(value, str) else None
        if problem:
            raise ValueError(f"{column} {value!r} {problem}")
    name = (row.get("name") or "").strip()
    if not name:
        raise ValueError("name is empty")
    phone = normalize_phone((row.get("phone") or "").strip(), region=region)
    tier_raw = (row.get("tier") or "1").strip()
    if not tier_raw.isdigit() or int(tier_raw) < 1:
        raise ValueError(f"tier {tier_raw!r} is not a whole number >= 1")
    specs = parse_coverage(row.get("coverage") or "", tier=int(tier_raw),
                           on_call=(row.get("on_call") or "").strip() or None,
                           timezone=(row.get("timezone") or "").strip() or default_timezone)
    for spec in specs:
        _check_schedule(spec)
        _resolve_zone(session, spec)
    return name, phone, specs


def import_csv(session: Session, *, data: str, now: datetime, region: str = "US",
               skip_invalid: bool = False, progress: Callable[[int], None] | None = None,
               default_timezone: str = DEFAULT_TIMEZONE) -> ImportResult:
    """Upsert responders by phone from CSV; each listed responder's coverage becomes what the file says.

    One responder may span several rows (one per tier or schedule). Invalid rows are reported
    with their line number; unless `skip_invalid`, any invalid row means nothing is imported. `progress`
    hears, as each responder is written, how many rows listed it. A row without a timezone gets
    `default_timezone` (the CLI passes the active place's, geo.places).
    """
    reader = csv.DictReader(io.StringIO(data))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("name", "phone", "coverage") if c not in header]
    if missing:
        raise InvalidInput(f"CSV header {reader.fieldnames!r} lacks column(s) {', '.join(missing)}")
    reader.fieldnames = header
    result = ImportResult()
    wanted: dict[str, tuple[str, list[CoverageSpec]]] = {}
    rows: Counter[str] = Counter()
    # The optional `agencies` column ("fire ems", names space/;/|/, separated): each listed responder's
    # agencies become what their rows name; without the column they stay as they are.
    with_agencies = "agencies" in header
    agency_ids: dict[str, list[int]] = {}
    for row in reader:
        line = reader.line_num
        try:
            name, phone, specs = _parse_row(session, row, region, default_timezone)
            if with_agencies:
                names = re.split(r"[\s;|,]+", (row.get("agencies") or "").strip())
                ids = agency_service.agency_ids(session, names)
        except (ValueError, InvalidInput, NotFound) as exc:
            result.errors.append((line, getattr(exc, "message", None) or str(exc)))
            continue
        if phone in wanted and wanted[phone][0] != name:
            result.errors.append((line, f"phone {row.get('phone')!r} is already used by {wanted[phone][0]!r}"))
            continue
        wanted.setdefault(phone, (name, []))[1].extend(specs)
        if with_agencies:
            agency_ids.setdefault(phone, []).extend(ids)
        rows[phone] += 1
    if result.errors and not skip_invalid:
        return result
    for phone, (name, specs) in wanted.items():
        existing = session.scalar(select(Responder).where(Responder.phone == phone)
                                  .options(selectinload(Responder.coverage)))
        if existing is None:
            responder = create_responder(session, name=name, phone=phone, coverage=specs, now=now, region=region)
            result.created += 1
        else:
            responder = update_responder(session, responder_id=existing.id, name=name, coverage=specs, now=now,
                                         region=region)
            result.updated += 1
        if with_agencies:
            set_agencies(session, responder_id=responder.id, agency_ids=agency_ids.get(phone, []))
        result.coverage_rows += len(specs)
        if progress:
            progress(rows[phone])
    return result
