"""HTTP routes for the control room: alerts, acknowledge/resolve, silences, CAP 1.2, operator sessions.

Every route needs an operator token (`Authorization: Bearer <token>`, or the `tocsin_session`
cookie set by POST /v1/session). Viewers read; operators and admins also change alerts and silences.
"""

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Cookie, Depends, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from alerts import cap, cap_data, operators
from alerts import service as alert_service
from alerts import silences as silence_service
from alerts.schemas import (
    AlertDetailRead,
    AlertRead,
    NoteIn,
    OperatorRead,
    SilenceCreate,
    SilenceRead,
)
from db.api import SessionDep
from db.errors import InvalidInput

router = APIRouter(prefix="/v1", tags=["control room"])

SESSION_COOKIE = "tocsin_session"
SESSION_MAX_AGE_S = 12 * 3600  # one control-room shift
_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Alert id")]
SilenceId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Silence id")]
_bearer = HTTPBearer(auto_error=False, description="An operator token from `tocsin operators add`.")
_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid or disabled operator token"},
    403: {"description": "The operator's role is not enough; the message names the role needed"},
}


def current_operator(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    tocsin_session: Annotated[str | None, Cookie(include_in_schema=False)] = None,
) -> operators.Identity:
    """The signed-in operator: a bearer token wins over the session cookie."""
    token = credentials.credentials if credentials else tocsin_session
    return operators.authenticate(session, token=token)


OperatorDep = Annotated[operators.Identity, Depends(current_operator)]


async def _acting_operator(identity: OperatorDep) -> operators.Identity:  # no I/O: no thread hop
    return operators.require_role(identity, "operator")


ActingDep = Annotated[operators.Identity, Depends(_acting_operator)]


def _now() -> datetime:
    return datetime.now(UTC)


def _plain(obj: Any) -> dict[str, Any]:
    """A dict from a service result: a dict, a dataclass (views.AlertDetail and its items) or an ORM row."""
    if isinstance(obj, dict):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def _links(alert_id: int) -> dict[str, str]:
    return {"self": f"/v1/alerts/{alert_id}", "cap": f"/v1/alerts/{alert_id}.cap"}


def _alert_read(item: dict[str, Any]) -> AlertRead:
    return AlertRead.model_validate({**item, "links": _links(item["id"])})


def _detail_read(detail: Any) -> AlertDetailRead:
    """views.AlertDetail (an ORM alert beside its zone, evidence, history ...) flattened into one body."""
    data = _plain(detail)
    flat = {**_plain(data.pop("alert")), **data}
    for key in ("evidence", "history", "notifications"):
        flat[key] = [_plain(item) for item in flat.get(key) or []]
    return AlertDetailRead.model_validate({**flat, "links": _links(flat["id"])})


# --- sessions (the map signs in once; the cookie carries the same token) ---

async def _token_from_body(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = await request.json()
        except ValueError as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}", field="token") from exc
        token = data.get("token") if isinstance(data, dict) else None
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        token = (await request.form()).get("token")
    else:
        raise InvalidInput(f"content type {content_type!r} is not JSON or a form; send {{\"token\": ...}}",
                           field="token")
    if not isinstance(token, str) or not token:
        raise InvalidInput("the body has no 'token'", field="token")
    return token


@router.post("/session", response_model=OperatorRead, tags=["operator sessions"],
             responses={401: _AUTH_RESPONSES[401], 422: {"description": "No token in the JSON or form body"}})
def sign_in(request: Request, response: Response, session: SessionDep,
            token: Annotated[str, Depends(_token_from_body)]) -> OperatorRead:
    """Sign in with an operator token (JSON `{"token": ...}` or a form field); sets an HttpOnly cookie."""
    identity = operators.authenticate(session, token=token)
    secure = request.app.state.settings.public_base_url.startswith("https://")
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_MAX_AGE_S, path="/", httponly=True,
                        samesite="strict", secure=secure)
    return OperatorRead(name=identity.name, role=identity.role)


@router.get("/session", response_model=OperatorRead, tags=["operator sessions"], responses=_AUTH_RESPONSES)
def whoami(identity: OperatorDep) -> OperatorRead:
    """The signed-in operator."""
    return OperatorRead(name=identity.name, role=identity.role)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, tags=["operator sessions"])
