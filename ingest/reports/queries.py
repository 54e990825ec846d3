"""Reading utility reports: one with its history, or a filtered page with a keyset cursor."""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db.errors import InvalidInput
from geo.match_postgis import ZoneMatch
from ingest.errors import UnknownReport
from accounts.keys import Caller
from ingest.models import UtilityReport, UtilityReportHistory
from ingest.reports.service import ReportResult, stored_result


@dataclass(frozen=True)
class ReportFilter:
    status: str | None = None
    category: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    zone: tuple[str, str] | None = None  # (layer, code)
    since: datetime | None = None


def parse_zone(raw: str) -> tuple[str, str]:
    layer, sep, code = raw.partition(":")
    if not sep or not layer or not code:
        raise InvalidInput(f"zone {raw!r} is not layer:code, e.g. nta:QN0103", field="zone")
    return layer, code


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        before = data["before"]
        if isinstance(before, int) and not isinstance(before, bool) and 0 < before < 2**63:
            return before
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        pass
    raise InvalidInput(f"cursor {cursor!r} is not a cursor this API returned", field="cursor")


def get_report(session: Session, *, caller: Caller, report_id: int) -> tuple[ReportResult, list[UtilityReportHistory]]:
    """The caller's report and its versions; another utility's report is 'not found' (no existence leak)."""
    report = session.scalar(select(UtilityReport).where(
        UtilityReport.id == report_id, UtilityReport.utility_id == caller.utility_id))
    if report is None:
        raise UnknownReport(f"report {report_id} does not exist", report_id=report_id)
    history = list(session.scalars(select(UtilityReportHistory).where(UtilityReportHistory.report_id == report.id)
                                   .order_by(UtilityReportHistory.version)))
    return stored_result(session, report), history


_LIST_SQL = """
SELECT r.id, ST_AsGeoJSON(r.footprint) FROM utility_reports r
WHERE r.utility_id = :utility_id
  AND (CAST(:before AS bigint) IS NULL OR r.id < :before)
  AND (CAST(:status AS text) IS NULL OR r.status = :status)
  AND (CAST(:category AS text) IS NULL OR r.category = :category)
  AND (CAST(:since AS timestamptz) IS NULL OR r.updated_at >= :since)
  {bbox}{zone}
ORDER BY r.id DESC LIMIT :limit
"""
_BBOX = "AND ST_Intersects(r.footprint, ST_MakeEnvelope(:west, :south, :east, :north, 4326))\n"
_ZONE = """AND EXISTS (SELECT 1 FROM observation_zones oz JOIN zones z ON z.id = oz.zone_id
              JOIN zone_layers l ON l.id = z.layer_id
              WHERE oz.observation_id = r.observation_id AND l.name = :zone_layer AND z.code = :zone_code)
"""


def list_reports(session: Session, *, caller: Caller, filters: ReportFilter, cursor: str | None,
                 limit: int) -> tuple[list[ReportResult], str | None]:
    """The caller's reports, newest first, and the cursor of the next page (None on the last one)."""
    params: dict[str, Any] = {
        "utility_id": caller.utility_id, "before": decode_cursor(cursor) if cursor else None,
        "status": filters.status, "category": filters.category, "since": filters.since, "limit": limit + 1,
    }
    if filters.bbox:
        params.update(zip(("west", "south", "east", "north"), filters.bbox))
    if filters.zone:
        params["zone_layer"], params["zone_code"] = filters.zone
    sql = _LIST_SQL.format(bbox=_BBOX if filters.bbox else "", zone=_ZONE if filters.zone else "")
    rows = session.execute(text(sql), params).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return [], None
    geometry = {r[0]: json.loads(r[1]) for r in rows}
    by_id = {r.id: r for r in session.scalars(select(UtilityReport).where(UtilityReport.id.in_(list(geometry))))}
    zones = _zones_for(session, [by_id[i].observation_id for i in geometry])
    results = [ReportResult(report=by_id[i], zones=zones.get(by_id[i].observation_id, []), created=False,
                            geometry=geometry[i]) for i in geometry]
    return results, encode_cursor(rows[-1][0]) if more else None


def _zones_for(session: Session, observation_ids: list[int]) -> dict[int, list[ZoneMatch]]:
    rows = session.execute(
        text("SELECT oz.observation_id, z.id, l.name, z.code, z.name, oz.weight FROM observation_zones oz "
             "JOIN zones z ON z.id = oz.zone_id JOIN zone_layers l ON l.id = z.layer_id "
             "WHERE oz.observation_id = ANY(:ids) ORDER BY l.name, z.code"),
        {"ids": observation_ids},
    ).all()
    out: dict[int, list[ZoneMatch]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(ZoneMatch(r[1], r[2], r[3], r[4], float(r[5])))
    return out
