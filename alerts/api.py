"""HTTP routes for the control room: alerts, acknowledge/resolve, silences, CAP 1.2, operator sessions.

Every route needs an operator: `Authorization: Bearer <token>` (machines, scripts), or the
`tocsin_session` cookie set by POST /v1/session (the map). The cookie carries a server-side session id
(accounts.sessions), never the token. A browser sends the cookie whichever page asks, so a cookie-
authenticated write (and sign-in, and the live websocket) must come from the public base URL's origin
or TOCSIN_ALLOWED_ORIGINS; bearer requests need no Origin. Viewers read; operators and admins also
change alerts and silences. An operator sees and acts on the alerts their agencies cover (alerts.access);
any other alert answers 404, as one that does not exist would.
"""

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from alerts import access, cap, cap_data
from accounts import operators, sessions
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
from db import geojson_out
from accounts.api import SESSION_COOKIE, ActingDep, OperatorDep, require_origin, session_cookie
from db.api import SessionDep
from db.errors import InvalidInput
from db.openapi import error_responses
from geo import zone_store as zone_service

router = APIRouter(prefix="/v1", tags=["control room"])

_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Alert id")]
SilenceId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Silence id")]
_401 = ("Missing, invalid or disabled operator token, or a session that expired (idle or too old), was revoked "
        "or is unknown; the message says which")
_403_ORIGIN = ("A request with the session cookie came from an Origin (or Referer) that is not allowed, or sent "
               "neither; the message names it and the allowed origins")
_403_ROLE_OR_ORIGIN = ("The operator's role is not enough (the message names the role needed), or a request with "
                       "the session cookie came from a foreign Origin (the message names it)")


def _error(code: int, description: str, example: str) -> dict[int | str, dict[str, Any]]:
    """One Problem response with the control room's own example message."""
    entry = error_responses(code, **{f"_{code}": description})[code]
    return {code: {**entry, "content": {"application/json": {"example": {"detail": example}}}}}


# Reads need any operator and check no Origin (a cross-site page cannot read the answer): 401 only.
_AUTH_RESPONSES = _error(401, _401, "session expired (idle too long); sign in again")
_WRITE_RESPONSES = {**_AUTH_RESPONSES, **_error(403, _403_ROLE_OR_ORIGIN, "operator 'vera' has role 'viewer'; "
                                                                         "this needs role 'operator' or above")}
_ORIGIN_RESPONSE = _error(403, _403_ORIGIN, "allowed origins: https://tocsin.example.org; Origin "
                                            "'https://evil.example.org' is not one (TOCSIN_ALLOWED_ORIGINS adds more)")


def _now() -> datetime:
    return datetime.now(UTC)


def _plain(obj: Any) -> dict[str, Any]:
    """A dict from a service result: a dict, a dataclass (queries.AlertDetail and its items) or an ORM row."""
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
    """queries.AlertDetail (an ORM alert beside its zone, evidence, history ...) flattened into one body."""
    data = _plain(detail)
    flat = {**_plain(data.pop("alert")), **data}
    for key in ("evidence", "history", "notifications"):
        flat[key] = [_plain(item) for item in flat.get(key) or []]
    return AlertDetailRead.model_validate({**flat, "links": _links(flat["id"])})


# --- sessions (the map signs in once with a token; the cookie carries a session id) ---

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
             dependencies=[Depends(require_origin)],  # before the body is read: a foreign form gets nowhere
             responses={**_error(401, "Invalid or disabled operator token", "invalid or disabled operator token"),
                        **_ORIGIN_RESPONSE,
                        422: {"description": "No token in the JSON or form body"}})