def sign_out(response: Response) -> Response:
    """Clear the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.status_code = status.HTTP_204_NO_CONTENT
    return response


# --- alerts ---

@router.get("/alerts", response_model=list[AlertRead], responses=_AUTH_RESPONSES)
def list_alerts(
    session: SessionDep,
    identity: OperatorDep,
    state: Annotated[Literal["open", "acknowledged", "resolved"] | None, Query()] = None,
    layer: Annotated[str | None, Query(max_length=64, pattern=_NO_NUL, description="Zone layer, e.g. nta")] = None,
    zone: Annotated[str | None, Query(max_length=64, pattern=_NO_NUL, description="Zone code, e.g. QN0103")] = None,
    category: Annotated[str | None, Query(max_length=32, pattern=_NO_NUL)] = None,
    since: Annotated[datetime | None, Query(description="Updated at or after (ISO 8601 with offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertRead]:
    """Alerts, newest first."""
    if since is not None and since.tzinfo is None:
        raise InvalidInput(f"since {since.isoformat()} has no timezone offset; add Z or +00:00", field="since")
    rows = alert_service.list_alerts(session, state=state, layer=layer, zone=zone, category=category,
                                     since=since, limit=limit, now=_now())
    return [_alert_read(r) for r in rows]


@router.get("/alerts/{alert_id}.cap", response_class=Response,
            responses={200: {"content": {cap.MEDIA_TYPE: {}}, "description": "CAP 1.2 alert message"},
                       404: {"description": "No such alert"}, **_AUTH_RESPONSES})
def alert_cap(alert_id: AlertId, request: Request, session: SessionDep, identity: OperatorDep) -> Response:
    """The alert's latest version as CAP 1.2 XML (Alert, Update, or Cancel once resolved)."""
    settings = request.app.state.settings
    data = cap_data.load_cap_alert(session, alert_id=alert_id, web_base=settings.public_base_url)
    return Response(content=cap.render_cap(data, sender=settings.cap_sender), media_type=cap.MEDIA_TYPE)


@router.get("/alerts/{alert_id}", response_model=AlertDetailRead,
            responses={404: {"description": "No such alert"}, **_AUTH_RESPONSES})
def get_alert(alert_id: AlertId, session: SessionDep, identity: OperatorDep) -> AlertDetailRead:
    """One alert with its evidence and history."""
    return _detail_read(alert_service.get_alert(session, alert_id=alert_id, now=_now()))


def _transition(request: Request, session: SessionDep, change: Any, *, alert_id: int,
                identity: operators.Identity, body: NoteIn | None) -> AlertDetailRead:
    change(session, alert_id=alert_id, actor=identity.actor, note=body.note if body else None, now=_now(),
           rules=request.app.state.rules())
    session.commit()
    return _detail_read(alert_service.get_alert(session, alert_id=alert_id, now=_now()))


_CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such alert"},
    409: {"description": "The alert's state does not allow this; the message names both states"},
    **_AUTH_RESPONSES,
}


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertDetailRead, responses=_CHANGE_RESPONSES)
def acknowledge(alert_id: AlertId, request: Request, session: SessionDep, identity: ActingDep,
                body: NoteIn | None = None) -> AlertDetailRead:
    """Acknowledge an open alert (role operator or admin)."""
    return _transition(request, session, alert_service.acknowledge, alert_id=alert_id, identity=identity, body=body)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertDetailRead, responses=_CHANGE_RESPONSES)
def resolve(alert_id: AlertId, request: Request, session: SessionDep, identity: ActingDep,
            body: NoteIn | None = None) -> AlertDetailRead:
    """Resolve an open or acknowledged alert (role operator or admin)."""
    return _transition(request, session, alert_service.resolve, alert_id=alert_id, identity=identity, body=body)


# --- silences ---

@router.post("/silences", status_code=status.HTTP_201_CREATED, response_model=SilenceRead, tags=["silences"],
             responses={422: {"description": "Bad matchers or time range; the message names the field"},
                        **_AUTH_RESPONSES})
def create_silence(body: SilenceCreate, response: Response, session: SessionDep, identity: ActingDep) -> SilenceRead:
    """Mute notifications for matching alerts between starts_at and ends_at (alerts are still tracked)."""
    now = _now()
    starts_at = body.starts_at or now
    if body.ends_at <= starts_at:
        raise InvalidInput(f"ends_at {body.ends_at.isoformat()} is not after starts_at {starts_at.isoformat()}",
                           field="ends_at")
    silence = silence_service.create_silence(
        session, matchers=body.matchers.as_dict(), starts_at=starts_at, ends_at=body.ends_at,
        created_by=identity.actor, comment=body.comment, now=now,
    )
    session.commit()
    read = SilenceRead.model_validate(_plain(silence))
    response.headers["Location"] = f"/v1/silences/{read.id}"
    return read


@router.get("/silences", response_model=list[SilenceRead], tags=["silences"], responses=_AUTH_RESPONSES)
def list_silences(session: SessionDep, identity: OperatorDep,
                  include_expired: Annotated[bool, Query()] = False) -> list[SilenceRead]:
    """Active and pending silences (and ended or expired ones with include_expired=true)."""
    rows = silence_service.list_silences(session, now=_now(), include_expired=include_expired)
    return [SilenceRead.model_validate(_plain(s)) for s in rows]


@router.delete("/silences/{silence_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["silences"],
               responses={404: {"description": "No such silence"}, **_AUTH_RESPONSES})
def expire_silence(silence_id: SilenceId, session: SessionDep, identity: ActingDep) -> Response:
    """Expire a silence now (it stays in the list with include_expired=true)."""
    silence_service.expire_silence(session, silence_id=silence_id, actor=identity.actor, now=_now())
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
