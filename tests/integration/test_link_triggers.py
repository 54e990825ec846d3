"""Migration 0010 on the real PostGIS: zone links and signals without foreign keys still go with their
observation or zone, and a bulk insert NOTIFYs the live feed in a few id lists, not once per row."""

from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import text

from tests.integration.test_posts_pipeline import index, post, rules, run  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def precincts_written(session_factory, districts):
    """Posts write signals in `precinct` too, as when a rule counts posts there (ingest.posts.signal_layers):
    each post then has signals in two zones."""
    from ingest.posts import signal_layers

    with session_factory.begin() as s:
        signal_layers.layers_to_write(s, wanted={"district": 600, "precinct": 600}, now=datetime.now(UTC))


def counts(session_factory) -> tuple[int, int]:
    with session_factory() as s:
        return s.execute(text("SELECT (SELECT count(*) FROM observation_zones), (SELECT count(*) FROM signals)")).one()


def add_links(session_factory) -> None:
    """Zone links like a utility report's (posts keep only their signals): one per signal."""
    with session_factory.begin() as s:
        s.execute(text("INSERT INTO observation_zones (observation_id, zone_id, weight) "
                       "SELECT observation_id, zone_id, weight FROM signals"))


def test_deleting_observations_deletes_their_links_and_signals(run, session_factory):
    _, results = run([post("1", "Street flooding here, water everywhere", coordinates=[-73.975, 40.725]),
                      post("2", "Street flooding here too, cars stuck", author="bob", coordinates=[-73.925, 40.725])])
    add_links(session_factory)
    links, signals = counts(session_factory)
    assert links >= 2 and signals >= 2  # each post is in a district and in P1
    with session_factory.begin() as s:
        s.execute(text("DELETE FROM observations WHERE id = :id"), {"id": results[0].id})
    with session_factory() as s:
        left = s.execute(text("SELECT DISTINCT observation_id FROM observation_zones "
                              "UNION SELECT DISTINCT observation_id FROM signals")).scalars().all()
    assert left == [results[1].id]
    assert counts(session_factory) == (links // 2, signals // 2)


def test_deleting_a_zone_deletes_its_links_and_signals_only(run, session_factory):
    _, results = run([post("1", "Street flooding here, water everywhere", coordinates=[-73.975, 40.725])])
    add_links(session_factory)
    with session_factory() as s:
        before = set(s.execute(text("SELECT z.code FROM observation_zones oz JOIN zones z ON z.id = oz.zone_id")).scalars())
    assert {"A", "P1"} <= before
    with session_factory.begin() as s:
        s.execute(text("DELETE FROM zones WHERE code = 'A'"))
    with session_factory() as s:
        orphans = s.execute(text(
            "SELECT (SELECT count(*) FROM observation_zones oz WHERE NOT EXISTS (SELECT 1 FROM zones z WHERE z.id = oz.zone_id)) "
            "+ (SELECT count(*) FROM signals g WHERE NOT EXISTS (SELECT 1 FROM zones z WHERE z.id = g.zone_id))")).scalar_one()
        after = set(s.execute(text("SELECT z.code FROM observation_zones oz JOIN zones z ON z.id = oz.zone_id")).scalars())
        signal_zones = set(s.execute(text("SELECT z.code FROM signals g JOIN zones z ON z.id = g.zone_id")).scalars())
    assert orphans == 0
    assert after == before - {"A"} and "P1" in signal_zones


@pytest.mark.committing  # NOTIFY is sent at commit
def test_a_bulk_insert_notifies_every_id_in_a_few_payloads(session_factory, database_url):
    from tocsin.live_feed import parse_payload

    dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN tocsin_live")
        with session_factory.begin() as s:
            ids = s.execute(text(
                "INSERT INTO observations (source, external_id, category, confidence, observed_at, received_at, "
                "geotag_method) SELECT 'post', 'bulk-' || g, 'none', 0.5, :now, :now, 'none' "
                "FROM generate_series(1, 1500) g RETURNING id"), {"now": datetime.now(UTC)}).scalars().all()
        payloads = [n.payload for n in listener.notifies(timeout=2.0, stop_after=10)]
    parsed = [parse_payload(p) for p in payloads]
    assert len(parsed) == 3 and all(kind == "obs" for kind, _ in parsed)  # 600 ids a payload
    assert sorted(i for _, chunk in parsed for i in chunk) == sorted(ids)
    assert max(len(p.encode()) for p in payloads) < 8000
