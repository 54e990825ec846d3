"""Server-side operator sessions (OWASP session management) and the Origin rule for browsers.

Signing in with an operator token creates a session: a random id (256 bits) that only the browser's
HttpOnly cookie holds; the table stores its SHA-256, so a database read does not yield live cookies. A
session ends when it is idle for longer than `idle_s` (last_seen_at is refreshed at most once per
TOUCH_EVERY, so a busy page is not a write per request), when it reaches expires_at (absolute, set at
sign-in), or when it is revoked: by signing out, or by any change to its operator (disabled, role
changed, token reissued), so a demoted or disabled operator keeps nothing they signed in with.

Time is passed in as `now`; nothing here commits (the caller's transaction does).
"""

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from accounts.models import Operator, OperatorSession
from db.errors import Forbidden, Unauthorized
from db.tokens import hash_token

log = logging.getLogger(__name__)

TOUCH_EVERY = timedelta(seconds=60)
# Ended sessions stay this long as a record of who signed in from where, then go (the sweeper purges them).
KEEP_ENDED = timedelta(days=30)
_UA_MAX, _IP_MAX = 256, 64

# Why a session ended; the 401 names it.
SIGNED_OUT = "signed out"
OPERATOR_DISABLED = "operator disabled"
ROLE_CHANGED = "role changed"
TOKEN_REISSUED = "token reissued"


@dataclass(frozen=True)
class SessionIdentity:
    """An authenticated session: its operator, its row (the live feed re-checks it while a socket is
    open), and whether last_seen_at was just refreshed (then the caller commits)."""

    operator_id: int
    name: str
    role: str
    session_id: int
    touched: bool


def create_session(session: Session, *, operator_id: int, now: datetime, max_s: float,
                   user_agent: str | None = None, ip: str | None = None) -> str:
    """A new session for an authenticated operator; returns its id in clear (for the cookie only)."""
    sid = secrets.token_urlsafe(32)
    session.add(OperatorSession(
        operator_id=operator_id, id_hash=hash_token(sid), created_at=now, last_seen_at=now,
        expires_at=now + timedelta(seconds=max_s),
        user_agent=user_agent[:_UA_MAX] if user_agent else None, ip=ip[:_IP_MAX] if ip else None,
    ))
    session.flush()
    return sid


def _ended(row: OperatorSession, *, now: datetime, idle_s: float) -> str | None:
    """Why the session no longer works, or None while it does."""
    if row.revoked_at is not None:
        return f"session revoked ({row.revoked_reason or 'revoked'}); sign in again"
    if now >= row.expires_at:
        return "session expired (signed in too long ago); sign in again"
    if now >= row.last_seen_at + timedelta(seconds=idle_s):
        return "session expired (idle too long); sign in again"
    return None


def authenticate_session(session: Session, *, sid: str | None, now: datetime, idle_s: float) -> SessionIdentity:
    """The operator of a live session, else Unauthorized naming why (never echoing the id).

    Refreshes last_seen_at when it is older than TOUCH_EVERY (`touched`: the caller commits)."""
    if not sid:
        raise Unauthorized("missing operator token: send 'Authorization: Bearer <token>' or sign in at /v1/session")
    found = session.execute(
        select(OperatorSession, Operator).join(Operator, Operator.id == OperatorSession.operator_id)
        .where(OperatorSession.id_hash == hash_token(sid))
    ).first()
    if found is None:
        raise Unauthorized("unknown session; sign in again")
    row, operator = found
    reason = _ended(row, now=now, idle_s=idle_s)
    if reason is not None:
        raise Unauthorized(reason)
    if operator.disabled_at is not None:  # revoked at disabling; this covers a row written meanwhile
        raise Unauthorized("invalid or disabled operator token")
    touched = now - row.last_seen_at >= TOUCH_EVERY
    if touched:
        touch(session, session_ids=[row.id], now=now)
    return SessionIdentity(operator_id=operator.id, name=operator.name, role=operator.role, session_id=row.id,
                           touched=touched)


def touch(session: Session, *, session_ids: Iterable[int], now: datetime) -> None:
    """Mark sessions as used now (at most once per TOUCH_EVERY each: one statement, no read first)."""
    ids = list(session_ids)
    if ids:
        session.execute(update(OperatorSession)
                        .where(OperatorSession.id.in_(ids), OperatorSession.last_seen_at <= now - TOUCH_EVERY,
                               OperatorSession.revoked_at.is_(None))
                        .values(last_seen_at=now))


