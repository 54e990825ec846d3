"""HTTP routes for utilities: outage and hazard reports."""

import asyncio
import functools
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from db import geojson_out
from accounts.api import ReleasedUtilityDep, UtilityDep, forget_key, recheck_cached
from accounts.errors import BadApiKey
from db.api import SessionDep
from db.errors import DomainError
from geo.geojson import parse_bbox
from geo.jurisdiction import Jurisdiction
from geo.match_postgis import ZoneMatch
from accounts import keys
from ingest.reports import queries as report_queries, updates as report_updates, service as reports
from ingest.reports.schemas import (
    POINT_EXAMPLE, BatchItemError, BatchItemResult, BatchResult, Category, FeatureCollectionIn, HistoryEntry,
    Problem, ReportCreate, ReportDetail, ReportPage, ReportRead, ReportUpdate, Status,
)

_TOKEN = r"^[\x21-\x7e]{1,200}$"  # visible ASCII: safe to store and echo
_ETAG_HEADER = {"ETag": {"description": 'The report version as a weak tag, e.g. W/"3"; send it as If-Match.',
                         "schema": {"type": "string"}}}

_PROBLEMS = {
    400: ("The body could not be parsed: not UTF-8, not JSON (the message names the position), or JSON nested "
          "deeper than 64 levels", "request body is not valid JSON: Expecting value at position 20"),
    401: ("Missing, unknown or revoked API key", "invalid or revoked API key"),
    403: ("The key is not a utility key", "this endpoint needs a utility API key"),
    404: ("No such report for this utility", "report 42 does not exist"),
    409: ("Conflict with what is stored", "report external_id 'CONED-1' already exists with a different body; "
                                          "use PATCH /v1/reports/7 to change it"),
    412: ("If-Match does not name the current version", "If-Match 'W/\"2\"' does not match report 7's "
                                                        "current ETag W/\"3\""),
    413: ("Request body over TOCSIN_MAX_BODY_BYTES",
          "request body of 2000000 bytes exceeds the limit of 1000000 bytes"),
    422: ("Invalid input; the message names the field and the value",
          "location (lon 40.72500, lat -73.97500) is outside the jurisdiction bounds [-74.3, 40.45, -73.65, 40.95]; "
          "the coordinates look swapped: GeoJSON wants [longitude, latitude]"),
    429: ("Too many requests for this key; see Retry-After", "rate limit of 6000 requests per minute exceeded"),
    503: ("The database is unavailable; see Retry-After", "the database is unavailable"),
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        description, example = _PROBLEMS[code]
        out[code] = {"description": description, "model": Problem,
                     "content": {"application/json": {"example": {"detail": example}}}}
        if code in (429, 503):
            out[code]["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    return out


router = APIRouter(prefix="/v1", tags=["utility reports"], responses=_errors(503))


ReportId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The report id from POST /v1/reports",
                                examples=[7])]


def _zones_by_layer(zones: list[ZoneMatch]) -> dict[str, list[dict[str, Any]]]:
    """ReportRead.zones as plain dicts: its validation makes them ZoneRefs in one pass, without a model
    __init__ per zone."""
    out: dict[str, list[dict[str, Any]]] = {}
    for z in zones:
        out.setdefault(z.layer, []).append({"code": z.code, "name": z.name, "weight": round(z.weight, 4)})
    return out


def _fields(result: report_queries.ReportResult, caller: keys.Caller) -> dict[str, Any]:
    r = result.report
    return dict(
        id=r.id, utility=caller.utility_name or "", external_id=r.external_id, category=r.category,
        status=r.status, customers_affected=r.customers_affected, cause=r.cause, description=r.description,
        started_at=r.started_at, estimated_restore_at=r.estimated_restore_at, geometry=result.geometry,
        version=r.version, created_at=r.created_at, updated_at=r.updated_at, zones=_zones_by_layer(result.zones),
        repaired=result.repaired, alerts_changed=result.alerts_changed, located_by=result.located_by,
    )


