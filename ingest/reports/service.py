"""Utility outage reports: validate, locate, store as an observation, match zones, feed the rules."""

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from alerts import service as alert_service
from alerts import signals as alert_signals
from alerts.rules import Rule
from db import plans
from db import raw as db_raw
from geo.geojson import as_geojson
from geo.match_postgis import ZoneMatch
from ingest.errors import IdempotencyConflict
from accounts.keys import Caller, check_live
from ingest.models import Observation, UtilityReport
from ingest.reports import queries
from ingest.reports.queries import NewReport, ReportResult, stored_result
from ingest.reports.locate import Located, check_jurisdiction, drawn, check_territory, locate, uncertainty_m
from ingest.reports.schemas import ReportCreate, ReportProperties

DEFAULT_MAX_VERTICES = 10_000
DEFAULT_MAX_AREA_KM2 = 2_000.0
SOURCE = "utility_report"  # observations.source and signals.source
EXTENT_METHOD = "coordinates"  # observations.geotag_method of a footprint the utility drew itself
# A report in a terminal status is history, not evidence: it never feeds the rules.
TERMINAL_STATUSES = frozenset({"restored", "cancelled"})


def canonical_json(raw: dict[str, Any]) -> str:
    """A body's JSON values as text with sorted keys and no spaces. Its digest is utility_reports.body_hash (a
    retry has the same, a conflict another); it is also the text of the observation's raw jsonb, which keeps
    neither key order nor spacing, so that stores the same value as any other dump of the body."""
    return json.dumps(raw, sort_keys=True, separators=(",", ":"))


