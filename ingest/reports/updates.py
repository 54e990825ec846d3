"""Changing a utility report: status lifecycle, optimistic concurrency, history, new observation versions."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import service as alert_service
from alerts.rules import Rule
from geo.geojson import as_geojson
from geo.match_postgis import match_zones
from ingest.reports import locate as where
from ingest.reports import queries as report_queries
from ingest.reports import service as reports
from ingest.errors import InvalidTransition, PreconditionFailed, UnknownReport
from accounts.keys import Caller
from ingest.models import Observation, UtilityReport, UtilityReportHistory
from ingest.reports.queries import ReportResult
from ingest.reports.service import TERMINAL_STATUSES
from ingest.reports.schemas import ReportUpdate

# Status only moves forward; skipping a step is allowed (a crew can restore without a "restoring" update).
ORDER = ("reported", "investigating", "restoring", "restored")
# Columns a PATCH may change, besides status; anything else is a free-form property kept with the version.
COLUMNS = ("category", "customers_affected", "cause", "description", "started_at", "estimated_restore_at")


def allowed(current: str, wanted: str) -> bool:
    """Whether the lifecycle allows current -> wanted (staying put is always allowed)."""
    if current == wanted:
        return True
    if current in TERMINAL_STATUSES:
        return False
    if wanted == "cancelled":
        return True
    return ORDER.index(wanted) > ORDER.index(current)


def check_transition(report_id: int, current: str, wanted: str) -> None:
    if not allowed(current, wanted):
        why = f"{current!r} is terminal" if current in TERMINAL_STATUSES else "status only moves forward"
        raise InvalidTransition(f"report {report_id} cannot go from {current!r} to {wanted!r}: {why}",
                                current=current, wanted=wanted, field="properties.status")


def etag(version: int) -> str:
    return f'W/"{version}"'


def etag_matches(if_match: str, version: int) -> bool:
    """RFC 9110 If-Match with weak comparison: '*', or any listed tag naming this version."""
    for tag in (t.strip() for t in if_match.split(",")):
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == str(version):
            return True
    return False


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _changes(report: UtilityReport, patch: ReportUpdate, old_props: dict[str, Any]) -> tuple[dict, dict]:
    """What the patch changes, as field -> [old, new], and the merged free-form properties."""
    props = patch.properties
    changes: dict[str, list[Any]] = {}
    given = props.model_fields_set
    for name in ("status", *COLUMNS):
        if name in given and getattr(report, name) != getattr(props, name):
            changes[name] = [_jsonable(getattr(report, name)), _jsonable(getattr(props, name))]
    merged = dict(old_props)
    for key, value in (props.model_extra or {}).items():
        if merged.get(key) != value:
            changes[key] = [merged.get(key), value]
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return changes, merged


def update_report(
    session: Session,
    *,
    caller: Caller,
    report_id: int,
    patch: ReportUpdate,
    if_match: str | None,
    rules: Sequence[Rule],
    jurisdiction_bbox: tuple[float, float, float, float],
    now: datetime,
    max_vertices: int = reports.DEFAULT_MAX_VERTICES,
    max_area_km2: float = reports.DEFAULT_MAX_AREA_KM2,
) -> ReportResult:
    """Apply a change as a new version: history row, new observation for the rules, retire the old ones."""
    report = session.scalar(
        select(UtilityReport).where(UtilityReport.id == report_id, UtilityReport.utility_id == caller.utility_id)
        .with_for_update()
    )
    if report is None:
        raise UnknownReport(f"report {report_id} does not exist", report_id=report_id)
    if if_match is not None and not etag_matches(if_match, report.version):
        raise PreconditionFailed(
            f"If-Match {if_match!r} does not match report {report_id}'s current ETag {etag(report.version)}",
            field="If-Match",
        )
    previous = session.get_one(Observation, report.observation_id)
    old_props = {k: v for k, v in (previous.raw.get("properties") or {}).items() if k not in ("status", *COLUMNS)}
    changes, merged = _changes(report, patch, old_props)
    wanted = patch.properties.status if "status" in patch.properties.model_fields_set else report.status
    check_transition(report_id, report.status, wanted or report.status)

    geom = None
    repaired = None
    if patch.geometry is not None:
        geom, repaired = where.footprint(patch.geometry, max_vertices=max_vertices, max_area_km2=max_area_km2)
        where.check_jurisdiction(geom, jurisdiction_bbox)
        where.check_territory(session, caller=caller, geom=geom)
        old_geojson = report_queries.footprint_geojson(session, report.id)
        new_geojson = as_geojson(geom)
        if shapely.equals(geom, shapely.from_geojson(json.dumps(old_geojson))):
            geom = None
        else:
            changes["geometry"] = [old_geojson, new_geojson]
    if not changes:
        return report_queries.stored_result(session, report)
    if report.status in TERMINAL_STATUSES:
        raise InvalidTransition(f"report {report_id} is {report.status!r}, which is terminal: it cannot change",
                                current=report.status, field="properties.status")

    for name in ("status", *COLUMNS):
        if name in changes:
            setattr(report, name, getattr(patch.properties, name))
    report.version += 1
    report.updated_at = now
    if geom is None:
        geom = to_shape(previous.geom)
        zones = report_queries.zones_of(session, previous.id)
    else:
        report.footprint = f"SRID=4326;{geom.wkt}"
        zones = match_zones(session, geometry=geom)

    raw = {"type": "Feature", "version": report.version, "geometry": as_geojson(geom),
           "properties": {**merged, "external_id": report.external_id, "status": report.status,
                          **{c: _jsonable(getattr(report, c)) for c in COLUMNS}}}
    obs_id = reports.insert_observation(
        session, external_id=f"{caller.utility_id}:{report.external_id}:v{report.version}", caller=caller,
        text_=report.description, category=report.category, observed_at=now, now=now, geom=geom,
        method=previous.geotag_method if "geometry" not in changes else "geometry", raw=raw,
    )
    assert obs_id is not None, "a version's observation is unique because the report row is locked"
    earlier = list(session.scalars(
        select(UtilityReportHistory.observation_id).where(UtilityReportHistory.report_id == report.id)))
    # The new version replaces the old ones as evidence, so one report never counts twice in a window.
    alert_service.retire_evidence(session, observation_ids=earlier, now=now)
    session.add(UtilityReportHistory(report_id=report.id, version=report.version, observation_id=obs_id,
                                     status=report.status, changes=changes, key_id=caller.key_id, at=now))
    report.observation_id = obs_id
    alerts_changed = reports.feed_rules(
        session, caller=caller, observation_id=obs_id, category=report.category, observed_at=now, zones=zones,
        rules=rules, now=now, status=report.status, customers_affected=report.customers_affected,
    )
    return ReportResult(report=report, zones=zones, created=False, geometry=raw["geometry"], repaired=repaired,
                        alerts_changed=alerts_changed)
