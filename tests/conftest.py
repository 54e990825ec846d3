"""Shared fixtures: a throwaway migrated database on the local PostGIS, the real Mosquitto, the app."""

import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from sqlalchemy import text

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
                return line.split("=", 1)[1].strip()
    pytest.fail(f"{name} is not set and var/services.env is missing: run `make services` first")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database, migrated with Alembic exactly as the product does, dropped at the end."""
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


@pytest.fixture
def clean_db(engine):
    """Every test that commits starts from empty tables (all of them, whoever added them).

    A background thread of the previous test (a live feed's session check, a worker role's heartbeat) may
    still be finishing a transaction: TRUNCATE then can deadlock with it, and PostgreSQL may pick the
    TRUNCATE as the one to abort. It is retried, as any deadlock victim should be."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(5):
        try:
            with engine.begin() as conn:
                tables = conn.execute(text(
                    "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename NOT IN ('alembic_version', 'spatial_ref_sys')"
                )).scalars().all()
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            return engine
        except OperationalError as exc:
            if "deadlock detected" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    return engine


@pytest.fixture
def session_factory(clean_db):
    from db.session import make_sessionmaker

    return make_sessionmaker(clean_db)


@pytest.fixture
def topic_prefix() -> str:
    """A private MQTT topic tree per test, so tests never see each other's messages."""
    return f"test/{uuid.uuid4().hex[:12]}/tocsin/v1"


@pytest.fixture
def settings(database_url, mqtt_url, topic_prefix):
    from tocsin.settings import Settings

    return Settings(
        database_url=database_url, mqtt_url=mqtt_url, mqtt_topic_prefix=topic_prefix,
        mqtt_client_id=f"tocsin-test-{uuid.uuid4().hex[:8]}", rules_file=TEST_RULES,
        public_base_url="http://tocsin.test", relay_poll_s=0.5,
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
    from geo import service as zone_service
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
    from ingest import keys

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
