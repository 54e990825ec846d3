"""Shared fixtures: a throwaway migrated database on the local PostGIS, the real Mosquitto, the app."""

import functools
import graphlib
import os
import queue
import shlex
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

REPO = Path(__file__).resolve().parents[1]
TEST_RULES = REPO / "tests" / "data" / "rules.yaml"


def _service_url(name: str) -> str:
    """A service URL from the environment, else from var/services.env written by scripts/services.sh."""
    value = os.environ.get(name)
    if value:
        return value
    env_file = REPO / "var" / "services.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith(f"export {name}="):
                return shlex.split(line.split("=", 1)[1])[0]  # as bash reads it (printf %q quoting)
    pytest.fail(f"{name} is not set and var/services.env is missing: run `make services` first")


@pytest.fixture(scope="session")
def direct_database_url() -> Iterator[str]:
    """A fresh database, migrated with Alembic exactly as the product does, dropped at the end; its URL
    straight to PostgreSQL."""
    from db import migrate

    base = _service_url("TOCSIN_DATABASE_URL")
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"tocsin_test_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pooled_database_url(direct_database_url) -> str:
    """The same database through the local PgBouncer in transaction pooling mode (scripts/services.sh),
    with the `pooler=transaction` parameter that tells db.session so."""
    from sqlalchemy import make_url

    name = make_url(direct_database_url).database
    return make_url(_service_url("TOCSIN_PGBOUNCER_URL")).set(database=name).render_as_string(hide_password=False)


