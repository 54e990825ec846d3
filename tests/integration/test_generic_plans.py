"""db.plans.use_generic_plans: a statement of its own on an ordinary connection, none on one opened with
generic plans (db.session.make_engine's `generic_plans`, the report writer's engine)."""

import pytest
from sqlalchemy import text

from db import plans, raw
from db.session import make_engine, make_sessionmaker


def _mode(session) -> str:
    return session.execute(text("SHOW plan_cache_mode")).scalar_one()


@pytest.fixture
def statements(monkeypatch):
    """The statements db.raw runs, in order (the real ones still run)."""
    seen: list[str] = []
    real = raw.execute

    def spy(session, sql, params):
        seen.append(sql)
        return real(session, sql, params)

    monkeypatch.setattr(raw, "execute", spy)
    return seen


def test_an_ordinary_connection_sets_generic_plans_for_the_transaction_alone(database_url, statements):
    engine = make_engine(database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            assert _mode(session) == "auto"
            plans.use_generic_plans(session)
            assert statements == [plans._SET]
            assert _mode(session) == "force_generic_plan"
            session.commit()
            assert _mode(session) == "auto"  # the next transaction, on the same pooled connection
    finally:
        engine.dispose()


def test_a_connection_opened_with_generic_plans_keeps_them_and_needs_no_statement(direct_database_url, statements):
    engine = make_engine(direct_database_url, pool_size=1, generic_plans=True)
    try:
        for _ in range(2):  # a second transaction on the pooled connection has them as well
            with make_sessionmaker(engine)() as session:
                assert _mode(session) == "force_generic_plan"
                plans.use_generic_plans(session)
                assert _mode(session) == "force_generic_plan"
                session.commit()
        assert statements == []
        with engine.connect() as conn:  # jit=off is still sent with it
            assert conn.execute(text("SHOW jit")).scalar_one() == "off"
    finally:
        engine.dispose()


def test_behind_a_transaction_pooler_generic_plans_are_set_per_transaction(pooled_database_url, statements):
    """PgBouncer takes no startup options: the setting goes with each transaction, as on an ordinary connection."""
    engine = make_engine(pooled_database_url, pool_size=1, generic_plans=True)
    try:
        with make_sessionmaker(engine)() as session:
            plans.use_generic_plans(session)
            assert statements == [plans._SET]
            assert _mode(session) == "force_generic_plan"
            session.commit()
    finally:
        engine.dispose()


def _key_check_plan(engine) -> str:
    """The plan of a foreign-key check's lookup (as PostgreSQL's own, by key with FOR KEY SHARE) on a table of
    one row: the size at which a connection's first report plans the checks against a new site's tables."""
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE parent (id bigint PRIMARY KEY, body text)"))
        conn.execute(text("INSERT INTO parent VALUES (1, 'x')"))
        conn.execute(text("ANALYZE parent"))
        conn.execute(text("PREPARE key_check(bigint) AS SELECT 1 FROM ONLY parent x WHERE id = $1 FOR KEY SHARE OF x"))
        plan = "\n".join(conn.execute(text("EXPLAIN EXECUTE key_check(1)")).scalars())
        conn.rollback()
    return plan


def test_the_writers_connections_look_up_by_key_at_any_table_size(direct_database_url):
    """A plan made once per connection (generic plans, and every foreign-key check's) must not be a sequential
    scan chosen while the table held a row: it would go on scanning the whole table as the table grows."""
    ordinary = make_engine(direct_database_url, pool_size=1)
    writer = make_engine(direct_database_url, pool_size=1, generic_plans=True)
    try:
        assert "Seq Scan on parent" in _key_check_plan(ordinary)  # what the planner does for a one-row table
        assert "Index Scan using parent_pkey" in _key_check_plan(writer)
        with writer.connect() as conn:
            assert conn.execute(text("SHOW enable_seqscan")).scalar_one() == "off"
    finally:
        ordinary.dispose()
        writer.dispose()
