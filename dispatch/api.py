"""HTTP routes for admins: responders and their coverage, and outbox events that need attention."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from alerts import access, outbox
from alerts.api import AlertId
from accounts.api import ActingDep, AdminDep
from db.api import SessionDep
from db.input_guard import INT4_MAX, INT8_MAX
from db.openapi import error_responses
from dispatch import delivery_log
from dispatch import responders as responder_service
from dispatch.models import Responder
from dispatch.schemas import (
    CoverageSpec, DeliveryRead, OutboxEventRead, ResponderCreate, ResponderRead, ResponderUpdate,
)

router = APIRouter(prefix="/v1", tags=["dispatch admin"], responses=error_responses(422, 503))
_BODY = error_responses(400, 413)
# Bounded by the column types: responders.id is integer, outbox_events.id bigint.
ResponderId = Annotated[int, Path(ge=1, le=INT4_MAX, description="Responder id")]
OutboxId = Annotated[int, Path(ge=1, le=INT8_MAX, description="Outbox event id")]
_AUTH = {401: {"description": "Missing, invalid or disabled operator token, or an expired, revoked or unknown "
                             "session"},
         403: {"description": "Not an admin, or a request with the session cookie from a foreign Origin"}}



def _read(session: SessionDep, responder: Responder) -> ResponderRead:
    return ResponderRead(
        id=responder.id, name=responder.name, phone=responder.phone, opted_out=responder.opted_out,
        coverage=responder_service.coverage_specs(session, responder),
        created_at=responder.created_at, updated_at=responder.updated_at,
    )


@router.get("/responders", responses=_AUTH)
def list_responders(session: SessionDep, admin: AdminDep,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=INT8_MAX)] = 0) -> list[ResponderRead]:
    """Responders with their coverage, by id."""
    return [_read(session, r) for r in responder_service.list_responders(session, limit=limit, offset=offset)]


def _zoned(request: Request, session: SessionDep, coverage: list[CoverageSpec] | None) -> list[CoverageSpec] | None:
    """Coverage with the place's time zone where a spec names none (the app wires `default_timezone`)."""
    if coverage is None or all(c.timezone for c in coverage):
        return coverage
    tz = request.app.state.default_timezone(session)
    return [c if c.timezone else c.model_copy(update={"timezone": tz}) for c in coverage]


@router.post("/responders", status_code=status.HTTP_201_CREATED, responses={
    **_AUTH, **_BODY, **error_responses(409, 422, _409="A responder already has that phone number",
                                        _422="Invalid phone (not E.164-able), unknown layer or zone, bad schedule, "
                                             "NUL or a lone surrogate in a text field")})
def create_responder(body: ResponderCreate, request: Request, session: SessionDep, admin: AdminDep,
                     response: Response) -> ResponderRead:
    """Add a responder; the phone is stored as E.164 (default region US)."""
    responder = responder_service.create_responder(session, name=body.name, phone=body.phone,
                                                   coverage=_zoned(request, session, body.coverage),
                                                   now=datetime.now(UTC))
    session.commit()
    response.headers["Location"] = f"/v1/responders/{responder.id}"
    return _read(session, responder)


@router.get("/responders/{responder_id}", responses={**_AUTH, **error_responses(404, _404="No such responder")})
def get_responder(responder_id: ResponderId, session: SessionDep, admin: AdminDep) -> ResponderRead:
    return _read(session, responder_service.get_responder(session, responder_id=responder_id))


@router.patch("/responders/{responder_id}", responses={
    **_AUTH, **_BODY, **error_responses(404, 409, _404="No such responder",
                                        _409="A responder already has that phone number")})
def update_responder(responder_id: ResponderId, body: ResponderUpdate, request: Request, session: SessionDep,
                     admin: AdminDep) -> ResponderRead:
    """Change name, phone or opt-out; `coverage`, when given, replaces the responder's coverage."""
    responder = responder_service.update_responder(
        session, responder_id=responder_id, name=body.name, phone=body.phone, opted_out=body.opted_out,
        coverage=_zoned(request, session, body.coverage), now=datetime.now(UTC),
    )
    session.commit()
    return _read(session, responder)


@router.delete("/responders/{responder_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={**_AUTH, **error_responses(404, _404="No such responder")})
def delete_responder(responder_id: ResponderId, session: SessionDep, admin: AdminDep) -> None:
    """Remove a responder; their past deliveries stay (without the responder)."""
    responder_service.delete_responder(session, responder_id=responder_id)
    session.commit()


@router.get("/alerts/{alert_id}/deliveries", tags=["control room"], responses={
    **error_responses(401, 403, 404, _401="Missing, invalid or disabled operator token, or an expired, revoked or "
                                          "unknown session",
                      _403="The operator's role is viewer: who was paged needs role operator or above",
                      _404="No such alert")})
def alert_deliveries(alert_id: AlertId, session: SessionDep, identity: ActingDep) -> list[DeliveryRead]:
    """Who was notified of the alert: each delivery's responder, channel, status, time and whether that
    responder acknowledged, oldest first (role operator or admin; 404 for an alert outside their agencies)."""
    access.require_alert(session, alert_id=alert_id, coverage=identity.coverage)
    return [DeliveryRead.model_validate(vars(d)) for d in delivery_log.alert_deliveries(session, alert_id=alert_id)]


@router.get("/outbox", responses=_AUTH)
def list_outbox(session: SessionDep, admin: AdminDep,
                state: Annotated[Literal["parked", "pending"], Query()] = "parked",
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[OutboxEventRead]:
    """Outbox events not yet on MQTT: `parked` ones gave up (see `last_error`), `pending` ones are queued."""
    return [OutboxEventRead(**row) for row in outbox.unpublished(session, state=state, limit=limit)]


@router.post("/outbox/{outbox_id}/retry", responses={**_AUTH, **error_responses(
    404, 409, _404="No such event", _409="The event is not parked")})
def retry_outbox(outbox_id: OutboxId, session: SessionDep, admin: AdminDep) -> dict[str, Any]:
    """Unpark an event: the relay tries it again now, with a fresh attempt count."""
    outbox.unpark(session, outbox_id=outbox_id, now=datetime.now(UTC))
    session.commit()
    return {"id": outbox_id, "state": "pending"}