def sign_in(request: Request, response: Response, session: SessionDep,
            token: Annotated[str, Depends(_token_from_body)],
            old_session_id: Annotated[str | None, Depends(session_cookie)]) -> OperatorRead:
    """Sign in with an operator token (JSON `{"token": ...}` or a form field): starts a server-side
    session and sets its id in an HttpOnly cookie. Needs an allowed Origin (or Referer)."""
    settings = request.app.state.settings
    identity = operators.authenticate(session, token=token)
    now = _now()
    if old_session_id:  # signing in again replaces the browser's session rather than leaving it live
        sessions.revoke_session(session, sid=old_session_id, now=now)
    sid = sessions.create_session(session, operator_id=identity.operator_id, now=now, max_s=settings.session_max_s,
                                  user_agent=request.headers.get("user-agent"),
                                  ip=request.client.host if request.client else None)
    session.commit()
    secure = settings.public_base_url.startswith("https://")
    response.set_cookie(SESSION_COOKIE, sid, max_age=int(settings.session_max_s), path="/", httponly=True,
                        samesite="strict", secure=secure)
    return _operator_read(identity)


def _operator_read(identity: operators.Identity) -> OperatorRead:
    return OperatorRead(name=identity.name, role=identity.role, agencies=list(identity.coverage.agencies))


@router.get("/session", response_model=OperatorRead, tags=["operator sessions"], responses=_AUTH_RESPONSES)
def whoami(identity: OperatorDep) -> OperatorRead:
    """The signed-in operator and their agencies."""
    return _operator_read(identity)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, tags=["operator sessions"],
               responses=_ORIGIN_RESPONSE)
def sign_out(request: Request, session: SessionDep,
             session_id: Annotated[str | None, Depends(session_cookie)]) -> Response:
    """End the browser's session on the server and clear its cookie (204 even when it had already ended)."""
    if session_id:
        require_origin(request)  # else any page could sign the control room out
        sessions.revoke_session(session, sid=session_id, now=_now())
        session.commit()
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --- alerts ---

@router.get("/alerts", response_model=list[AlertRead], responses={
    **_AUTH_RESPONSES, 200: {"content": {"application/geo+json": {"schema": {
        "type": "object", "description": "A GeoJSON FeatureCollection: each alert's zone outline"}}}}})
