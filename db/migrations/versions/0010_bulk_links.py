"""Bulk-friendly zone links and signals; one live NOTIFY per statement instead of per row.

- `observation_zones` and `signals` lose their foreign keys. PostgreSQL checks a foreign key with one
  query per inserted row (two per row here: the observation and the zone); a batch of 10,000 posts
  writes about 65,000 links and 20,000 signals, and those checks cost more than the rows themselves
  (docs/architecture.md, "Zone links without foreign keys"). What the keys gave is kept otherwise:
  - the rows are written only by the ingest code, for observations inserted in the same transaction
    and zones it has just read;
  - `ON DELETE CASCADE` becomes statement-level triggers: deleting observations (the retention purge)
    or zones deletes their links and signals in one statement per table;
  - zone ids are never reused, and every reader joins `zones`, so a link written while its zone was
    being deleted concurrently points nowhere and is purged with its observation.
- The live feed's trigger on `observations` fires once per statement and sends the new ids in
  chunks (`obs:<id>,<id>,...`, under NOTIFY's 8000-byte cap) rather than one NOTIFY per row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE observation_zones DROP CONSTRAINT fk_observation_zones_observation_id_observations,
                              DROP CONSTRAINT fk_observation_zones_zone_id_zones;
ALTER TABLE signals DROP CONSTRAINT fk_signals_observation_id_observations,
                    DROP CONSTRAINT fk_signals_zone_id_zones;

-- TG_ARGV[0]: the column of observation_zones and signals that refers to the deleted rows.
CREATE FUNCTION tocsin_delete_links() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM observation_zones l USING gone WHERE l.%I = gone.id', TG_ARGV[0]);
    EXECUTE format('DELETE FROM signals s USING gone WHERE s.%I = gone.id', TG_ARGV[0]);
    RETURN NULL;
END $$;
CREATE TRIGGER observations_deleted AFTER DELETE ON observations
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION tocsin_delete_links('observation_id');
CREATE TRIGGER zones_deleted AFTER DELETE ON zones
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION tocsin_delete_links('zone_id');

-- 600 ids of at most 12 characters fit well under the 8000-byte payload cap.
CREATE FUNCTION tocsin_live_notify_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    chunk text;
BEGIN
    FOR chunk IN
        SELECT string_agg(id::text, ',' ORDER BY id) FROM (
            SELECT id, (row_number() OVER (ORDER BY id) - 1) / 600 AS part FROM fresh) numbered
        GROUP BY part ORDER BY part
    LOOP
        PERFORM pg_notify('tocsin_live', TG_ARGV[0] || ':' || chunk);
    END LOOP;
    RETURN NULL;
END $$;
DROP TRIGGER observations_live_notify ON observations;
CREATE TRIGGER observations_live_notify AFTER INSERT ON observations
    REFERENCING NEW TABLE AS fresh FOR EACH STATEMENT EXECUTE FUNCTION tocsin_live_notify_rows('obs');
"""

DOWNGRADE = """
DROP TRIGGER observations_live_notify ON observations;
CREATE TRIGGER observations_live_notify AFTER INSERT ON observations
    FOR EACH ROW EXECUTE FUNCTION tocsin_live_notify('obs');
DROP FUNCTION tocsin_live_notify_rows();
DROP TRIGGER zones_deleted ON zones;
DROP TRIGGER observations_deleted ON observations;
DROP FUNCTION tocsin_delete_links();
DELETE FROM observation_zones l WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.id = l.observation_id)
    OR NOT EXISTS (SELECT 1 FROM zones z WHERE z.id = l.zone_id);
DELETE FROM signals s WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.id = s.observation_id)
    OR NOT EXISTS (SELECT 1 FROM zones z WHERE z.id = s.zone_id);
ALTER TABLE observation_zones
    ADD CONSTRAINT fk_observation_zones_observation_id_observations FOREIGN KEY (observation_id)
        REFERENCES observations (id) ON DELETE CASCADE,
    ADD CONSTRAINT fk_observation_zones_zone_id_zones FOREIGN KEY (zone_id) REFERENCES zones (id) ON DELETE CASCADE;
ALTER TABLE signals
    ADD CONSTRAINT fk_signals_observation_id_observations FOREIGN KEY (observation_id)
        REFERENCES observations (id) ON DELETE CASCADE,
    ADD CONSTRAINT fk_signals_zone_id_zones FOREIGN KEY (zone_id) REFERENCES zones (id) ON DELETE CASCADE;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
