"""Utility outage reports: validate, store as an observation, match zones, feed the rules."""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from alerts import service as alert_service
from alerts.rules import Rule
from geo.geojson import parse_geometry, repair, within_bbox
from geo.matching import ZoneMatch, match_zones
from ingest.errors import IdempotencyConflict, OutsideJurisdiction
from ingest.keys import Caller
from ingest.models import Observation, ObservationZone, UtilityReport
from ingest.schemas import ReportCreate

POINT_UNCERTAINTY_M = 25.0


@dataclass
class ReportResult:
    report: UtilityReport
    zones: list[ZoneMatch]
    created: bool
    geometry: dict[str, Any]
    repaired: str | None = None
    alerts_changed: list[int] = field(default_factory=list)


def body_hash(body: ReportCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_jurisdiction(geom: BaseGeometry, bbox: tuple[float, float, float, float]) -> None:
    if within_bbox(geom, bbox):
        return
    c = geom.representative_point()
    hint = ""
    swapped = shapely.Point(c.y, c.x)
    if within_bbox(swapped, bbox):
        hint = "; the coordinates look swapped: GeoJSON wants [longitude, latitude]"
    raise OutsideJurisdiction(
        f"location (lon {c.x:.5f}, lat {c.y:.5f}) is outside the jurisdiction bounds {list(bbox)}{hint}",
        value=[c.x, c.y], field="geometry",
    )


def _uncertainty_m(geom: BaseGeometry) -> float:
    if geom.geom_type == "Point":
        return POINT_UNCERTAINTY_M
    # Radius of the circle with the footprint's area (area on the spheroid, via PostGIS later is overkill here).
    from pyproj import Geod  # local import: pyproj's Geod is cheap but keep import-time light

    area = abs(Geod(ellps="WGS84").geometry_area_perimeter(geom)[0])
    return (area / 3.141592653589793) ** 0.5


def _existing(session: Session, *, utility_id: int, external_id: str) -> UtilityReport | None:
    return session.scalar(
        select(UtilityReport).where(UtilityReport.utility_id == utility_id, UtilityReport.external_id == external_id)
    )


def footprint_geojson(session: Session, report_id: int) -> dict[str, Any]:
    raw = session.execute(text("SELECT ST_AsGeoJSON(footprint) FROM utility_reports WHERE id = :id"),
                          {"id": report_id}).scalar_one()
    return json.loads(raw)


def _stored(session: Session, report: UtilityReport) -> ReportResult:
    return ReportResult(report=report, zones=zones_of(session, report.observation_id), created=False,
                        geometry=footprint_geojson(session, report.id))


def zones_of(session: Session, observation_id: int) -> list[ZoneMatch]:
    rows = session.execute(
        text(
            "SELECT z.id, l.name, z.code, z.name, oz.weight FROM observation_zones oz "
            "JOIN zones z ON z.id = oz.zone_id JOIN zone_layers l ON l.id = z.layer_id "
            "WHERE oz.observation_id = :id ORDER BY l.name, z.code"
        ),
        {"id": observation_id},
    ).all()
    return [ZoneMatch(*r) for r in rows]


def create_report(
    session: Session,
    *,
    caller: Caller,
    body: ReportCreate,
    idempotency_key: str | None,
    rules: Sequence[Rule],
    jurisdiction_bbox: tuple[float, float, float, float],
    now: datetime,
) -> ReportResult:
    """Store a new report, or return the stored one when the same report arrives again."""
    assert caller.utility_id is not None, "only utility keys submit reports"
    props = body.properties
    digest = body_hash(body)
    prior = _existing(session, utility_id=caller.utility_id, external_id=props.external_id)
    if prior is not None:
        if prior.body_hash != digest:
            raise IdempotencyConflict(
                f"report external_id {props.external_id!r} already exists with a different body; "
                "use PATCH /v1/reports/{id} to change it",
                report_id=prior.id,
            )
        return _stored(session, prior)

    geom, repaired = repair(parse_geometry(body.geometry))
    _check_jurisdiction(geom, jurisdiction_bbox)

    observed_at = props.started_at or now
    # ON CONFLICT makes two identical concurrent POSTs create one observation; the loser re-reads.
    obs_id = session.execute(
        text(
            """
            INSERT INTO observations (source, external_id, author_hash, text, category, confidence,
                observed_at, received_at, geom, uncertainty_m, geotag_method, raw)
            VALUES ('utility_report', :ext, :author, :text, :category, 1.0, :observed_at, :now,
                ST_GeomFromText(:wkt, 4326), :unc, 'coordinates', CAST(:raw AS jsonb))
            ON CONFLICT (source, external_id) DO NOTHING RETURNING id
            """
        ),
        {
            "ext": f"{caller.utility_id}:{props.external_id}", "author": f"utility:{caller.utility_id}",
            "text": props.description, "category": props.category, "observed_at": observed_at, "now": now,
            "wkt": geom.wkt, "unc": _uncertainty_m(geom), "raw": json.dumps(body.model_dump(mode="json")),
        },
    ).scalar()
    if obs_id is None:
        prior = _existing(session, utility_id=caller.utility_id, external_id=props.external_id)
        if prior is None or prior.body_hash != digest:
            raise IdempotencyConflict(f"report external_id {props.external_id!r} was submitted concurrently "
                                      "with a different body")
        return _stored(session, prior)

    report = UtilityReport(
        observation_id=obs_id, utility_id=caller.utility_id, external_id=props.external_id,
        category=props.category, status=props.status, customers_affected=props.customers_affected,
        cause=props.cause, description=props.description, started_at=props.started_at,
        estimated_restore_at=props.estimated_restore_at, footprint=f"SRID=4326;{geom.wkt}",
        body_hash=digest, idempotency_key=idempotency_key, version=1, created_at=now, updated_at=now,
    )
    session.add(report)
    zones = match_zones(session, geometry=geom)
    session.add_all(ObservationZone(observation_id=obs_id, zone_id=m.zone_id, weight=m.weight) for m in zones)
    session.flush()
    changes = alert_service.observe(
        session,
        signal=alert_service.SignalIn(
            observation_id=obs_id, source="utility_report", category=props.category, confidence=1.0,
            author_key=f"utility:{caller.utility_id}", observed_at=observed_at, zones=zones,
        ),
        rules=rules,
        now=now,
    )
    return ReportResult(report=report, zones=zones, created=True, geometry=json.loads(shapely.to_geojson(geom)),
                        repaired=repaired,
                        alerts_changed=[c.alert_id for c in changes])


def get_observation(session: Session, observation_id: int) -> Observation | None:
    return session.get(Observation, observation_id)
