"""Transaction-scoped advisory locks that a package takes on its own work, held to commit.

Zone locks are not taken here: they are alerts' (alerts.signals), taken in its own statements or in
fragments it hands to a caller's statement.
"""

from sqlalchemy import text
from sqlalchemy.orm import Session

_BY_NAME = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")
_BY_KEY = text("SELECT pg_advisory_xact_lock(:a, :b)")
_BY_KEY_SHARED = text("SELECT pg_advisory_xact_lock_shared(:a, :b)")


def xact_lock(session: Session, key: str | tuple[int, int], *, shared: bool = False) -> None:
    """Wait for and take the lock `key` until the transaction ends: a name (hashed to one 64-bit key) or a
    (class, object) pair of integers; `shared` takes it in share mode (pairs only)."""
    if isinstance(key, str):
        if shared:
            raise ValueError(f"lock {key!r}: only (class, object) locks are taken shared here")
        session.execute(_BY_NAME, {"name": key})
    else:
        session.execute(_BY_KEY_SHARED if shared else _BY_KEY, {"a": key[0], "b": key[1]})