def list_alerts(
    session: SessionDep,
    identity: OperatorDep,
    state: Annotated[Literal["open", "acknowledged", "resolved"] | None, Query()] = None,
    layer: Annotated[str | None, Query(max_length=64, pattern=_NO_NUL, description="Zone layer, e.g. nta")] = None,
    zone: Annotated[str | None, Query(max_length=64, pattern=_NO_NUL, description="Zone code, e.g. QN0103")] = None,
    category: Annotated[str | None, Query(max_length=32, pattern=_NO_NUL)] = None,
    since: Annotated[datetime | None, Query(description="Updated at or after (ISO 8601 with offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    f: Annotated[Literal["json", "geojson"] | None, Query(description="geojson: a GeoJSON FeatureCollection of "
                                                                    "the alerts' zones (as does Accept: "
                                                                    "application/geo+json)")] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    """Alerts, newest first. With `f=geojson` (or Accept: application/geo+json) a FeatureCollection: each
    alert's zone outline, with the alert as its properties, for GIS clients."""
    if since is not None and since.tzinfo is None:
        raise InvalidInput(f"since {since.isoformat()} has no timezone offset; add Z or +00:00", field="since")
    rows = alert_service.list_alerts(session, state=state, layer=layer, zone=zone, category=category,
                                     since=since, limit=limit, now=_now(), coverage=identity.coverage)
    reads = [_alert_read(r) for r in rows]
    if not geojson_out.wants_geojson(f, accept):
        return reads
    outlines = zone_service.zone_outlines(session, [(r.zone.layer, r.zone.code) for r in reads])
    items = [{**r.model_dump(mode="json"), "geometry": outlines.get((r.zone.layer, r.zone.code))} for r in reads]
    return JSONResponse(geojson_out.feature_collection(items), media_type=geojson_out.MEDIA_TYPE)


@router.get("/alerts/{alert_id}.cap", response_class=Response,
            responses={200: {"content": {cap.MEDIA_TYPE: {}}, "description": "CAP 1.2 alert message"},
                       404: {"description": "No such alert"}, **_AUTH_RESPONSES})
def alert_cap(alert_id: AlertId, request: Request, session: SessionDep, identity: OperatorDep) -> Response:
    """The alert's latest version as CAP 1.2 XML (Alert, Update, or Cancel once resolved)."""
    settings = request.app.state.settings
    access.require_alert(session, alert_id=alert_id, coverage=identity.coverage)
    data = cap_data.load_cap_alert(session, alert_id=alert_id, web_base=settings.public_base_url)
    return Response(content=cap.render_cap(data, sender=settings.cap_sender), media_type=cap.MEDIA_TYPE)


@router.get("/alerts/{alert_id}", response_model=AlertDetailRead,
            responses={404: {"description": "No such alert"}, **_AUTH_RESPONSES})
def get_alert(alert_id: AlertId, session: SessionDep, identity: OperatorDep) -> AlertDetailRead:
    """One alert with its evidence and history."""
    access.require_alert(session, alert_id=alert_id, coverage=identity.coverage)
    return _detail_read(alert_service.get_alert(session, alert_id=alert_id, now=_now()))


def _transition(request: Request, session: SessionDep, change: Any, *, alert_id: int,
                identity: operators.Identity, body: NoteIn | None) -> AlertDetailRead:
    agency = access.require_alert(session, alert_id=alert_id, coverage=identity.coverage)
    change(session, alert_id=alert_id, actor=identity.actor, note=body.note if body else None, now=_now(),
           rules=request.app.state.rules(), agency=agency)
    session.commit()
    return _detail_read(alert_service.get_alert(session, alert_id=alert_id, now=_now()))


_CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such alert"},
    409: {"description": "The alert's state does not allow this; the message names both states"},
    **_WRITE_RESPONSES,
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


@router.post("/alerts/{alert_id}/escalate", response_model=AlertDetailRead, responses=_CHANGE_RESPONSES)
def escalate(alert_id: AlertId, request: Request, session: SessionDep, identity: ActingDep,
             body: NoteIn | None = None) -> AlertDetailRead:
    """Page the next responder tier now, without waiting for the rule's escalate_after (role operator or admin;
    the alert must be open). Recorded in the history with the operator and the note."""
    return _transition(request, session, alert_service.escalate, alert_id=alert_id, identity=identity, body=body)


# --- silences ---

@router.post("/silences", status_code=status.HTTP_201_CREATED, response_model=SilenceRead, tags=["silences"],
             responses={422: {"description": "Bad matchers or time range; the message names the field"},
                        **_WRITE_RESPONSES})
def create_silence(body: SilenceCreate, response: Response, session: SessionDep, identity: ActingDep) -> SilenceRead:
    """Mute notifications for matching alerts between starts_at and ends_at (alerts are still tracked)."""
    now = _now()
    starts_at = body.starts_at or now
    if body.ends_at <= starts_at:
        raise InvalidInput(f"ends_at {body.ends_at.isoformat()} is not after starts_at {starts_at.isoformat()}",
                           field="ends_at")
    matchers = silence_service.validate_matchers(body.matchers.as_dict())
    access.check_new_silence(identity.coverage, matchers)
    silence = silence_service.create_silence(
        session, matchers=matchers, starts_at=starts_at, ends_at=body.ends_at,
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
    rows = access.visible_silences(identity.coverage, silence_service.list_silences(
        session, now=_now(), include_expired=include_expired))
    return [SilenceRead.model_validate(_plain(s)) for s in rows]


@router.delete("/silences/{silence_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["silences"],
               responses={404: {"description": "No such silence"}, **_WRITE_RESPONSES})
def expire_silence(silence_id: SilenceId, session: SessionDep, identity: ActingDep) -> Response:
    """Expire a silence now (it stays in the list with include_expired=true)."""
    access.require_silence(session, silence_id=silence_id, coverage=identity.coverage)
    silence_service.expire_silence(session, silence_id=silence_id, actor=identity.actor, now=_now())
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
