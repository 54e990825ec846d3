"""`utility_territory_pieces`: each utility's service territory cut into parts of at most 128 vertices.

A report of a utility with a territory must touch it (ingest.reports.locate.territory_sql, inside the
report's insert). Checked against the whole outline, that cost PostgreSQL about 0.5 ms a report for New
York's borough outline (80,525 vertices, 1.3 MB to fetch and decompress each time), a quarter of what the
rest of a report costs it. Cut like zones (`zone_pieces`), a point probes a GiST index and tests one small
piece, whatever the outline. A trigger keeps the pieces of every insert or update of `territory`, by any
path (`tocsin accounts add-utility`, SQL).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE utility_territory_pieces (
    utility_id bigint NOT NULL CONSTRAINT fk_utility_territory_pieces_utility_id_utilities
        REFERENCES utilities(id) ON DELETE CASCADE,
    geom geometry(Geometry, 4326) NOT NULL
);
CREATE INDEX ix_utility_territory_pieces_geom ON utility_territory_pieces USING gist (geom);
CREATE INDEX ix_utility_territory_pieces_utility_id ON utility_territory_pieces (utility_id);
CREATE FUNCTION tocsin_territory_pieces() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM utility_territory_pieces WHERE utility_id = NEW.id;
    INSERT INTO utility_territory_pieces (utility_id, geom)
    SELECT NEW.id, ST_Subdivide(NEW.territory, 128) WHERE NEW.territory IS NOT NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER utilities_territory_pieces AFTER INSERT OR UPDATE OF territory ON utilities
    FOR EACH ROW EXECUTE FUNCTION tocsin_territory_pieces();
INSERT INTO utility_territory_pieces (utility_id, geom)
SELECT id, ST_Subdivide(territory, 128) FROM utilities WHERE territory IS NOT NULL;
""")


def downgrade() -> None:
    op.execute("""
DROP TRIGGER IF EXISTS utilities_territory_pieces ON utilities;
DROP FUNCTION IF EXISTS tocsin_territory_pieces();
DROP TABLE IF EXISTS utility_territory_pieces;
""")
