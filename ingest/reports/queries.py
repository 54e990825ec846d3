"""Utility reports' SQL: the statements of the write path (ingest.reports.service and .batch), and the reads:
a stored report as a result, one report with its history, or a filtered page with a keyset cursor.

The write statements are on every report's path and their text is tuned for it (bench.reports measures it)."""

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from alerts import signals as alert_signals
from db.errors import InvalidInput
from geo.match_postgis import MATCH_CTE, ZoneMatch
from ingest.errors import UnknownReport
from accounts.keys import Caller, live_key_sql
from ingest.reports.locate import territory_sql
from ingest.models import UtilityReport, UtilityReportHistory


@dataclass(slots=True)
class NewReport:
    """A report just inserted, as its answer reads it: the columns its insert wrote, known without reading them
    back, in a plain record rather than an ORM instance: building one, with its instrumented attributes and a
    WKT of its footprint nobody read, took 30-38 µs a report, this 1-2. A stored report is read
    back as a UtilityReport (`stored_result`), with the same attributes."""

    id: int
    observation_id: int
    utility_id: int
    external_id: str
    category: str
    status: str
    customers_affected: int | None
    cause: str | None
    description: str | None
    started_at: datetime | None
    estimated_restore_at: datetime | None
    body_hash: str
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    version: int = 1


@dataclass
class ReportResult:
    report: UtilityReport | NewReport
    zones: list[ZoneMatch]
    created: bool
    geometry: dict[str, Any]
    repaired: str | None = None
    alerts_changed: list[int] = field(default_factory=list)
    located_by: str = "geometry"


def footprint_geojson(session: Session, report_id: int) -> dict[str, Any]:
    raw = session.execute(text("SELECT ST_AsGeoJSON(footprint) FROM utility_reports WHERE id = :id"),
                          {"id": report_id}).scalar_one()
    return json.loads(raw)


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


def stored_result(session: Session, report: UtilityReport) -> ReportResult:
    return ReportResult(report=report, zones=zones_of(session, report.observation_id), created=False,
                        geometry=footprint_geojson(session, report.id))


# The write path's statements. A report version's observation (service.insert_observation).
INSERT_OBSERVATION = text(
    """
            INSERT INTO observations (source, external_id, author_hash, text, category, confidence,
                observed_at, received_at, geom, uncertainty_m, geotag_method, raw)
            VALUES ('utility_report', :ext, :author, :text, :category, 1.0, :observed_at, :now,
                ST_GeomFromText(:wkt, 4326), :unc, :method, CAST(:raw AS jsonb))
            ON CONFLICT (source, external_id) DO NOTHING RETURNING id
            """
)

LINK_ZONES = text(
    "INSERT INTO observation_zones (observation_id, zone_id, weight) "
    "SELECT :obs, z, w FROM unnest(CAST(:zone_ids AS integer[]), CAST(:weights AS double precision[])) AS t(z, w)"
)

OBSERVATION_METHOD = text("SELECT geotag_method FROM observations WHERE id = :id")

