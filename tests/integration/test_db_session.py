"""The pool pings only connections that sat idle, and replaces one the server has dropped."""

import pytest
from sqlalchemy import text

from db import session as db_session


def _pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(database_url: str, pid: int) -> None:
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as c:
        assert c.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def test_a_connection_the_server_dropped_is_replaced_after_idling(database_url, monkeypatch):
    monkeypatch.setattr(db_session, "IDLE_PING_S", 0.0)
    engine = db_session.make_engine(database_url, pool_size=1)
    try:
        first = _pid(engine)
        _terminate(database_url, first)  # as a database restart does to every pooled connection
        assert _pid(engine) != first  # the ping failed, the pool connected afresh: no error reached us
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged(database_url, monkeypatch):
    monkeypatch.setattr(db_session, "IDLE_PING_S", 3600.0)
    engine = db_session.make_engine(database_url, pool_size=1)
    pings: list[object] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or real_ping(conn))
    try:
        _pid(engine)
        _pid(engine)
        assert pings == []
        monkeypatch.setattr(db_session, "IDLE_PING_S", 0.0)
        _pid(engine)
        assert len(pings) == 1  # the same check does ping once the connection counts as idle
        monkeypatch.setattr(db_session, "IDLE_PING_S", 3600.0)
        # Without the ping, a dropped connection surfaces as an error on its next use (the pool then
        # discards it): which is why connections that sat idle, where a restart hides, are pinged.
        _terminate(database_url, _pid(engine))
        with pytest.raises(Exception):
            _pid(engine)
        assert _pid(engine)
    finally:
        engine.dispose()
