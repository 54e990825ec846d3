"""Zone loads in linear time, and a zones state that costs one row to read.

- `zone_pieces` were kept by a row trigger that, for every inserted zone, first deleted that zone's
  pieces. On a fresh database the trigger's cached plan for that DELETE was a sequential scan (the table
  was empty when it was planned), so a load of n zones read n^2/2 pieces: 241 s for 30,000 zones. Now
  statement triggers with transition tables cut the pieces of every inserted zone in one INSERT, and
  delete and recut only the zones whose geometry an UPDATE changed.
- `zone_state` is one row that every statement changing zones or layers rewrites (its xmin is then the
  writing transaction). geo.match_memory reads it to know whether its in-memory copy of the zones is
  current: before, it summed xmin over every zone (19 ms at 30,000 zones, at every batch of posts).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = ("0003",)  # zone_pieces

UPGRADE = """
DROP TRIGGER IF EXISTS zones_pieces_insert ON zones;
DROP TRIGGER IF EXISTS zones_pieces_update ON zones;
DROP FUNCTION IF EXISTS tocsin_zone_pieces();

CREATE FUNCTION tocsin_zone_pieces_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO zone_pieces (zone_id, geom) SELECT n.id, ST_Subdivide(n.geom, 128) FROM new_zones n;
    RETURN NULL;
END $$;
CREATE FUNCTION tocsin_zone_pieces_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM zone_pieces p USING new_zones n JOIN old_zones o ON o.id = n.id
        WHERE p.zone_id = n.id AND o.geom IS DISTINCT FROM n.geom;
    INSERT INTO zone_pieces (zone_id, geom)
        SELECT n.id, ST_Subdivide(n.geom, 128) FROM new_zones n JOIN old_zones o ON o.id = n.id
        WHERE o.geom IS DISTINCT FROM n.geom;
    RETURN NULL;
END $$;
CREATE TRIGGER zones_pieces_insert AFTER INSERT ON zones REFERENCING NEW TABLE AS new_zones
    FOR EACH STATEMENT EXECUTE FUNCTION tocsin_zone_pieces_inserted();
CREATE TRIGGER zones_pieces_update AFTER UPDATE ON zones REFERENCING OLD TABLE AS old_zones NEW TABLE AS new_zones
    FOR EACH STATEMENT EXECUTE FUNCTION tocsin_zone_pieces_updated();

CREATE TABLE zone_state (
    id integer CONSTRAINT pk_zone_state PRIMARY KEY CONSTRAINT ck_zone_state_one CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO zone_state (id, version) VALUES (1, 1);
CREATE FUNCTION tocsin_zone_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO zone_state (id, version) VALUES (1, 1)
        ON CONFLICT (id) DO UPDATE SET version = zone_state.version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER zones_state AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON zones
    FOR EACH STATEMENT EXECUTE FUNCTION tocsin_zone_state();
CREATE TRIGGER zone_layers_state AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON zone_layers
    FOR EACH STATEMENT EXECUTE FUNCTION tocsin_zone_state();
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS zones_state ON zones;
DROP TRIGGER IF EXISTS zone_layers_state ON zone_layers;
DROP FUNCTION IF EXISTS tocsin_zone_state();
DROP TABLE IF EXISTS zone_state;
DROP TRIGGER IF EXISTS zones_pieces_insert ON zones;
DROP TRIGGER IF EXISTS zones_pieces_update ON zones;
DROP FUNCTION IF EXISTS tocsin_zone_pieces_inserted();
DROP FUNCTION IF EXISTS tocsin_zone_pieces_updated();
CREATE FUNCTION tocsin_zone_pieces() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM zone_pieces WHERE zone_id = NEW.id;
    INSERT INTO zone_pieces (zone_id, geom) SELECT NEW.id, ST_Subdivide(NEW.geom, 128);
    RETURN NULL;
END $$;
CREATE TRIGGER zones_pieces_insert AFTER INSERT ON zones
    FOR EACH ROW EXECUTE FUNCTION tocsin_zone_pieces();
CREATE TRIGGER zones_pieces_update AFTER UPDATE OF geom ON zones
    FOR EACH ROW WHEN (OLD.geom IS DISTINCT FROM NEW.geom) EXECUTE FUNCTION tocsin_zone_pieces();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
