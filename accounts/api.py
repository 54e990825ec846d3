"""Who is calling, as FastAPI dependencies that every api module uses.

- Operators (the control room): `Authorization: Bearer <token>` (machines, scripts), or the `tocsin_session`
  cookie set by POST /v1/session (the map). The cookie carries a server-side session id (accounts.sessions),
  never the token. A browser sends the cookie whichever page asks, so a cookie-authenticated write must come
  from the public base URL's origin or TOCSIN_ALLOWED_ORIGINS; bearer requests need no Origin. Viewers read;
  operators and admins also act.
- Utilities and partners: an API key (`Authorization: Bearer <key>`) of the right kind, spent against its
  per-minute allowance (accounts.ratelimit).
"""

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from accounts import keys, operators, sessions
from accounts.errors import BadApiKey, RateLimited
from db.api import SessionDep
from db.errors import Forbidden

SESSION_COOKIE = "tocsin_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Two OpenAPI security schemes, either one authenticates an operator route.
operator_bearer = HTTPBearer(auto_error=False, scheme_name="operatorToken",
                     description="Operator token: an operator's bearer token from `tocsin operators add`.")
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="operatorSession",
                       description="Session cookie set by POST /v1/session (HttpOnly, SameSite=Strict); "
                                   "writes with it must send an allowed Origin.")


def _now() -> datetime:
    return datetime.now(UTC)


def allowed_origins(request: Request) -> tuple[str, ...]:
    settings = request.app.state.settings
    return sessions.allowed_origins(settings.public_base_url, settings.allowed_origins)


def require_origin(request: Request) -> None:
    """Forbidden unless the request's Origin (else Referer) is the public base URL's or allow-listed."""
    sessions.check_origin(origin=request.headers.get("origin"), referer=request.headers.get("referer"),
                          allowed=allowed_origins(request))


def current_operator(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)],
    session_id: Annotated[str | None, Depends(session_cookie)],
) -> operators.Identity:
    """The calling operator: a bearer token wins over the session cookie; a cookie write needs an allowed
    Origin (checked before the session, so a forged request learns nothing about it)."""
    if credentials is not None:
        return operators.authenticate(session, token=credentials.credentials)
    if session_id and request.method not in SAFE_METHODS:
        require_origin(request)
    settings = request.app.state.settings
    identity, _, touched = operators.authenticate_session(session, sid=session_id, now=_now(),
                                                          idle_s=settings.session_idle_s)
    if touched:
        session.commit()  # last_seen_at, at most once a minute per session
    return identity


OperatorDep = Annotated[operators.Identity, Depends(current_operator)]


async def _acting_operator(identity: OperatorDep) -> operators.Identity:  # no I/O: no thread hop
    return operators.require_role(identity, "operator")


ActingDep = Annotated[operators.Identity, Depends(_acting_operator)]


async def current_admin(identity: OperatorDep) -> operators.Identity:  # the control room's own auth, no I/O here
    return operators.require_role(identity, "admin")

AdminDep = Annotated[operators.Identity, Depends(current_admin)]


# --- API keys: utilities and partners

utility_bearer = HTTPBearer(auto_error=False, scheme_name="utilityKey",
                     description="A utility API key from `tocsin utilities add`.")


def current_caller(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(utility_bearer)]
) -> keys.Caller:
    return keys.authenticate(session, key=credentials.credentials if credentials else None)


async def current_utility(request: Request, caller: Annotated[keys.Caller, Depends(current_caller)]) -> keys.Caller:
    # Async: no I/O here, and a sync dependency costs a thread-pool hop on every request.
    return _utility(request, caller)


def _utility(request: Request, caller: keys.Caller) -> keys.Caller:
    if caller.role != "utility":
        raise Forbidden("this endpoint needs a utility API key")
    return within_rate_limit(request, caller)


def within_rate_limit(request: Request, caller: keys.Caller) -> keys.Caller:
    """Spend one of the key's tokens, or refuse with 429 and Retry-After."""
    limiter = request.app.state.rate_limiter
    wait_s = limiter.take(caller.key_id, now_s=time.monotonic())
    if wait_s is not None:
        raise RateLimited(f"rate limit of {limiter.per_min} requests per minute exceeded for this key; "
                          f"retry after {wait_s} s", retry_after_s=wait_s)
    return caller


UtilityDep = Annotated[keys.Caller, Depends(current_utility)]


class _ReleasedUtilityKey(HTTPBearer):
    """POST /v1/reports' caller as a single dependency: the utilityKey scheme (`utility_bearer`'s, so OpenAPI
    shows the same), the key looked up outside any transaction (a report waiting for its group commit,
    ingest.reports.writer, holds no database connection), then `_utility`'s role check and rate limit.

    One dependency rather than three (scheme, lookup, check): FastAPI solves each one on every report. A
    utility key seen lately is known from the process's accounts.key_cache (the report's insert checks that
    it is still unrevoked); any other is looked up in the thread pool whose size matches the engine's pool
    (settings.api_concurrency). `request.state.cached_key` says which."""

    async def __call__(self, request: Request) -> keys.Caller:  # type: ignore[override]
        credentials = await super().__call__(request)
        key = credentials.credentials if credentials else None
        cache = request.app.state.key_cache
        caller = cache.get(key, now_s=time.monotonic()) if key else None
        request.state.cached_key = caller is not None
        if caller is None:
            caller = await looked_up(request, key)
        return _utility(request, caller)


async def looked_up(request: Request, key: str | None) -> keys.Caller:
    """The key's caller as the database has it now (BadApiKey if it has none), remembered in the key cache."""
    caller = await run_in_threadpool(keys.authenticate_outside, request.app.state.engine, key=key)
    assert key is not None  # authenticate_outside refused a missing one
    request.app.state.key_cache.put(key, caller, now_s=time.monotonic())
    return caller


released_utility = _ReleasedUtilityKey(auto_error=False, scheme_name=utility_bearer.scheme_name,
                                       description=utility_bearer.model.description)
ReleasedUtilityDep = Annotated[keys.Caller, Depends(released_utility)]


async def recheck_cached(request: Request, caller: keys.Caller) -> None:
    """Before answering an error of its own to a caller the key cache knew: BadApiKey (401) if the key has
    been revoked since, as a lookup would have said (accounts.key_cache). A report that reaches its insert
    needs no such check: the insert checks the key itself."""
    if not getattr(request.state, "cached_key", False):
        return
    if not await run_in_threadpool(keys.is_live_outside, request.app.state.engine, key_id=caller.key_id):
        forget_key(request, caller)
        raise BadApiKey(keys.INVALID_KEY)


def forget_key(request: Request, caller: keys.Caller) -> None:
    request.app.state.key_cache.forget(caller.key_id)


# Its own scheme in OpenAPI: the same Authorization header as utilities, but a different kind of key.
partner_bearer = HTTPBearer(auto_error=False, scheme_name="partnerKey",
                     description="A partner API key from `tocsin partners add`.")


def partner_caller(session: SessionDep,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(partner_bearer)]) -> keys.Caller:
    return keys.authenticate(session, key=credentials.credentials if credentials else None)


async def current_partner(request: Request, caller: Annotated[keys.Caller, Depends(partner_caller)]) -> keys.Caller:
    if caller.role != "partner":
        raise Forbidden(f"this endpoint needs a partner API key, not a {caller.role} key "
                        "(create one with `tocsin partners add NAME`)")
    return within_rate_limit(request, caller)