def jurisdiction(request: Request, session: Session | None = None) -> Jurisdiction:
    """The active place's boundary (geo.places), else TOCSIN_JURISDICTION_BBOX; read again from the database
    (on `session`, or one of its own) when the cache says it is due."""
    state = request.app.state
    fallback = state.settings.jurisdiction_bbox
    posts = getattr(state, "posts", None)
    if posts is None:
        return Jurisdiction(tuple(fallback))
    if session is None and posts.jurisdiction.due():
        with state.sessionmaker() as own:
            return posts.jurisdiction.get(own, fallback_bbox=fallback)
    return posts.jurisdiction.get(session, fallback_bbox=fallback)


def _limits(request: Request, session: Session | None = None) -> dict[str, Any]:
    s = request.app.state.settings
    return {"jurisdiction_bbox": jurisdiction(request, session), "max_vertices": s.max_vertices,
            "max_area_km2": s.max_area_km2, "rules": request.app.state.rules()}


_READ_EXAMPLE = {
    "id": 7, "utility": "Con Edison", "external_id": "CONED-2026-000123", "category": "gas_leak",
    "status": "reported", "customers_affected": 40, "cause": None, "description": "Gas odor reported at street level",
    "started_at": None, "estimated_restore_at": None, "geometry": POINT_EXAMPLE["geometry"], "version": 1,
    "created_at": "2026-11-25T21:00:00Z", "updated_at": "2026-11-25T21:00:00Z",
    "zones": {"nta": [{"code": "QN0103", "name": "Astoria (Central)", "weight": 1.0}],
              "zcta": [{"code": "11103", "name": "11103", "weight": 1.0}]},
    "repaired": None, "located_by": "geometry", "alerts_changed": [3],
}


async def _jurisdiction_async(request: Request) -> Jurisdiction:
    """`jurisdiction`, off the event loop when it has to ask the database."""
    posts = getattr(request.app.state, "posts", None)
    if posts is not None and posts.jurisdiction.due():
        return await run_in_threadpool(jurisdiction, request)
    return jurisdiction(request)


@router.post(
    "/reports",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportRead,
    responses={
        201: {"description": "Created; Location names the report", "headers": _ETAG_HEADER,
              "content": {"application/json": {"example": _READ_EXAMPLE}}},
        200: {"description": "The same report was already stored (idempotent retry)", "model": ReportRead,
              "headers": _ETAG_HEADER},
        **_errors(400, 401, 403, 409, 413, 422, 429),
    },
)
async def create_report(
    body: Annotated[ReportCreate, Body(openapi_examples={
        "point": {"summary": "A gas leak at a point", "value": POINT_EXAMPLE},
        "zip": {"summary": "An outage located by ZIP", "value": ReportCreate.model_config["json_schema_extra"]
                ["examples"][1]},
    })],
    request: Request,
    caller: ReleasedUtilityDep,
    idempotency_key: Annotated[str | None, Header(pattern=_TOKEN, description="Retries with the same key and body "
                                                  "return the stored report; a different body gets 409.")] = None,
) -> Response:
    """Submit an outage or hazard report as a GeoJSON Feature (longitude first)."""
    s = request.app.state.settings
    prepare = functools.partial(reports.prepare, caller=caller, body=body, idempotency_key=idempotency_key,
                                jurisdiction_bbox=await _jurisdiction_async(request), now=datetime.now(UTC),
                                max_vertices=s.max_vertices, max_area_km2=s.max_area_km2)
    try:
        # A point is checked here, on the event loop (microseconds); a drawn footprint of up to max_vertices
        # in the thread pool, so that it never holds up other requests.
        sub = prepare() if body.geometry is None or body.geometry.get("type") == "Point" else \
            await run_in_threadpool(prepare)
        # Group commit (ingest.reports.writer): answered once the batch holding this report has committed.
        result = await asyncio.wrap_future(request.app.state.report_writer.submit(sub))
    except BadApiKey:  # revoked since the key cache took it: the insert refused it
        forget_key(request, caller)
        raise
    except DomainError:
        await recheck_cached(request, caller)
        raise
    # The hot path: serialised here, once (FastAPI would validate the model again against response_model).
    return Response(ReportRead(**_fields(result, caller)).model_dump_json(by_alias=True),
                    status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
                    media_type="application/json",
                    headers={"Location": f"/v1/reports/{result.report.id}",
                             "ETag": report_updates.etag(result.report.version)})


