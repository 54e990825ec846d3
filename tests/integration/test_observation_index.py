"""The observations geometry index survives a scan over pages VACUUM marked all-visible (migration 0020).

With SP-GiST (migration 0011) an index-only scan of that index crashed the PostgreSQL server (PostGIS 3.3,
PostgreSQL 15): the planner takes it to count rows whenever it is the smallest index."""

import pytest
from sqlalchemy import text

pytestmark = [pytest.mark.integration, pytest.mark.committing]


def test_counting_observations_over_the_geometry_index_after_vacuum_answers(clean_db):
    with clean_db.begin() as conn:
        conn.execute(text(
            "INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at, "
            "received_at, geom, uncertainty_m, geotag_method) "
            "SELECT 'post', 'ix' || i, 'a' || (i % 7), 'water on the street', 'flood', 0.9, now(), now(), "
            "ST_SetSRID(ST_MakePoint(-74 + (i % 50) * 0.002, 40.6 + (i / 50) * 0.002), 4326), 50, 'coords' "
            "FROM generate_series(0, 1999) AS i"))
    with clean_db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE observations"))
    with clean_db.connect() as conn, conn.begin() as tx:
        # Leave the planner only the geometry index (DDL is transactional: all of it is rolled back).
        for constraint in conn.execute(text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'observations'::regclass AND contype IN ('p', 'u')"
        )).scalars().all():
            conn.execute(text(f'ALTER TABLE observations DROP CONSTRAINT "{constraint}" CASCADE'))
        for index in conn.execute(text(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'observations'::regclass "
                "AND indexrelid <> 'ix_observations_geom'::regclass")).scalars().all():
            conn.execute(text(f"DROP INDEX {index}"))
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(conn.execute(text("EXPLAIN SELECT count(*) FROM observations")).scalars())
        assert "ix_observations_geom" in plan, plan
        assert conn.execute(text("SELECT count(*) FROM observations")).scalar_one() == 2000
        box = "ST_MakeEnvelope(-74, 40.6, -73.95, 40.65, 4326)"
        assert conn.execute(text(f"SELECT count(*) FROM observations WHERE geom && {box}")).scalar_one() == 26 * 26
        tx.rollback()
