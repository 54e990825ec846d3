"""Tocsin behind PgBouncer in transaction pooling mode (the one scripts/services.sh starts): the engine keeps
nothing on a server connection past a transaction, and a report and a posts batch go through the app with its
database URL on the pooler, their alert events reaching MQTT through the relay, whose LISTEN goes direct.

Runs in every test run, as do the `[pooler]` runs of the tests marked `pooled` (tests/conftest.py)."""

import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError

from tests.integration.posts_support import entries

pytestmark = [pytest.mark.integration, pytest.mark.committing]


@pytest.fixture
def settings(settings, pooled_database_url):
    """The app's and the worker's engines through the pooler (LISTEN stays on conftest's direct
    database_listen_url). The relay's safety poll is far longer than any wait below: an event arrives in
    time only through NOTIFY."""
    return settings.model_copy(update={"database_url": pooled_database_url, "relay_poll_s": 300.0})


@pytest.fixture
def listening_relay(settings, direct_database_url):
    """The worker's relay role in a thread. With its 300 s poll it would notice `stop` only at the next
    wake-up, so it is stopped with a NOTIFY too, which must reach its LISTEN connection."""
    from db.session import libpq_dsn
    from dispatch.relay import CHANNEL
    from tocsin import worker

    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(settings,), kwargs={"stop": stop, "roles": ("relay",)},
                              daemon=True)
    thread.start()
    yield thread
    stop.set()
    with psycopg.connect(libpq_dsn(direct_database_url), autocommit=True) as conn:
        conn.execute(f"NOTIFY {CHANNEL}")
    thread.join(timeout=15)
    assert not thread.is_alive(), "the relay did not wake up on NOTIFY to stop"


def _pooler_admin(pooled_url: str, command: str) -> list[dict]:
    """A PgBouncer console command (SHOW ...), as rows keyed by column name."""
    u = make_url(pooled_url)
    dsn = f"postgresql://{u.username}:{u.password}@{u.host}:{u.port}/pgbouncer"
    # The console speaks only the simple query protocol, which a client-side-binding cursor uses.
    with psycopg.connect(dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        cur = conn.execute(command)
        names = [c.name for c in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def _prepared_after_repeats(engine) -> int:
    """Run one hot-path statement (db.raw) in eight transactions, then count the statements prepared on the
    server connection the last one ran on."""
    from db import raw
    from db.session import make_sessionmaker

    factory = make_sessionmaker(engine)
    for _ in range(8):
        with factory() as session, session.begin():
            raw.execute(session, "SELECT count(*) FROM zones WHERE id = ANY(:ids::bigint[])", {"ids": [1, 2]})
            prepared = session.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
    return prepared


def test_through_the_pooler_nothing_outlives_a_transaction(pooled_database_url, direct_database_url):
    from db.session import make_engine

    pooled = make_engine(pooled_database_url, pool_size=1)
    direct = make_engine(direct_database_url, pool_size=1)
    # The port's URL without `pooler=transaction`: db.session would send jit=off as a startup option.
    unmarked = make_engine(pooled_database_url.split("?", 1)[0], pool_size=1)
    try:
        # psycopg prepares a statement it has run five times; a later transaction's server connection
        # would not have it. Through the pooler nothing is prepared; direct, it is (so the count can tell).
        assert _prepared_after_repeats(pooled) == 0
        assert _prepared_after_repeats(direct) >= 1
        with pooled.connect() as conn:
            # jit off as on direct connections: set by the pooler on its server connections.
            assert conn.execute(text("SHOW jit")).scalar_one() == "off"
        with pytest.raises(OperationalError, match="unsupported startup parameter: options"):
            unmarked.connect().close()
    finally:
        for engine in (pooled, direct, unmarked):
            engine.dispose()


def test_migrations_run_through_the_pooler(pooled_database_url, direct_database_url):
    """`tocsin migrate` with the pooled URL: a fresh database gets the whole schema."""
    from db import migrate
    from db.session import libpq_dsn

    name = f"{make_url(direct_database_url).database}_migrate"
    admin = libpq_dsn(direct_database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate.upgrade(make_url(pooled_database_url).set(database=name).render_as_string(hide_password=False))
        with psycopg.connect(libpq_dsn(make_url(direct_database_url).set(database=name))) as conn:
            versions = {v for (v,) in conn.execute("SELECT version_num FROM alembic_version")}
        with psycopg.connect(admin) as conn:
            expected = {v for (v,) in conn.execute("SELECT version_num FROM alembic_version")}
        assert versions and versions == expected
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def partner_key(session_factory):
    from accounts import keys
    from db.session import transaction
    from geo import gazetteer_store

    with transaction(session_factory) as session:
        gazetteer_store.save_entries(session, entries=entries())
        return keys.issue_key(session, role="partner", label="pooler test partner")


def _post(ext: str, author: str, text: str) -> dict:
    created = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    return {"source": "partner", "external_id": ext, "author": author, "created_at": created, "text": text}


def test_report_and_posts_through_the_pooler_reach_mqtt(client, utility_key, partner_key, listening_relay,
                                                        subscriber_factory, topic_prefix, pooled_database_url):
    sub = subscriber_factory(f"{topic_prefix}/alerts/#")
    report = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.975, 40.725]},
              "properties": {"external_id": "P1", "category": "gas_leak"}}
    r = client.post("/v1/reports", json=report, headers={"Authorization": f"Bearer {utility_key}"})
    assert r.status_code == 201, r.text
    assert r.json()["zones"]["district"][0]["code"] == "A"
    [(topic, payload)] = sub.take(1, timeout=15)
    event = json.loads(payload)
    assert topic == f"{topic_prefix}/alerts/district/A/gas_leak"
    assert event["kind"] == "opened" and event["alert_id"] in r.json()["alerts_changed"]

    # Three flood posts from two authors: the flood_posts rule (tests/data/rules.yaml) opens an alert.
    batch = [_post("p1", "author-1", "Street flooding in Alphaville, cars stuck"),
             _post("p2", "author-2", "Alphaville streets flooded"),
             _post("p3", "author-1", "Flooding on my block in Alphaville")]
    r = client.post("/v1/posts:batch", json=batch, headers={"Authorization": f"Bearer {partner_key}"})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 3, r.text
    [(topic, payload)] = sub.take(1, timeout=15)
    event = json.loads(payload)
    assert topic.startswith(f"{topic_prefix}/alerts/district/A/")
    assert event["kind"] == "opened" and event["rule"] == "flood_posts"
    assert sub.drain(wait=1.0) == []

    # The app's connections are PgBouncer's clients (its pool keeps them open while the app runs).
    name = make_url(pooled_database_url).database
    assert [c for c in _pooler_admin(pooled_database_url, "SHOW CLIENTS") if c["database"] == name]


@pytest.mark.pooled
def test_the_pooler_run_of_a_pooled_test_goes_through_pgbouncer(engine, database_route, pooled_database_url,
                                                               direct_database_url):
    """The `[pooler]` runs (tests/conftest.py) are what they say: the session's engine is PgBouncer's client."""
    name = make_url(pooled_database_url).database
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        clients = [c for c in _pooler_admin(pooled_database_url, "SHOW CLIENTS") if c["database"] == name]
        if database_route == "pooler":
            assert clients, "no PgBouncer client while the [pooler] run's engine holds a connection"
            assert engine.url.port == make_url(pooled_database_url).port
        else:
            assert engine.url.port == make_url(direct_database_url).port