@router.get(
    "/reports",
    response_model=ReportPage,
    responses={200: {"content": {"application/json": {"example": {
        "items": [_READ_EXAMPLE], "cursor": "eyJiZWZvcmUiOiA3fQ",
        "next": "/v1/reports?limit=1&cursor=eyJiZWZvcmUiOiA3fQ"}},
        "application/geo+json": {"schema": {"type": "object", "description": "A GeoJSON FeatureCollection of the "
                                            "reports' footprints, with `cursor` and `next` as foreign members"}}}},
        **_errors(401, 403, 422, 429)},
)
def list_reports(
    request: Request,
    session: SessionDep,
    caller: UtilityDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    category: Category | None = None,
    bbox: Annotated[str | None, Query(max_length=200, description="west,south,east,north in degrees",
                                      examples=["-74.0,40.7,-73.9,40.8"])] = None,
    zone: Annotated[str | None, Query(pattern=r"^[^:\x00]{1,64}:[^\x00]{1,64}$",
                                      description="layer:code, e.g. nta:QN0103", examples=["nta:QN0103"])] = None,
    since: Annotated[AwareDatetime | None, Query(description="Only reports updated at or after this time",
                                                 examples=["2026-11-25T20:00:00Z"])] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="From the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    f: Annotated[Literal["json", "geojson"] | None, Query(description="geojson: a GeoJSON FeatureCollection "
                                                                    "(as does Accept: application/geo+json)")] = None,
) -> ReportPage:
    """The caller's reports, newest first, filtered; follow `next` for the following page. With `f=geojson`
    (or Accept: application/geo+json) a FeatureCollection of their footprints, for GIS clients."""
    filters = report_queries.ReportFilter(
        status=status_, category=category, bbox=parse_bbox(bbox) if bbox else None,
        zone=report_queries.parse_zone(zone) if zone else None, since=since,
    )
    results, next_cursor = report_queries.list_reports(session, caller=caller, filters=filters, cursor=cursor,
                                                       limit=limit)
    next_link = None
    if next_cursor:
        params = {k: v for k, v in request.query_params.items() if k != "cursor"}
        params["cursor"] = next_cursor
        next_link = f"{request.url.path}?{urlencode(params)}"
    page = ReportPage(items=[ReportRead(**_fields(r, caller)) for r in results], cursor=next_cursor, next=next_link)
    if geojson_out.wants_geojson(f, request.headers.get("accept")):
        body = geojson_out.feature_collection([i.model_dump(mode="json") for i in page.items],
                                              extra={"cursor": next_cursor, "next": next_link})
        return JSONResponse(body, media_type=geojson_out.MEDIA_TYPE)
    return page


@router.get(
    "/reports/{report_id}",
    response_model=ReportDetail,
    responses={200: {"headers": _ETAG_HEADER, "content": {"application/json": {"example": {**_READ_EXAMPLE, "history": [
        {"version": 1, "status": "reported", "at": "2026-11-25T21:00:00Z",
         "changes": {"category": [None, "gas_leak"]}}]}}}}, **_errors(401, 403, 404, 422, 429)},
)
def get_report(report_id: ReportId, response: Response, session: SessionDep, caller: UtilityDep) -> ReportDetail:
    """One of the caller's reports with every version; another utility's report is 404."""
    result, history = report_queries.get_report(session, caller=caller, report_id=report_id)
    response.headers["ETag"] = report_updates.etag(result.report.version)
    return ReportDetail(**_fields(result, caller), history=[
        HistoryEntry(version=h.version, status=h.status, at=h.at, changes=h.changes) for h in history])