# One round trip stores the observation, the report and its first history row, matches the zones
# (geo.match_postgis.MATCH_CTE), links them, writes the rule signals and takes the zone locks rule
# evaluation needs (both alerts', from the fragments of alerts.signals: the locks in zone order, held
# to commit). Links, signals and locks only happen when both inserts did: a conflict leaves nothing
# behind but the observation, which `service.write` deletes. Nothing is inserted for a key revoked since
# the API looked it up (accounts.key_cache), nor for a location outside the utility's territory
# (locate.territory_sql): `service.stored_or_conflict` then answers 401 or 422.
INSERT_REPORT = (  # run through db.raw: this is every report's path
    "WITH " + MATCH_CTE + """,
    obs AS (
        INSERT INTO observations (source, external_id, author_hash, text, category, confidence,
            observed_at, received_at, geom, uncertainty_m, geotag_method, raw)
        SELECT 'utility_report', :ext, :author, :text, :category, 1.0, :observed_at, :now, g.geom, :unc, :method,
            CAST(:raw AS jsonb) FROM g
        WHERE """ + live_key_sql(":key_id") + " AND " + territory_sql(":territory", ":utility_id", "g.geom") + """
        ON CONFLICT (source, external_id) DO NOTHING RETURNING id
    ), rep AS (
        INSERT INTO utility_reports (observation_id, utility_id, external_id, category, status, customers_affected,
            cause, description, started_at, estimated_restore_at, footprint, body_hash, idempotency_key, version,
            created_at, updated_at)
        SELECT obs.id, :utility_id, :external_id, :category, :status, :customers, :cause, :text, :started_at,
            :etr, g.geom, :body_hash, :idem, 1, :now, :now FROM obs, g
        ON CONFLICT DO NOTHING RETURNING id, observation_id
    ), hist AS (
        INSERT INTO utility_report_history (report_id, version, observation_id, status, changes, key_id, at)
        SELECT rep.id, 1, rep.observation_id, :status, CAST(:changes AS jsonb), :key_id, :now FROM rep
    ), links AS (
        INSERT INTO observation_zones (observation_id, zone_id, weight)
        SELECT rep.observation_id, m.id, m.weight FROM rep, m
    ), sig AS (
        -- The utility's own footprint counts as one in every zone it covers (ingest.reports.service.counted_zones).
        """ + alert_signals.insert_sql("""
        SELECT rep.observation_id, m.id, 'utility_report', :category, 1.0,
               CASE WHEN :extent AND m.weight >= least(:full_share, 0.5 / (SELECT count(*) FROM m AS n
                                                                             WHERE n.layer = m.layer))
                    THEN 1.0 ELSE m.weight END, :author, :observed_at
        FROM rep, m WHERE :feed""") + """
    ), locks AS (
        """ + alert_signals.lock_sql("SELECT m.id AS zone_id, m.layer FROM rep, m WHERE :feed") + """
    )
    SELECT obs.id AS obs_id, rep.id AS report_id, m.id AS zone_id, m.layer, m.code, m.name, m.weight
    FROM obs LEFT JOIN rep ON true LEFT JOIN m ON rep.id IS NOT NULL, locks
    ORDER BY m.layer, m.code
    """
)

_ARRAYS = """
    src AS MATERIALIZED (
        SELECT * FROM unnest(
            :ord::int[], :ext::text[], :author::text[], :text::text[],
            :category::text[], :observed_at::timestamptz[], :now::timestamptz[],
            :wkt::text[], :unc::float8[], :method::text[], :raw::text[],
            :utility_id::bigint[], :external_id::text[], :status::text[],
            :customers::bigint[], :cause::text[], :started_at::timestamptz[],
            :etr::timestamptz[], :body_hash::text[], :idem::text[],
            :key_id::bigint[], :changes::text[], :feed::bool[], :extent::bool[],
            :lock_layers::text[])
        AS t(ord, ext, author, text, category, observed_at, now, wkt, unc, method, raw, utility_id, external_id,
             status, customers, cause, started_at, etr, body_hash, idem, key_id, changes, feed, extent, lock_layers)
    ),
    g AS MATERIALIZED (SELECT ord, ST_GeomFromText(wkt, 4326) AS geom FROM src),
    -- geo.match_postgis.MATCH_CTE, for every report of the batch at once
    m AS MATERIALIZED (
        SELECT * FROM (
            SELECT g.ord, z.id, l.name AS layer, z.code, z.name,
                   coalesce(CASE WHEN GeometryType(g.geom) IN ('POINT', 'MULTIPOINT') THEN 1.0
                                 ELSE ST_Area(ST_Intersection(z.geom, g.geom)::geography)
                                      / NULLIF(ST_Area(g.geom::geography), 0) END, 0) AS weight
            FROM (SELECT DISTINCT g.ord, p.zone_id FROM g JOIN zone_pieces p ON ST_Intersects(p.geom, g.geom)) hit
            JOIN g USING (ord) CROSS JOIN LATERAL (SELECT * FROM zones z WHERE z.id = hit.zone_id OFFSET 0) z
            JOIN zone_layers l ON l.id = z.layer_id
        ) touching WHERE weight > 0
    )
"""

