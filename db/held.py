"""One session on one connection, held across transactions by the one thread that uses it.

A new ORM session per transaction, on a connection checked out of the pool and checked back in, cost the
report writer about a fifth of its client CPU per lone report: in bench.writer, 0.74 ms against 0.60 held
(medians of six runs each, alternated). A thread that runs one transaction after another
(ingest.reports.writer's, while reports keep coming) holds both instead: after each transaction the session
forgets its objects (they stay usable, detached, as after a close) and a transaction left open is rolled
back. A connection found broken there (a lost server: the rollback fails, or psycopg knows it lost
it under a db.raw statement, which SQLAlchemy never saw) is let go, and the next transaction checks out
another. The holder gives it back to the pool when it goes idle (`release`), so that a connection which
then sits idle is pinged at its next check-out like any other (db.session's `_ping_when_idle`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from db.session import driver_lost


class HeldSession:
    """A session of `factory` on a connection of the engine it is bound to, held until `release`. Not thread-safe:
    one thread uses it."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._held: tuple[Connection, Session] | None = None

    @property
    def holding(self) -> bool:
        return self._held is not None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """The held session for one transaction: commit it inside; whatever is left open is rolled back after.
        A factory bound to a connection rather than an engine (the tests' rolled-back one) has nothing to hold:
        each transaction gets a session of its own, as without this class."""
        bind = self._factory.kw.get("bind")
        if not isinstance(bind, Engine):
            with self._factory() as session:
                yield session
            return
        if self._held is None:
            conn = bind.connect()
            self._held = (conn, self._factory(bind=conn))
        conn, session = self._held
        try:
            yield session
        finally:
            self._settle(conn, session)

    def _settle(self, conn: Connection, session: Session) -> None:
        try:
            if session.in_transaction():
                session.rollback()
            session.expunge_all()
            # SQLAlchemy invalidates a connection it saw die; psycopg alone knows of one lost under db.raw.
            lost = conn.invalidated or driver_lost(conn.connection.driver_connection)
        except Exception:  # noqa: BLE001 - a rollback that fails: the connection is gone
            lost = True
        if lost:
            self.release(lost=True)

    def release(self, *, lost: bool = False) -> None:
        """Give the connection back to the pool (`lost`: discard it); the next transaction checks one out."""
        held, self._held = self._held, None
        if held is None:
            return
        conn, session = held
        with contextlib.suppress(Exception):
            session.close()
        if lost:
            with contextlib.suppress(Exception):
                conn.invalidate()
        with contextlib.suppress(Exception):
            conn.close()