def digest_of(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_or_conflict(session: Session, prior: UtilityReport, *, digest: str, idempotency_key: str | None,
                      external_id: str) -> ReportResult:
    """A retry of a stored report returns it; the same key or external_id with another body is a conflict."""
    if prior.body_hash == digest:
        return stored_result(session, prior)
    if idempotency_key is not None and prior.idempotency_key == idempotency_key:
        raise IdempotencyConflict(
            f"Idempotency-Key {idempotency_key!r} was already used for report {prior.id} with a different body",
            report_id=prior.id,
        )
    raise IdempotencyConflict(
        f"report external_id {external_id!r} already exists with a different body; "
        f"use PATCH /v1/reports/{prior.id} to change it", report_id=prior.id,
    )


def _prior(session: Session, *, utility_id: int, external_id: str,
           idempotency_key: str | None) -> UtilityReport | None:
    """The stored report this POST repeats: by Idempotency-Key first, then by external_id."""
    cond = UtilityReport.external_id == external_id
    if idempotency_key is not None:
        cond = or_(cond, UtilityReport.idempotency_key == idempotency_key)
    rows = session.scalars(select(UtilityReport).where(UtilityReport.utility_id == utility_id, cond)).all()
    by_key = [r for r in rows if idempotency_key is not None and r.idempotency_key == idempotency_key]
    return (by_key or list(rows) or [None])[0]


def insert_observation(session: Session, *, external_id: str, caller: Caller, text_: str | None, category: str,
                       observed_at: datetime, now: datetime, geom: BaseGeometry, method: str,
                       raw: dict[str, Any]) -> int | None:
    """One observation row; None when (source, external_id) exists already (a concurrent twin won)."""
    return session.execute(
        queries.INSERT_OBSERVATION,
        {"ext": external_id, "author": f"utility:{caller.utility_id}", "text": text_, "category": category,
         "observed_at": observed_at, "now": now, "wkt": geom.wkt, "unc": uncertainty_m(geom),
         "method": "coordinates" if method == "geometry" else method, "raw": json.dumps(raw)},
    ).scalar()


def _attributes(*, status: str, customers_affected: int | None) -> dict[str, Any]:
    """What rule conditions can test, e.g. `customers_affected: {gte: 500}`."""
    return {k: v for k, v in (("customers_affected", customers_affected), ("status", status)) if v is not None}


def apportioned(customers_affected: int | None, zones: Sequence[ZoneMatch]) -> dict[int, dict[str, Any]]:
    """Each zone's share of the customers, by the share of the footprint's area inside it (rounded)."""
    if customers_affected is None:
        return {}
    return {m.zone_id: {"zone_customers_affected": round(customers_affected * m.weight)} for m in zones}


# A zone holding at least this share of a drawn footprint counts it whole; so does one holding its equal
# part of a footprint spread over many zones (half of 1/n, for n zones of the layer). A thinner sliver keeps
# its area weight: footprints and zone outlines both follow streets, and the slivers where they disagree
# along a boundary would otherwise raise alerts in the neighbouring zones.
FULL_SHARE = 0.1


def counts_whole(weight: float, zones_in_layer: int) -> bool:
    return weight >= min(FULL_SHARE, 0.5 / max(zones_in_layer, 1))


def counted_zones(zones: Sequence[ZoneMatch], *, extent: bool) -> list[ZoneMatch]:
    """The zones as the rules count the report. A footprint the utility drew (`extent`) is where the outage is,
    not a guess at it: it counts as one in every zone it covers (bar boundary slivers: `counts_whole`), so a
    large outage split across many zones is never dropped by min_zone_weight. A footprint we derived (a ZIP's
    polygon) is a guess, weighted by area."""
    if not extent:
        return list(zones)
    per_layer = Counter(m.layer for m in zones)
    return [ZoneMatch(m.zone_id, m.layer, m.code, m.name, 1.0) if counts_whole(m.weight, per_layer[m.layer]) else m
            for m in zones]


def signal_of(*, caller: Caller, observation_id: int, category: str, observed_at: datetime,
              zones: list[ZoneMatch], status: str, customers_affected: int | None, extent: bool) -> alert_service.SignalIn:
    """A report as the rules' evidence: one in every zone it covers, its status and customers as attributes."""
    return alert_service.SignalIn(
        observation_id=observation_id, source=SOURCE, category=category, confidence=1.0,
        author_key=f"utility:{caller.utility_id}", observed_at=observed_at,
        zones=counted_zones(zones, extent=extent),
        attributes=_attributes(status=status, customers_affected=customers_affected),
        zone_attributes=apportioned(customers_affected, zones),
    )


def feed_rules(session: Session, *, caller: Caller, observation_id: int, category: str, observed_at: datetime,
               zones: list[ZoneMatch], rules: Sequence[Rule], now: datetime, status: str,
               customers_affected: int | None = None, extent: bool | None = None) -> list[int]:
    """Store the zone links (area shares) and hand the observation to the rules; returns the alerts that changed.

    `extent`: the footprint is the utility's own geometry (None: read it from the observation's geotag)."""
    if zones:  # one statement, not an ORM flush: this is on every report's path
        session.execute(queries.LINK_ZONES, {"obs": observation_id, "zone_ids": [m.zone_id for m in zones],
                                             "weights": [m.weight for m in zones]})
    if status in TERMINAL_STATUSES:
        return []
    if extent is None:
        extent = session.execute(queries.OBSERVATION_METHOD, {"id": observation_id}).scalar() == EXTENT_METHOD
    changes = alert_service.observe(
        session,
        signal=signal_of(caller=caller, observation_id=observation_id, category=category, observed_at=observed_at,
                         zones=zones, status=status, customers_affected=customers_affected, extent=extent),
        rules=rules, now=now,
    )
    return [c.alert_id for c in changes]


@dataclass(frozen=True)
class Submission:
    """A new report checked as far as it can be without the database: who sends what, where, and when."""

    caller: Caller
    body: ReportCreate
    idempotency_key: str | None
    digest: str
    located: Located | None  # None: located by its ZIP, in the database (`write`)
    jurisdiction_bbox: tuple[float, float, float, float]
    max_area_km2: float
    max_vertices: int
    now: datetime
    # The body as JSON values and as `canonical_json`, dumped once here for the digest and the write.
    raw: dict[str, Any]
    raw_json: str


@dataclass
class Written:
    """A report stored (or found stored) in the caller's transaction, and the signal its rules have yet to see
    (None: a report seen before, a terminal status, or no zone)."""

    result: ReportResult
    signal: alert_service.SignalIn | None


def prepare(*, caller: Caller, body: ReportCreate, idempotency_key: str | None,
            jurisdiction_bbox: tuple[float, float, float, float], now: datetime,
            max_vertices: int = DEFAULT_MAX_VERTICES, max_area_km2: float = DEFAULT_MAX_AREA_KM2) -> Submission:
    """Validate a new report's geometry and jurisdiction (pure); a ZIP or address is located by `write`."""
    assert caller.utility_id is not None, "only utility keys submit reports"
    located = None
    if body.geometry is not None:
        located = drawn(body, max_vertices=max_vertices, max_area_km2=max_area_km2)
        check_jurisdiction(located.geom, jurisdiction_bbox)
    raw = body.model_dump(mode="json")
    raw_json = canonical_json(raw)
    return Submission(caller=caller, body=body, idempotency_key=idempotency_key, digest=digest_of(raw_json),
                      located=located, jurisdiction_bbox=jurisdiction_bbox, max_area_km2=max_area_km2,
                      max_vertices=max_vertices, now=now, raw=raw, raw_json=raw_json)


def create_report(
    session: Session,
    *,
    caller: Caller,
    body: ReportCreate,
    idempotency_key: str | None,
    rules: Sequence[Rule],
    jurisdiction_bbox: tuple[float, float, float, float],
    now: datetime,
    max_vertices: int = DEFAULT_MAX_VERTICES,
    max_area_km2: float = DEFAULT_MAX_AREA_KM2,
) -> ReportResult:
    """Store a new report and feed it to the rules, or return the stored one when the same report arrives
    again. (POST /v1/reports goes through ingest.reports.writer, which writes many in one transaction.)"""
    sub = prepare(caller=caller, body=body, idempotency_key=idempotency_key, jurisdiction_bbox=jurisdiction_bbox,
                  now=now, max_vertices=max_vertices, max_area_km2=max_area_km2)
    written = write(session, sub, rules=rules, lock=True)
    if written.signal is not None:
        changes = alert_service.evaluate(session, signals=[written.signal], rules=rules, now=now)
        written.result.alerts_changed = [c.alert_id for c in changes]
    return written.result


def lock_layers(rules: Sequence[Rule], props: ReportProperties) -> list[str]:
    """The zone layers where a report with these properties can feed a rule: its insert locks the zones it
    touches in them (alerts.signals.lock_sql; a batch's insert, per report)."""
    return alert_signals.layers_fed(rules, source=SOURCE, category=props.category, confidence=1.0,
                                    attributes=_attributes(status=props.status,
                                                           customers_affected=props.customers_affected))


def write(session: Session, sub: Submission, *, rules: Sequence[Rule], lock: bool) -> Written:
    """Store a new report with its zone links and signals in one statement, or find the stored one it repeats.
    The rules are not run here: the caller runs them (alerts.service.evaluate) on `Written.signal`, for this
    report alone (`lock`: this statement also takes its zone locks) or for many at once, after
    alerts.signals.lock took the zone locks of them all."""
    caller, body, idempotency_key, now = sub.caller, sub.body, sub.idempotency_key, sub.now
    assert caller.utility_id is not None, "only utility keys submit reports"
    props = body.properties
    digest = sub.digest
    located = sub.located
    if located is None:
        located = locate(session, body=body, max_vertices=sub.max_vertices, max_area_km2=sub.max_area_km2)
        check_jurisdiction(located.geom, sub.jurisdiction_bbox)
    geom = located.geom  # the insert checks the utility's territory (locate.territory_sql)

    observed_at = props.started_at or now
    raw = sub.raw
    # ON CONFLICT makes two identical concurrent POSTs store one report (the loser waits on the unique index,
    # then finds the winner's), and a retry is found only when something conflicts: no extra look-up first.
    feed = props.status not in TERMINAL_STATUSES
    # Generic plans for the rest of the transaction, set by a statement of its own. Set inside the insert
    # (as the rules' statements set it), it came too late for the insert's own plan, and PostgreSQL
    # re-planned the insert for every report: 1.4 ms of server time, as much as running it. The generic
    # plan has the same shape, a GiST probe with the parameter.
    params = {
        "ext": f"{caller.utility_id}:{props.external_id}", "author": f"utility:{caller.utility_id}",
        "text": props.description, "category": props.category, "observed_at": observed_at, "now": now,
        "wkt": geom.wkt, "unc": uncertainty_m(geom), "method": "coordinates" if located.method == "geometry"
        else located.method, "raw": sub.raw_json, "utility_id": caller.utility_id,
        "external_id": props.external_id, "status": props.status, "customers": props.customers_affected,
        "cause": props.cause, "started_at": props.started_at, "etr": props.estimated_restore_at,
        "body_hash": digest, "idem": idempotency_key, "key_id": caller.key_id,
        "changes": json.dumps({k: [None, v] for k, v in raw["properties"].items() if v is not None}),
        "feed": feed, "extent": located.method == "geometry", "full_share": FULL_SHARE,
        "zone_lock_layers": lock_layers(rules, props) if lock else [], "territory": caller.has_territory,
    }
    plans.use_generic_plans(session)
    rows = db_raw.execute(session, queries.INSERT_REPORT, params).fetchall()
    row = rows[0] if rows else None
    if row is not None and row.report_id is None:
        # The same Idempotency-Key won with another external_id: undo our observation, answer with theirs.
        session.execute(delete(Observation).where(Observation.id == row.obs_id))
    if row is None or row.report_id is None:
        return Written(stored_or_conflict(session, sub, geom=geom), None)
    zones = [ZoneMatch(r.zone_id, r.layer, r.code, r.name, float(r.weight)) for r in rows if r.zone_id is not None]
    return written(sub, located, row.obs_id, row.report_id, zones)


def stored_or_conflict(session: Session, sub: Submission, *, geom: BaseGeometry | None = None) -> ReportResult:
    """A new report that did not insert: the stored report it repeats, or the conflict it is; or, first,
    BadApiKey when its key was revoked, then OutsideTerritory when `geom` lies outside the utility's
    territory (the insert's own checks, accounts.keys.live_key_sql and locate.territory_sql, stored
    nothing). A batch passes no `geom`: it checked the territories before its insert."""
    check_live(session, caller=sub.caller)
    if geom is not None:
        check_territory(session, caller=sub.caller, geom=geom)
    props = sub.body.properties
    prior = _prior(session, utility_id=sub.caller.utility_id, external_id=props.external_id,
                   idempotency_key=sub.idempotency_key)
    if prior is None:
        raise IdempotencyConflict(f"report external_id {props.external_id!r} was submitted concurrently "
                                  "and the other submission did not commit")
    return _same_or_conflict(session, prior, digest=sub.digest, idempotency_key=sub.idempotency_key,
                             external_id=props.external_id)


def written(sub: Submission, located: Located, obs_id: int, report_id: int, zones: list[ZoneMatch]) -> Written:
    """A report just inserted, as its result (every column known: no statement to read it back) and the
    signal its rules have yet to see."""
    props, caller = sub.body.properties, sub.caller
    report = NewReport(
        id=report_id, observation_id=obs_id, utility_id=caller.utility_id, external_id=props.external_id,
        category=props.category, status=props.status, customers_affected=props.customers_affected,
        cause=props.cause, description=props.description, started_at=props.started_at,
        estimated_restore_at=props.estimated_restore_at, body_hash=sub.digest, idempotency_key=sub.idempotency_key,
        created_at=sub.now, updated_at=sub.now,
    )
    result = ReportResult(report=report, zones=zones, created=True,
                          geometry=as_geojson(located.geom), repaired=located.repaired,
                          located_by=located.method)
    signal = None
    if props.status not in TERMINAL_STATUSES and zones:
        signal = signal_of(caller=caller, observation_id=obs_id, category=props.category,
                           observed_at=props.started_at or sub.now, zones=zones, status=props.status,
                           customers_affected=props.customers_affected, extent=located.method == "geometry")
    return Written(result, signal)
