"""Control-room operator accounts: roles, bearer tokens (stored hashed), authentication."""

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.models import Operator
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


def reissue_token(session: Session, *, name: str) -> str:
    """Replace an operator's token (the old one stops working); returns the new one in clear."""
    operator = _get(session, name)
    token = new_token(TOKEN_PREFIX)
    operator.token_hash = hash_token(token)
    session.flush()
    return token


def disable_operator(session: Session, *, name: str, now: datetime) -> Operator:
    """Stop an account's token from working; idempotent, keeps the first disabling time."""
    operator = _get(session, name)
    if operator.disabled_at is None:
        operator.disabled_at = now
        log.info("operator %s disabled", operator.id)
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
    return Identity(operator_id=operator.id, name=operator.name, role=operator.role)


def _get(session: Session, name: str) -> Operator:
    operator = session.scalar(select(Operator).where(Operator.name == name))
    if operator is None:
        raise NotFound(f"operator {name!r} does not exist", name=name)
    return operator
