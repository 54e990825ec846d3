"""HTTP routes for utilities: outage and hazard reports."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from db.api import SessionDep
from db.errors import Forbidden
from geo.matching import ZoneMatch
from ingest import keys, reports
from ingest.schemas import ReportCreate, ReportRead, ZoneRef

router = APIRouter(prefix="/v1", tags=["utility reports"])
_bearer = HTTPBearer(auto_error=False, description="A utility API key from `tocsin utilities add`.")


def current_caller(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> keys.Caller:
    return keys.authenticate(session, key=credentials.credentials if credentials else None)


def current_utility(caller: Annotated[keys.Caller, Depends(current_caller)]) -> keys.Caller:
    if caller.role != "utility":
        raise Forbidden("this endpoint needs a utility API key")
    return caller


UtilityDep = Annotated[keys.Caller, Depends(current_utility)]


def _zones_by_layer(zones: list[ZoneMatch]) -> dict[str, list[ZoneRef]]:
    out: dict[str, list[ZoneRef]] = {}
    for z in zones:
        out.setdefault(z.layer, []).append(ZoneRef(code=z.code, name=z.name, weight=round(z.weight, 4)))
    return out


def _read(result: reports.ReportResult, caller: keys.Caller) -> ReportRead:
    r = result.report
    return ReportRead(
        id=r.id, utility=caller.utility_name or "", external_id=r.external_id, category=r.category,
        status=r.status, customers_affected=r.customers_affected, cause=r.cause, description=r.description,
        started_at=r.started_at, estimated_restore_at=r.estimated_restore_at, geometry=result.geometry,
        version=r.version, created_at=r.created_at, updated_at=r.updated_at,
        zones=_zones_by_layer(result.zones), repaired=result.repaired, alerts_changed=result.alerts_changed,
    )


@router.post(
    "/reports",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportRead,
    responses={
        200: {"description": "The same report was already stored (idempotent retry)", "model": ReportRead},
        401: {"description": "Missing or invalid API key"},
        409: {"description": "Same external_id with a different body"},
        422: {"description": "Invalid GeoJSON, coordinates or properties; the message names the problem"},
    },
)
def create_report(
    body: ReportCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: UtilityDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ReportRead:
    """Submit an outage or hazard report as a GeoJSON Feature (longitude first)."""
    state = request.app.state
    result = reports.create_report(
        session, caller=caller, body=body, idempotency_key=idempotency_key, rules=state.rules(),
        jurisdiction_bbox=state.settings.jurisdiction_bbox, now=datetime.now(UTC),
    )
    session.commit()
    if not result.created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/reports/{result.report.id}"
    return _read(result, caller)