def pytest_generate_tests(metafunc) -> None:
    """A test marked `pooled` runs twice: `[direct]`, and `[pooler]` with the tests' engines, the app and the
    worker reaching the database through PgBouncer (LISTEN and the test database's set-up still go direct).
    The direct run's parameter is None, the cache key of every unmarked test, so the session's engine and
    its kin are rebuilt only where a `[pooler]` run starts or ends (pytest groups those runs together)."""
    if metafunc.definition.get_closest_marker("pooled") and "database_route" in metafunc.fixturenames:
        metafunc.parametrize("database_route", [None, "pooler"], ids=["direct", "pooler"], indirect=True,
                             scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items) -> None:
    """Files marked `heavy` first. `make test` hands whole files to its processes in this order
    (--dist loadfile --no-loadscope-reorder), so the long ones start early and the many short ones fill in
    at the end. xdist's own order (most tests first) left one-test files such as the schemathesis runs for
    last, and two of three processes idle for the run's last 12-15 s."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(scope="session")
def database_route(request) -> str:
    """'pooler' in the second run of a test marked `pooled` (pytest_generate_tests), else 'direct'."""
    return getattr(request, "param", None) or "direct"


@pytest.fixture(scope="session")
def database_url(request, database_route, direct_database_url) -> str:
    """The URL the code under test uses: direct, or through PgBouncer in a `[pooler]` run."""
    return request.getfixturevalue("pooled_database_url") if database_route == "pooler" else direct_database_url


@pytest.fixture(scope="session")
def demo_gazetteer_entries():
    """The demo gazetteer's entries (New York, built from the installed packages), built once per process:
    building takes about two seconds. Shared, so never changed by a test."""
    from geo import gazetteer_builders

    return tuple(gazetteer_builders.build_demo_entries())


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    return _service_url("TOCSIN_MQTT_URL")


@pytest.fixture(scope="session")
def engine(database_url):
    from db.session import make_engine
    from tocsin import models_registry

    models_registry.load()
    eng = make_engine(database_url, pool_size=5)
    yield eng
    eng.dispose()


@functools.cache
def _tables(engine) -> tuple[str, ...]:
    """Every table of ours (whoever added it), quoted, each after the tables whose foreign keys refer to it."""
    with engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT IN ('alembic_version', 'spatial_ref_sys')")).scalars().all()
        refs = conn.execute(text(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND connamespace = 'public'::regnamespace")).all()
    referrers: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in refs:
        if child != parent:
            referrers[parent].add(child)
    quote = engine.dialect.identifier_preparer.quote
    return tuple(quote(t) for t in graphlib.TopologicalSorter(referrers).static_order())


def _empty_tables(engine) -> None:
    """Empty every table and restart every column's ids, so a test starts as on a fresh database.

    Rows are deleted, not truncated: TRUNCATE gives each table new files, which costs far more than
    deleting the few rows a test leaves. Only tables that hold rows are touched, children before their
    parents. A rolled-back test leaves rows nowhere but advances sequences, so those restart whatever
    the tables hold.

    A background thread of the previous test (a live feed's session check, a worker role's heartbeat) may
    still be finishing a transaction: emptying then can deadlock with it, and PostgreSQL may pick it as
    the one to abort. It is retried, as any deadlock victim should be."""
    from sqlalchemy.exc import OperationalError

    order = _tables(engine)
    holding_rows = " UNION ALL ".join(f"SELECT {i} WHERE EXISTS (SELECT FROM {t})" for i, t in enumerate(order))
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                for i in sorted(conn.execute(text(holding_rows)).scalars()):
                    conn.execute(text(f"DELETE FROM {order[i]}"))
                conn.execute(text(
                    "SELECT setval(s.seqrelid, s.seqstart, false) FROM pg_sequence s "
                    "JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid "
                    "AND d.deptype IN ('a', 'i')"))
            return
        except OperationalError as exc:
            if "deadlock detected" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


class _TestConnection(Connection):
    """The connection a rolled-back test's sessions share; `get_bind().url` works on it as on an engine
    (geo keys its caches by the database's URL)."""

    @property
    def url(self):
        return self.engine.url


# Fixtures whose code opens its own connections (the app's lifespan builds an engine, the worker and the
# CLI theirs): they see only committed rows, so a test that uses them must be marked `committing`.
NEEDS_COMMITS = ("client", "make_client", "relay", "live_server", "cli")


@pytest.fixture
def session_factory(request, engine):
    """Sessions for a test, on empty tables.

    By default every session of the test joins one outer transaction on one connection, rolled back at
    the end: `session.commit()` (and `transaction(...)`) releases a savepoint, `rollback()` returns to
    one, and nothing reaches other connections. A test marked `committing` gets sessions on the engine
    instead, whose commits are real: for code on other connections (the app, the worker, other threads
    or processes, LISTEN/NOTIFY)."""
    from db.session import make_sessionmaker

    _empty_tables(engine)
    factory = make_sessionmaker(engine)
    if request.node.get_closest_marker("committing"):
        yield factory
        return
    needing = [f for f in NEEDS_COMMITS if f in request.fixturenames]
    if needing:
        pytest.fail(f"{request.node.nodeid} uses {needing}, which see only committed rows: mark it committing")
    with _TestConnection(engine) as conn:
        outer = conn.begin()
        factory.configure(bind=conn, join_transaction_mode="create_savepoint")
        yield factory
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def clean_db(request, engine):
    """The engine on empty tables, for a test (marked `committing`) that commits through it."""
    if not request.node.get_closest_marker("committing"):
        pytest.fail(f"{request.node.nodeid} commits through clean_db: mark it committing")
    _empty_tables(engine)
    return engine


@pytest.fixture(scope="session")
def lexicon():
    """The default lexicon (data/lexicon.yaml), compiled once and shared: it is frozen, and expands to
    ~84,000 entries (0.6 s)."""
    from ingest.posts import classify

    return classify.load_lexicon()


@pytest.fixture
def post_state():
    """The post pipeline's per-process state (zones, gazetteer index, worker process), closed after the test."""
    from ingest.posts.state import PostState

    state = PostState()
    yield state
    state.close()


@pytest.fixture
def topic_prefix() -> str:
    """A private MQTT topic tree per test, so tests never see each other's messages."""
    return f"test/{uuid.uuid4().hex[:12]}/tocsin/v1"


@pytest.fixture
def settings(database_url, direct_database_url, mqtt_url, topic_prefix):
    from tocsin.settings import Settings

    return Settings(
        database_url=database_url, database_listen_url=direct_database_url, mqtt_url=mqtt_url,
        mqtt_topic_prefix=topic_prefix,
        mqtt_client_id=f"tocsin-test-{uuid.uuid4().hex[:8]}", rules_file=TEST_RULES,
        public_base_url="http://tocsin.test", relay_poll_s=0.5,
        # No retention purge in the tests' workers: fixed-date test rows would age past the periods and go
        # mid-test. tests/integration/test_retention.py purges with chosen times.
        purge_interval_s=0,
        # A full collection of this process's heap at every app start cost the suite about 35 s of CPU;
        # tests/unit/test_heap.py checks the freeze itself, and that the API does it by default.
        freeze_heap=False,
    )


class Subscriber:
    """A real MQTT subscriber that collects (topic, payload) pairs."""

    def __init__(self, url: str, topic: str) -> None:
        from urllib.parse import urlparse

        u = urlparse(url)
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda c, ud, msg: self.messages.put((msg.topic, msg.payload))
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_connect = lambda c, ud, flags, rc, props: c.subscribe(topic, qos=1)
        self.client.connect(u.hostname, u.port)
        self.client.loop_start()
        assert self._subscribed.wait(5), f"could not subscribe to {topic} on {url}"

    def take(self, n: int, *, timeout: float = 5.0) -> list[tuple[str, bytes]]:
        out = []
        for _ in range(n):
            out.append(self.messages.get(timeout=timeout))
        return out

    def drain(self, *, wait: float) -> list[tuple[str, bytes]]:
        out = []
        try:
            while True:
                out.append(self.messages.get(timeout=wait))
        except queue.Empty:
            return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber_factory(mqtt_url):
    subs: list[Subscriber] = []

    def make(topic: str) -> Subscriber:
        sub = Subscriber(mqtt_url, topic)
        subs.append(sub)
        return sub

    yield make
    for sub in subs:
        sub.close()


def square(west: float, south: float, east: float, north: float) -> list:
    return [[[west, south], [east, south], [east, north], [west, north], [west, south]]]


# Hand-drawn zones with known answers: A and B side by side, C across the top, P around them all.
DISTRICTS = {
    "A": square(-74.00, 40.70, -73.95, 40.75),
    "B": square(-73.95, 40.70, -73.90, 40.75),
    "C": square(-74.00, 40.75, -73.90, 40.80),
}
PRECINCTS = {"P1": square(-74.05, 40.65, -73.85, 40.85)}


@pytest.fixture
def districts(session_factory):
    """Load the hand-drawn `district` and `precinct` layers."""
    from shapely.geometry import MultiPolygon, Polygon

    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord

    with transaction(session_factory) as session:
        for layer, zones in (("district", DISTRICTS), ("precinct", PRECINCTS)):
            zone_service.upsert_zones(session, layer=layer, records=[
                ZoneRecord(code=code, name=f"District {code}", geometry=MultiPolygon([Polygon(rings[0])]),
                           properties={}) for code, rings in zones.items()
            ])
    return DISTRICTS


@pytest.fixture
def utility_key(session_factory):
    """An API key for a utility named `Test Power`."""
    from db.session import transaction
    from accounts import keys

    with transaction(session_factory) as session:
        utility = keys.add_utility(session, name="Test Power")
        return keys.issue_key(session, role="utility", utility_id=utility.id)


@pytest.fixture
def client(settings, districts):
    from fastapi.testclient import TestClient

    from tocsin.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def relay(settings):
    """The real worker (outbox relay to the real broker) in a background thread."""
    from tocsin import worker

    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(settings,), kwargs={"stop": stop}, daemon=True)
    thread.start()
    yield thread
    stop.set()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def fake_server():
    """A fake Twilio (tests/fakes/twilio_server.py) on a loopback port, shared by a module's tests."""
    from tests.fakes.twilio_server import run_fake_twilio

    with run_fake_twilio() as server:
        yield server


@pytest.fixture
def fake(fake_server):
    """The shared fake Twilio with its faults and records cleared between tests."""
    fake_server.reset()
    yield fake_server
    fake_server.wait_idle()
