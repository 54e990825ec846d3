"""Engine and session helpers; nothing here connects until called."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

# A pooled connection idle for longer than this is pinged before use (a database restart leaves
# every pooled connection dead). One in steady use is not: on a loopback round trip of ~0.4 ms, a
# ping per request would be a tenth of a report's whole cost.
IDLE_PING_S = 2.0
CONNECT_TIMEOUT_S = 10


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for a PostGIS URL (postgresql+psycopg://...).

    JIT compilation is off for our connections (in the startup packet, no extra round trip): our
    statements are short, and on this class of machine compiling one costs more than running it
    (1.7 s of a 10,000-post batch's zone matching was JIT). A connection attempt gives up after
    CONNECT_TIMEOUT_S: a database host that drops packets must give a 503, not a request hung for the
    TCP timeout (minutes)."""
    engine = create_engine(url, pool_size=pool_size, max_overflow=20,
                           connect_args={"options": "-c jit=off", "connect_timeout": CONNECT_TIMEOUT_S})
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, but only for connections that sat idle: a dead one is replaced."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        # A connection lost under a db.raw statement (psycopg's own error, which SQLAlchemy never saw) came
        # back to the pool looking healthy; psycopg knows it is broken, and asking costs nothing.
        if getattr(dbapi_connection, "broken", False) or getattr(dbapi_connection, "closed", False):
            raise exc.DisconnectionError("pooled connection was lost")
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as e:  # the pool discards this connection and checks out a fresh one
            raise exc.DisconnectionError(f"pooled connection failed its ping: {e}") from e


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session:
        with session.begin():
            yield session
