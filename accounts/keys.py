"""Utilities, partners and their API keys; keys are stored as SHA-256 digests only."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db import raw
from db.errors import Conflict, NotFound
from accounts.errors import BadApiKey
from accounts.models import ApiKey, Utility

KEY_PREFIX = "tk_"


@dataclass(frozen=True)
class Caller:
    key_id: int
    role: str  # utility | partner
    utility_id: int | None
    utility_name: str | None
    has_territory: bool = False


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


_AUTH_SQL = (  # run through db.raw: every request pays for it
    "SELECT k.id, k.role, k.utility_id, u.name, u.territory IS NOT NULL AS has_territory FROM api_keys k "
    "LEFT JOIN utilities u ON u.id = k.utility_id WHERE k.key_hash = :key_hash AND k.revoked_at IS NULL"
)


INVALID_KEY = "invalid or revoked API key"  # one answer for both: a caller learns nothing about which


def live_key_sql(key_id: str) -> str:
    """An SQL condition: the key `key_id` (an SQL expression) is unrevoked, or is 0, the feed importer's
    (ingest.reports.feed_import acts without a key). A report's insert runs it, so that a key revoked since
    the API last looked it up (accounts.key_cache) stores nothing."""
    return (f"({key_id} = 0 OR EXISTS (SELECT 1 FROM api_keys live_key WHERE live_key.id = {key_id} "
            "AND live_key.revoked_at IS NULL))")


_LIVE_SQL = "SELECT " + live_key_sql(":key_id")


def check_live(session: Session, *, caller: Caller) -> None:
    """BadApiKey when the caller's key has been revoked (in the caller's transaction)."""
    if not raw.execute(session, _LIVE_SQL, {"key_id": caller.key_id}).fetchone()[0]:
        raise BadApiKey(INVALID_KEY)


def authenticate(session: Session, *, key: str | None) -> Caller:
    if not key:
        raise BadApiKey("missing API key: send 'Authorization: Bearer <key>'")
    # Plain SQL, no ORM entity: this runs on every request, and the ORM round costs about a millisecond of CPU.
    return _caller(raw.execute(session, _AUTH_SQL, {"key_hash": hash_key(key)}).fetchone())


def _caller(row) -> Caller:
    if row is None:
        raise BadApiKey(INVALID_KEY)
    key_id, role, utility_id, utility_name, has_territory = row
    return Caller(key_id=key_id, role=role, utility_id=utility_id, utility_name=utility_name,
                  has_territory=bool(has_territory))


def _fetch_outside(engine: Engine, sql: str, params: dict) -> tuple | None:
    """One row of `sql` on a pooled connection in autocommit: one round trip, no BEGIN and ROLLBACK around
    it, and no connection held afterwards."""
    with engine.connect() as conn:
        driver = conn.execution_options(isolation_level="AUTOCOMMIT").connection.driver_connection
        return driver.execute(raw.to_psycopg(sql), params).fetchone()


def authenticate_outside(engine: Engine, *, key: str | None) -> Caller:
    """`authenticate` outside any transaction (POST /v1/reports then waits for its group commit holding no
    connection)."""
    if not key:
        raise BadApiKey("missing API key: send 'Authorization: Bearer <key>'")
    return _caller(_fetch_outside(engine, _AUTH_SQL, {"key_hash": hash_key(key)}))


def is_live_outside(engine: Engine, *, key_id: int) -> bool:
    """Whether the key is unrevoked, outside any transaction (as `authenticate_outside`)."""
    row = _fetch_outside(engine, _LIVE_SQL, {"key_id": key_id})
    return bool(row and row[0])


def list_keys(session: Session, *, utility_id: int) -> list[ApiKey]:
    """A utility's keys, oldest first, revoked ones included (only prefixes, never the keys)."""
    return list(session.scalars(select(ApiKey).where(ApiKey.utility_id == utility_id).order_by(ApiKey.id)))


def revoke_key(session: Session, *, key_id: int, now: datetime) -> ApiKey:
    """Revoke a key at once; requests with it get 401 from then on."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key id {key_id} does not exist", key_id=key_id)
    if key.revoked_at is None:
        key.revoked_at = now
    return key


def rotate_key(session: Session, *, key_id: int, now: datetime) -> str:
    """Revoke a key and issue its replacement (same utility, role and label); returns the new key in clear."""
    old = revoke_key(session, key_id=key_id, now=now)
    return issue_key(session, role=old.role, utility_id=old.utility_id, label=old.label)