# The batch form of INSERT_REPORT, its zone locks those of every report, in zone order (the territories
# are checked before it, in one statement for the batch: ingest.reports.batch).
INSERT_REPORTS = "WITH " + _ARRAYS + """,
    obs AS (
        INSERT INTO observations (source, external_id, author_hash, text, category, confidence,
            observed_at, received_at, geom, uncertainty_m, geotag_method, raw)
        SELECT 'utility_report', src.ext, src.author, src.text, src.category, 1.0, src.observed_at, src.now, g.geom,
            src.unc, src.method, CAST(src.raw AS jsonb)
        FROM src JOIN g USING (ord)
        WHERE """ + live_key_sql("src.key_id") + """
        ON CONFLICT (source, external_id) DO NOTHING RETURNING id, external_id
    ), obs_src AS (
        SELECT src.*, obs.id AS obs_id, g.geom FROM obs JOIN src ON src.ext = obs.external_id JOIN g USING (ord)
    ), rep AS (
        INSERT INTO utility_reports (observation_id, utility_id, external_id, category, status, customers_affected,
            cause, description, started_at, estimated_restore_at, footprint, body_hash, idempotency_key, version,
            created_at, updated_at)
        SELECT obs_id, utility_id, external_id, category, status, customers, cause, text, started_at, etr, geom,
            body_hash, idem, 1, now, now FROM obs_src
        ON CONFLICT DO NOTHING RETURNING id, observation_id
    ), rep_src AS (
        SELECT obs_src.*, rep.id AS report_id FROM rep JOIN obs_src ON obs_src.obs_id = rep.observation_id
    ), hist AS (
        INSERT INTO utility_report_history (report_id, version, observation_id, status, changes, key_id, at)
        SELECT report_id, 1, obs_id, status, CAST(changes AS jsonb), key_id, now FROM rep_src
    ), links AS (
        INSERT INTO observation_zones (observation_id, zone_id, weight)
        SELECT r.obs_id, m.id, m.weight FROM rep_src r JOIN m ON m.ord = r.ord
    ), sig AS (
        -- The utility's own footprint counts as one in every zone it covers (ingest.reports.service.counted_zones).
        """ + alert_signals.insert_sql("""
        SELECT r.obs_id, m.id, 'utility_report', r.category, 1.0,
               CASE WHEN r.extent AND m.weight >= least(:full_share, 0.5 / (SELECT count(*) FROM m AS n
                                                                             WHERE n.ord = m.ord AND n.layer = m.layer))
                    THEN 1.0 ELSE m.weight END, r.author, r.observed_at
        FROM rep_src r JOIN m ON m.ord = r.ord WHERE r.feed""") + """
    ), locks AS (
        -- Each report's zones in the layers its rules count (`lock_layers`, comma-separated; as INSERT_REPORT's
        -- `zone_lock_layers` for one report), all of the batch's in zone order.
        """ + alert_signals.lock_sql("SELECT m.id AS zone_id, m.layer FROM rep_src r JOIN m ON m.ord = r.ord "
                                     "WHERE r.feed AND m.layer = ANY(string_to_array(r.lock_layers, ','))") + """
    )
    SELECT src.ord, obs.id AS obs_id, rep_src.report_id, m.id AS zone_id, m.layer, m.code, m.name, m.weight
    FROM src LEFT JOIN obs ON obs.external_id = src.ext LEFT JOIN rep_src ON rep_src.ord = src.ord
        LEFT JOIN m ON m.ord = src.ord AND rep_src.report_id IS NOT NULL, locks
    ORDER BY src.ord, m.layer, m.code
"""


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
