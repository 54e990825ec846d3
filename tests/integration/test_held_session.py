"""db.held: one session on one connection across transactions, rolled back where left open, let go when lost."""

import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from db import raw
from db.held import HeldSession
from db.session import make_engine, make_sessionmaker


@pytest.fixture
def own_engine(database_url):
    eng = make_engine(database_url, pool_size=1)
    yield eng
    eng.dispose()


def _pid(session) -> int:
    return session.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_transactions_share_one_connection_until_it_is_released(own_engine):
    held = HeldSession(make_sessionmaker(own_engine))
    with held.transaction() as session:
        # A temporary table lives as long as its connection: the next transaction sees it only on the same one.
        session.execute(text("CREATE TEMP TABLE held_probe (n int)"))
        first = _pid(session)
        session.commit()
    with held.transaction() as session:
        session.execute(text("INSERT INTO held_probe VALUES (1)"))
        assert _pid(session) == first
        session.commit()
    assert own_engine.pool.checkedout() == 1
    held.release()
    assert own_engine.pool.checkedout() == 0 and not held.holding
    with held.transaction() as session:  # checked out again: the pool hands back the same connection here
        assert session.execute(text("SELECT count(*) FROM held_probe")).scalar_one() == 1
    held.release()


def test_what_a_transaction_leaves_open_is_rolled_back(own_engine):
    held = HeldSession(make_sessionmaker(own_engine))
    with held.transaction() as session:
        session.execute(text("CREATE TEMP TABLE held_probe (n int)"))
        session.commit()
    with held.transaction() as session:  # a batch that answered with its error, without committing
        raw.execute(session, "INSERT INTO held_probe VALUES (:n)", {"n": 1})
    with pytest.raises(ZeroDivisionError):
        with held.transaction() as session:
            session.execute(text("INSERT INTO held_probe VALUES (2)"))
            raise ZeroDivisionError
    with held.transaction() as session:
        assert session.execute(text("SELECT count(*) FROM held_probe")).scalar_one() == 0
    assert held.holding
    held.release()


@pytest.mark.parametrize("through", ["sqlalchemy", "db.raw"])
def test_a_lost_connection_is_let_go_and_the_next_transaction_has_another(own_engine, through):
    held = HeldSession(make_sessionmaker(own_engine))
    with held.transaction() as session:
        lost = _pid(session)
        session.commit()
    with pytest.raises((sa_exc.OperationalError, psycopg.OperationalError)):
        with held.transaction() as session:
            if through == "db.raw":  # psycopg's own error: SQLAlchemy never sees the connection die
                raw.execute(session, "SELECT pg_terminate_backend(pg_backend_pid())", {}).fetchall()
            else:
                session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())")).all()
    assert not held.holding
    with held.transaction() as session:
        assert _pid(session) != lost
        session.commit()
    held.release()