@router.patch(
    "/reports/{report_id}",
    response_model=ReportRead,
    responses={200: {"headers": _ETAG_HEADER, "content": {"application/json": {"example": {
        **_READ_EXAMPLE, "status": "restoring", "version": 2}}}},
        **_errors(400, 401, 403, 404, 409, 412, 413, 422, 429)},
)
def update_report(
    report_id: ReportId,
    patch: Annotated[ReportUpdate, Body(openapi_examples={
        "restoring": {"summary": "Crew on site", "value": {"properties": {
            "status": "restoring", "customers_affected": 300, "estimated_restore_at": "2026-11-25T23:00:00Z"}}},
        "restored": {"summary": "Restored: retires the report as alert evidence",
                     "value": {"properties": {"status": "restored", "customers_affected": 0}}},
    })],
    request: Request,
    response: Response,
    session: SessionDep,
    caller: UtilityDep,
    if_match: Annotated[str | None, Header(max_length=200, description='ETag from a read, e.g. W/"3"; '
                                           "412 when the report has changed since.")] = None,
) -> ReportRead:
    """Change a report's status, customers, ETR or footprint; each change is a new version."""
    result = report_updates.update_report(session, caller=caller, report_id=report_id, patch=patch,
                                          if_match=if_match, now=datetime.now(UTC), **_limits(request, session))
    session.commit()
    response.headers["ETag"] = report_updates.etag(result.report.version)
    return ReportRead(**_fields(result, caller))


def _kind(exc: Exception) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


@router.post(
    "/reports:batch",
    response_model=BatchResult,
    responses={200: {"content": {"application/json": {"example": {
        "created": 1, "existing": 0, "rejected": 1, "results": [
            {"index": 0, "status": "created", "id": 7},
            {"index": 1, "status": "rejected", "error": {
                "kind": "invalid_geometry", "detail": "geometry.coordinates: latitude 200 is outside [-90, 90]"}}]}}}},
        **_errors(400, 401, 403, 413, 422, 429)},
)
def batch_reports(
    body: Annotated[FeatureCollectionIn | Annotated[list[Any], Field(max_length=1000)], Body(openapi_examples={
        "collection": {"summary": "A FeatureCollection", "value": {"type": "FeatureCollection",
                                                                   "features": [POINT_EXAMPLE]}},
        "array": {"summary": "A plain array of Features", "value": [POINT_EXAMPLE]},
    })],
    request: Request,
    session: SessionDep,
    caller: UtilityDep,
) -> BatchResult:
    """Submit up to 1,000 reports; each item succeeds or fails on its own (a savepoint per item)."""
    features = body.features if isinstance(body, FeatureCollectionIn) else body
    limits = _limits(request, session)
    now = datetime.now(UTC)
    results: list[BatchItemResult] = []
    for index, item in enumerate(features):
        try:
            feature = ReportCreate.model_validate(item)
        except ValidationError as exc:
            detail = json.loads(exc.json(include_url=False, include_context=False, include_input=False))
            results.append(BatchItemResult(index=index, status="rejected",
                                           error=BatchItemError(kind="validation", detail=detail)))
            continue
        try:
            with session.begin_nested():
                result = reports.create_report(session, caller=caller, body=feature, idempotency_key=None,
                                               now=now, **limits)
        except (DomainError, IntegrityError) as exc:
            detail = exc.message if isinstance(exc, DomainError) else "conflicts with a concurrent submission"
            results.append(BatchItemResult(index=index, status="rejected",
                                           error=BatchItemError(kind=_kind(exc), detail=detail)))
            continue
        results.append(BatchItemResult(index=index, status="created" if result.created else "existing",
                                       id=result.report.id))
    session.commit()
    counts = {s: sum(1 for r in results if r.status == s) for s in ("created", "existing", "rejected")}
    return BatchResult(**counts, results=results)
