"""Utilities, partners and their API keys; keys are stored as SHA-256 digests only."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import Conflict
from ingest.errors import BadApiKey
from ingest.models import ApiKey, Utility

KEY_PREFIX = "tk_"


@dataclass(frozen=True)
class Caller:
    key_id: int
    role: str  # utility | partner
    utility_id: int | None
    utility_name: str | None


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; no password-style stretching needed.
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def add_utility(session: Session, *, name: str, territory_wkt: str | None = None) -> Utility:
    if session.scalar(select(Utility).where(Utility.name == name)) is not None:
        raise Conflict(f"utility {name!r} already exists", name=name)
    utility = Utility(name=name, territory=f"SRID=4326;{territory_wkt}" if territory_wkt else None)
    session.add(utility)
    session.flush()
    return utility


def get_utility(session: Session, *, name: str) -> Utility | None:
    return session.scalar(select(Utility).where(Utility.name == name))


def issue_key(session: Session, *, role: str, utility_id: int | None = None, label: str = "") -> str:
    """Create a key and return it in clear; this is the only time it exists in clear."""
    key = new_key()
    session.add(ApiKey(utility_id=utility_id, role=role, prefix=key[:10], key_hash=hash_key(key), label=label))
    session.flush()
    return key


def authenticate(session: Session, *, key: str | None) -> Caller:
    if not key:
        raise BadApiKey("missing API key: send 'Authorization: Bearer <key>'")
    row = session.execute(
        select(ApiKey, Utility.name)
        .outerjoin(Utility, Utility.id == ApiKey.utility_id)
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).first()
    if row is None:
        raise BadApiKey("invalid or revoked API key")
    api_key, utility_name = row
    return Caller(key_id=api_key.id, role=api_key.role, utility_id=api_key.utility_id, utility_name=utility_name)


def revoke_key(session: Session, *, key_id: int, now: datetime) -> None:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise BadApiKey(f"API key id {key_id} does not exist")
    key.revoked_at = now
