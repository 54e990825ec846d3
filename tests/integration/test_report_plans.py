"""What the planner knows on the report path: statistics right after a zone load, and a report's insert
planned once per connection (a generic plan) instead of at every report."""

from datetime import UTC, datetime

import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import text

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)


def test_a_bulk_zone_load_leaves_the_planner_statistics(session_factory):
    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord

    n = zone_service.ANALYZE_AFTER + 50
    with transaction(session_factory) as session:
        zone_service.upsert_zones(session, layer="grid", records=[
            ZoneRecord(code=f"G{i}", name=f"Cell {i}", properties={},
                       geometry=MultiPolygon([box(-74 + i * 0.001, 40.7, -74 + (i + 1) * 0.001, 40.701)]))
            for i in range(n)])
    with session_factory() as session:
        # -1 until the table is first analyzed; autovacuum could take a minute to get there.
        assert session.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'zones'")).scalar_one() == n


@pytest.mark.committing  # an engine of its own, as the API has
def test_the_report_insert_runs_on_a_generic_plan(session_factory, districts, utility_key, database_url):
    from db.session import make_engine, make_sessionmaker
    from accounts import keys
    from ingest.reports import service as reports
    from ingest.reports.schemas import ReportCreate

    # One pooled connection, a transaction per report as the API has: psycopg prepares a statement at
    # its 5th execution on a connection, and PostgreSQL counts the plans it made for it.
    engine = make_engine(database_url, pool_size=1)
    try:
        factory = make_sessionmaker(engine)
        for i in range(8):
            with factory() as session:
                caller = keys.authenticate(session, key=utility_key)
                body = ReportCreate.model_validate({
                    "type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.975, 40.725]},
                    "properties": {"external_id": f"P{i}", "category": "power_outage"}})
                reports.create_report(session, caller=caller, body=body, idempotency_key=None, rules=[],
                                      jurisdiction_bbox=(-75.0, 40.0, -73.0, 41.5), now=NOW)
                session.commit()
        with factory() as session:
            generic, custom = session.execute(text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%INSERT INTO utility_reports%'")).one()
    finally:
        engine.dispose()
    assert custom == 0 and generic >= 1, (generic, custom)
