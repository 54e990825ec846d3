"""Control-room operator accounts: roles, bearer tokens (stored hashed), authentication."""

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts import agencies, sessions
from accounts.models import Operator
from db.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from db.tokens import hash_token, new_token

log = logging.getLogger(__name__)

# Each role can do everything the roles before it can.
ROLES = ("viewer", "operator", "admin")
TOKEN_PREFIX = "to_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")


@dataclass(frozen=True)
class Identity:
    """Who is calling: enough to authorise and to record in an alert's history."""

    operator_id: int
    name: str
    role: str
    # What this operator may see and act on (accounts.agencies); everything unless agencies say otherwise.
    coverage: agencies.Coverage = field(default=agencies.EVERYTHING)

    @property
    def actor(self) -> str:
        """How this operator appears in alert history (`rule:...` is a rule, `operator:...` a person)."""
        return f"operator:{self.name}"


def role_allows(role: str, needed: str) -> bool:
    """Whether `role` includes the rights of `needed` (viewer < operator < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


def require_role(identity: Identity, needed: str) -> Identity:
    """The identity, or Forbidden naming the role needed."""
    if not role_allows(identity.role, needed):
        raise Forbidden(f"operator {identity.name!r} has role {identity.role!r}; this needs role {needed!r} or above",
                        role=identity.role, needed=needed)
    return identity


def _check(name: str, role: str) -> None:
    if not _NAME.match(name):
        raise InvalidInput(f"operator name {name!r} must be 1-64 letters, digits, space, '.', '_', '@' or '-', "
                           "starting with a letter or digit", field="name")
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")


def add_operator(session: Session, *, name: str, role: str, now: datetime) -> tuple[Operator, str]:
    """Create an account; returns it and its token in clear, the only time the token exists in clear."""
    _check(name, role)
    if session.scalar(select(Operator).where(Operator.name == name)) is not None:
        raise Conflict(f"operator {name!r} already exists", name=name)
    token = new_token(TOKEN_PREFIX)
    operator = Operator(name=name, role=role, token_hash=hash_token(token), created_at=now)
    session.add(operator)
    session.flush()
    log.info("operator %s added with role %s", operator.id, role)
    return operator, token


def reissue_token(session: Session, *, name: str, now: datetime) -> str:
    """Replace an operator's token (the old one stops working, and so do sessions signed in with it:
    a reissue is what you do when a token may have leaked); returns the new one in clear."""
    operator = _get(session, name)
    token = new_token(TOKEN_PREFIX)
    operator.token_hash = hash_token(token)
    session.flush()
    sessions.revoke_operator_sessions(session, operator_id=operator.id, now=now, reason=sessions.TOKEN_REISSUED)
    return token


def disable_operator(session: Session, *, name: str, now: datetime) -> Operator:
    """Stop an account's token and sessions from working; idempotent, keeps the first disabling time."""
    operator = _get(session, name)
    if operator.disabled_at is None:
        operator.disabled_at = now
        log.info("operator %s disabled", operator.id)
    session.flush()
    sessions.revoke_operator_sessions(session, operator_id=operator.id, now=now, reason=sessions.OPERATOR_DISABLED)
    return operator


def change_role(session: Session, *, name: str, role: str, now: datetime) -> Operator:
    """Give an operator another role; their sessions end (a session never outlives the rights it was
    signed in with, up or down), bearer tokens carry the new role from the next request."""
    _check(name, role)
    operator = _get(session, name)
    if operator.role != role:
        log.info("operator %s role %s -> %s", operator.id, operator.role, role)
        operator.role = role
        session.flush()
        sessions.revoke_operator_sessions(session, operator_id=operator.id, now=now, reason=sessions.ROLE_CHANGED)
    return operator


def list_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.name)))


def authenticate(session: Session, *, token: str | None) -> Identity:
    """The enabled operator holding `token`, else Unauthorized (the message never echoes the token)."""
    if not token:
        raise Unauthorized("missing operator token: send 'Authorization: Bearer <token>' or sign in at /v1/session")
    operator = session.scalar(select(Operator).where(Operator.token_hash == hash_token(token)))
    if operator is None or operator.disabled_at is not None:
        raise Unauthorized("invalid or disabled operator token")
    return _identity(session, operator.id, operator.name, operator.role)


def _identity(session: Session, operator_id: int, name: str, role: str) -> Identity:
    return Identity(operator_id=operator_id, name=name, role=role,
                    coverage=agencies.coverage_of(session, operator_id=operator_id, role=role))


def authenticate_session(session: Session, *, sid: str | None, now: datetime,
                         idle_s: float) -> tuple[Identity, int, bool]:
    """The operator of a live session cookie: (identity, session row id, whether last_seen_at was refreshed
    so the caller should commit); else Unauthorized naming why (expired, revoked, unknown)."""
    found = sessions.authenticate_session(session, sid=sid, now=now, idle_s=idle_s)
    return _identity(session, found.operator_id, found.name, found.role), found.session_id, found.touched


def _get(session: Session, name: str) -> Operator:
    operator = session.scalar(select(Operator).where(Operator.name == name))
    if operator is None:
        raise NotFound(f"operator {name!r} does not exist", name=name)
    return operator
