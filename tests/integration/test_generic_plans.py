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
