"""HTTP routes for admins: responders and their coverage, and outbox events that need attention."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text

from alerts import operators
from db.api import SessionDep
from db.errors import Conflict, NotFound
from dispatch import responders as responder_service
from dispatch.models import Responder
from dispatch.schemas import OutboxEventRead, ResponderCreate, ResponderRead, ResponderUpdate

router = APIRouter(prefix="/v1", tags=["dispatch admin"])
_bearer = HTTPBearer(auto_error=False, description="An admin operator token from `tocsin operators add`.")
_AUTH = {401: {"description": "Missing or invalid operator token"}, 403: {"description": "Not an admin"}}


def current_admin(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> operators.Identity:
    identity = operators.authenticate(session, token=credentials.credentials if credentials else None)
    return operators.require_role(identity, "admin")


AdminDep = Annotated[operators.Identity, Depends(current_admin)]


def _read(session: SessionDep, responder: Responder) -> ResponderRead:
    return ResponderRead(
        id=responder.id, name=responder.name, phone=responder.phone, opted_out=responder.opted_out,
        coverage=responder_service.coverage_specs(session, responder),
        created_at=responder.created_at, updated_at=responder.updated_at,
    )


@router.get("/responders", responses=_AUTH)
def list_responders(session: SessionDep, admin: AdminDep,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0)] = 0) -> list[ResponderRead]:
    """Responders with their coverage, by id."""
    return [_read(session, r) for r in responder_service.list_responders(session, limit=limit, offset=offset)]


@router.post("/responders", status_code=status.HTTP_201_CREATED, responses={
    **_AUTH, 409: {"description": "A responder already has that phone number"},
    422: {"description": "Invalid phone (not E.164-able), unknown layer or zone, bad schedule"}})
def create_responder(body: ResponderCreate, session: SessionDep, admin: AdminDep, response: Response) -> ResponderRead:
    """Add a responder; the phone is stored as E.164 (default region US)."""
    responder = responder_service.create_responder(session, name=body.name, phone=body.phone,
                                                   coverage=body.coverage, now=datetime.now(UTC))
    session.commit()
    response.headers["Location"] = f"/v1/responders/{responder.id}"
    return _read(session, responder)


@router.get("/responders/{responder_id}", responses={**_AUTH, 404: {"description": "No such responder"}})
def get_responder(responder_id: int, session: SessionDep, admin: AdminDep) -> ResponderRead:
    return _read(session, responder_service.get_responder(session, responder_id=responder_id))


@router.patch("/responders/{responder_id}", responses={**_AUTH, 404: {"description": "No such responder"}})
def update_responder(responder_id: int, body: ResponderUpdate, session: SessionDep, admin: AdminDep) -> ResponderRead:
    """Change name, phone or opt-out; `coverage`, when given, replaces the responder's coverage."""
    responder = responder_service.update_responder(
        session, responder_id=responder_id, name=body.name, phone=body.phone, opted_out=body.opted_out,
        coverage=body.coverage, now=datetime.now(UTC),
    )
    session.commit()
    return _read(session, responder)


@router.delete("/responders/{responder_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={**_AUTH, 404: {"description": "No such responder"}})
def delete_responder(responder_id: int, session: SessionDep, admin: AdminDep) -> None:
    """Remove a responder; their past deliveries stay (without the responder)."""
    responder_service.delete_responder(session, responder_id=responder_id)
    session.commit()


_OUTBOX_WHERE = {
    "parked": "parked_at IS NOT NULL AND published_at IS NULL",
    "pending": "parked_at IS NULL AND published_at IS NULL",
}


@router.get("/outbox", responses=_AUTH)
def list_outbox(session: SessionDep, admin: AdminDep,
                state: Annotated[Literal["parked", "pending"], Query()] = "parked",
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[OutboxEventRead]:
    """Outbox events not yet on MQTT: `parked` ones gave up (see `last_error`), `pending` ones are queued."""
    rows = session.execute(text(
        "SELECT id, event_id::text AS event_id, alert_id, kind, attempts, last_error, created_at, next_attempt_at, "
        f"published_at, parked_at FROM outbox_events WHERE {_OUTBOX_WHERE[state]} ORDER BY id LIMIT :limit"
    ), {"limit": limit}).mappings().all()
    return [OutboxEventRead(**dict(r)) for r in rows]


@router.post("/outbox/{outbox_id}/retry", responses={**_AUTH, 404: {"description": "No such event"},
                                                     409: {"description": "The event is not parked"}})
def retry_outbox(outbox_id: int, session: SessionDep, admin: AdminDep) -> dict[str, Any]:
    """Unpark an event: the relay tries it again now, with a fresh attempt count."""
    found = session.execute(text("SELECT parked_at, published_at FROM outbox_events WHERE id = :id FOR UPDATE"),
                            {"id": outbox_id}).one_or_none()
    if found is None:
        raise NotFound(f"outbox event {outbox_id} does not exist")
    if found.parked_at is None or found.published_at is not None:
        raise Conflict(f"outbox event {outbox_id} is not parked")
    session.execute(text("UPDATE outbox_events SET parked_at = NULL, attempts = 0, next_attempt_at = :now "
                         "WHERE id = :id"), {"id": outbox_id, "now": datetime.now(UTC)})
    session.execute(text("NOTIFY tocsin_outbox"))
    session.commit()
    return {"id": outbox_id, "state": "pending"}