def revoke_session(session: Session, *, sid: str, now: datetime, reason: str = SIGNED_OUT) -> bool:
    """End one session by its id in clear; False when there was no live one (signing out twice is fine)."""
    result = session.execute(update(OperatorSession)
                             .where(OperatorSession.id_hash == hash_token(sid), OperatorSession.revoked_at.is_(None))
                             .values(revoked_at=now, revoked_reason=reason))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_operator_sessions(session: Session, *, operator_id: int, now: datetime, reason: str) -> int:
    """End every live session of an operator; returns how many."""
    result = session.execute(update(OperatorSession)
                             .where(OperatorSession.operator_id == operator_id, OperatorSession.revoked_at.is_(None))
                             .values(revoked_at=now, revoked_reason=reason))
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        log.info("operator %s: %d session(s) revoked (%s)", operator_id, count, reason)
    return count


def purge_ended(session: Session, *, now: datetime, keep: timedelta = KEEP_ENDED) -> int:
    """Delete sessions that ended (revoked, or past their absolute expiry) longer than `keep` ago; returns
    how many. An idle-expired session's row goes once its absolute expiry is that old too."""
    cutoff = now - keep
    result = session.execute(delete(OperatorSession).where(
        or_(OperatorSession.revoked_at < cutoff, OperatorSession.expires_at < cutoff)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def still_valid(session: Session, *, session_ids: Iterable[int], bearers: Iterable[tuple[int, str]],
                now: datetime, idle_s: float) -> dict[tuple[str, object], str]:
    """One check over every open live connection: those that must close now, with why.

    `session_ids` are cookie connections' session rows; `bearers` are (operator id, token hash) of
    token connections (a token stops when its operator is disabled or it is reissued). Returns
    {("session", id) | ("bearer", (operator_id, token_hash)): reason}. Connections that stay count
    as use of their session (the open map is being watched), refreshed at most once per TOUCH_EVERY.
    """
    ids, pairs = set(session_ids), set(bearers)
    ended: dict[tuple[str, object], str] = {}
    if ids:
        rows = session.execute(
            select(OperatorSession, Operator.disabled_at).join(Operator, Operator.id == OperatorSession.operator_id)
            .where(OperatorSession.id.in_(ids))
        ).all()
        seen = {row.id for row, _ in rows}
        for row, disabled_at in rows:
            reason = _ended(row, now=now, idle_s=idle_s)
            if reason is None and disabled_at is not None:
                reason = "invalid or disabled operator token"
            if reason is not None:
                ended[("session", row.id)] = reason
        for missing in ids - seen:  # the operator was deleted
            ended[("session", missing)] = "unknown session; sign in again"
        touch(session, session_ids=[i for i in seen if ("session", i) not in ended], now=now)
    if pairs:
        current = {op_id: token_hash for op_id, token_hash in session.execute(
            select(Operator.id, Operator.token_hash).where(Operator.id.in_({op for op, _ in pairs}),
                                                           Operator.disabled_at.is_(None)))}
        for operator_id, token_hash in pairs:
            if current.get(operator_id) != token_hash:
                ended[("bearer", (operator_id, token_hash))] = "invalid or disabled operator token"
    return ended


# --- Origin: a cookie is sent by the browser whatever page asks, so writes must prove where they come from ---

def origin_of(url: str | None) -> str | None:
    """scheme://host[:port] of a URL, lower-case, default port dropped; None when it has none."""
    if not url or url == "null":
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def allowed_origins(public_base_url: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The public base URL's origin first, then the allow-list's, each normalised."""
    out = [o for o in (origin_of(public_base_url), *(origin_of(x) for x in extra)) if o]
    return tuple(dict.fromkeys(out))


def check_origin(*, origin: str | None, referer: str | None, allowed: tuple[str, ...]) -> str:
    """The request's origin if it is allowed, else Forbidden naming it and what is allowed.

    Origin wins; Referer is the fallback for the few browsers and requests that omit Origin; a request
    with neither is refused, since a browser's same-origin write always sends one of them."""
    claimed = origin if origin is not None else referer
    source = "Origin" if origin is not None else "Referer"
    # Short messages: the websocket's close reason holds 123 bytes; the allowed origins come first.
    if claimed is None:
        raise Forbidden(f"allowed origins: {', '.join(allowed)}; the session cookie needs an Origin "
                        "(or Referer) header: refused without one", field="Origin")
    normal = origin_of(claimed)
    if normal is None or normal not in allowed:
        raise Forbidden(f"allowed origins: {', '.join(allowed)}; {source} {claimed[:200]!r} is not one "
                        "(TOCSIN_ALLOWED_ORIGINS adds more)", field="Origin")
    return normal
