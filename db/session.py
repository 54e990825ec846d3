"""Engine and session helpers; nothing here connects until called."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import URL, Engine, create_engine, event, exc, make_url
from sqlalchemy.orm import Session, sessionmaker

from db import plans

# A pooled connection idle for longer than this is pinged before use (a database restart leaves
# every pooled connection dead). One in steady use is not: on a loopback round trip of ~0.4 ms, a
# ping per request would be a tenth of a report's whole cost.
IDLE_PING_S = 2.0
CONNECT_TIMEOUT_S = 10


# A database URL's `?pooler=transaction` says a transaction pooler (PgBouncer's pool_mode = transaction)
# is in front: it is Tocsin's, never sent to the server (see split_pooler).
POOLER_PARAM = "pooler"


def split_pooler(url: str | URL) -> tuple[URL, bool]:
    """The URL without its `pooler` parameter, and whether that parameter says a transaction pooler."""
    u = make_url(url)
    mode = u.query.get(POOLER_PARAM)
    if mode is None:
        return u, False
    if mode != "transaction":
        raise ValueError(f"database URL parameter {POOLER_PARAM}={mode!r}: the only pooler mode that needs one is "
                         f"'transaction' (a session pooler needs no parameter)")
    return u.difference_update_query([POOLER_PARAM]), True


def libpq_dsn(url: str | URL) -> str:
    """A psycopg (libpq) URL for a SQLAlchemy one: no driver in the scheme, no `pooler` parameter."""
    u, _ = split_pooler(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 10, generic_plans: bool = False) -> Engine:
    """An engine for a PostGIS URL (postgresql+psycopg://...).

    JIT compilation is off for our connections (in the startup packet, no extra round trip): our
    statements are short, and on this class of machine compiling one costs more than running it
    (1.7 s of a 10,000-post batch's zone matching was JIT). A connection attempt gives up after
    CONNECT_TIMEOUT_S: a database host that drops packets must give a 503, not a request hung for the
    TCP timeout (minutes).

    Behind a transaction pooler (the URL ends in `?pooler=transaction`) a client's transactions run on
    whichever server connection is free, so nothing may outlive a transaction on it: psycopg prepares
    no statement on the server (it would after five runs of one, and the next transaction's server
    connection does not have it), and jit=off is not sent (PgBouncer refuses startup options; the
    pooler sets it on its server connections, scripts/pgbouncer.ini.in, or the role has it).

    `generic_plans`: the engine's direct connections plan every prepared statement once (db.plans), set in
    the startup packet too, so db.plans.use_generic_plans needs no statement of its own on them, and plan
    no sequential scan where an index serves (db.plans.STARTUP). Only for an engine whose every statement
    wants that (the report writer's, whose every read is by key); behind a pooler nothing is prepared,
    and it changes nothing."""
    u, pooled = split_pooler(url)
    connect_args: dict = {"connect_timeout": CONNECT_TIMEOUT_S}
    if pooled:
        connect_args["prepare_threshold"] = None
    else:
        connect_args["options"] = "-c jit=off" + ("".join(f" -c {s}" for s in plans.STARTUP) if generic_plans else "")
    engine = create_engine(u, pool_size=pool_size, max_overflow=20, connect_args=connect_args)
    _ping_when_idle(engine)
    return engine


def driver_lost(dbapi_connection: object) -> bool:
    """Whether psycopg knows its connection is gone: lost under a statement (closed or broken), which SQLAlchemy
    may never have seen (db.raw runs on the driver's connection)."""
    return bool(getattr(dbapi_connection, "broken", False) or getattr(dbapi_connection, "closed", False))


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, but only for connections that sat idle: a dead one is replaced."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        # A connection lost under a db.raw statement (psycopg's own error, which SQLAlchemy never saw) came
        # back to the pool looking healthy; psycopg knows it is broken, and asking costs nothing.
        if driver_lost(dbapi_connection):
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
