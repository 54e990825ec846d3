"""db.raw on a session's connection. A pipeline block that fails at its COMMIT (the statements sent with it only run then) leaves the
pooled connection clean for the next session. SQLAlchemy takes a transaction whose commit was called for
ended, so its pool skips the rollback it sends at check-in."""

import pytest

from db import raw
from db.session import make_engine, make_sessionmaker

pytestmark = [pytest.mark.integration, pytest.mark.committing, pytest.mark.pooled]


def test_a_commit_that_fails_in_pipeline_mode_leaves_the_pooled_connection_usable(database_url):
    engine = make_engine(database_url, pool_size=1)  # one connection: the next session gets the same one
    try:
        factory = make_sessionmaker(engine)
        for _ in range(2):
            with factory() as session:
                assert raw.execute(session, "SELECT 1 AS one", {}).fetchone().one == 1
                with pytest.raises(Exception, match="division by zero"):
                    with raw.pipeline(session):
                        raw.execute(session, "SELECT 1 / (:n - 1) AS boom", {"n": 1})
                        session.commit()
        with factory() as session:
            assert raw.execute(session, "SELECT 2 AS two", {}).fetchone().two == 2
    finally:
        engine.dispose()


def test_a_block_that_fails_inside_a_savepoint_leaves_the_transaction_going(database_url):
    """A failure inside a SAVEPOINT rolls back to the SAVEPOINT only, and the transaction (here, a setting
    local to it) goes on."""
    engine = make_engine(database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            raw.execute(session, "SELECT set_config('tocsin.test_kept', 'kept', true)", {}).fetchall()
            with pytest.raises(Exception, match="division by zero"):
                with session.begin_nested():
                    with raw.pipeline(session):
                        raw.execute(session, "SELECT 1 / (:n - 1) AS boom", {"n": 1})
            assert raw.execute(session, "SELECT current_setting('tocsin.test_kept', true) AS v",
                               {}).fetchone().v == "kept"
    finally:
        engine.dispose()


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_a_sessions_next_transaction_runs_on_the_connection_it_checked_out(database_url, end):
    """db.raw keeps the session's driver connection for the transaction's length: after a commit or a
    rollback the pool may hand the session another connection, and raw statements must follow it."""
    engine = make_engine(database_url, pool_size=2)
    try:
        first, second = engine.connect(), engine.connect()  # two idle connections in the pool, taken in turn
        first.close()
        second.close()
        factory = make_sessionmaker(engine)
        with factory() as session:
            used = []
            for _ in range(2):
                assert raw.execute(session, "SELECT 1 AS one", {}).fetchone().one == 1
                conn = raw.connection(session)
                assert conn is session.connection().connection.driver_connection
                used.append(conn)
                getattr(session, end)()
            assert used[0] is not used[1]  # the second transaction was on the other connection
    finally:
        engine.dispose()
