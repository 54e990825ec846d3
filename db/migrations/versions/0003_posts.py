"""Public posts: the gazetteer table, unlocated posts, and repost fingerprints.

- `gazetteer_entries`: named places for text geotagging (DESIGN §3), loaded by `tocsin gazetteer`.
- `observations.geom` and `uncertainty_m` become nullable: a post that cannot be located is still
  stored (its text is evidence for operators) but has no location and feeds no rule.
- `observations.text_fingerprint`: hash of (author key, normalised text), so the same text reposted
  by the same author within the dedup window is found with one indexed query per batch.
- `zone_pieces`: every zone cut into pieces of at most 128 vertices (ST_Subdivide), kept in step with
  `zones` by a trigger. Matching a batch of points against small pieces with a tight GiST index is
  several times faster than against whole neighbourhood polygons, and area shares sum over pieces.

`connector_cursors` belongs to migration 0008 (the Jetstream connector).

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE gazetteer_entries (
    id serial CONSTRAINT pk_gazetteer_entries PRIMARY KEY,
    name text NOT NULL,
    normalised_name text NOT NULL,
    kind varchar(16) NOT NULL CONSTRAINT ck_gazetteer_entries_kind CHECK (kind IN
        ('neighbourhood', 'zip', 'borough', 'station', 'landmark', 'street', 'city', 'state', 'country')),
    alternates text[] NOT NULL DEFAULT '{}',
    geom geometry(Geometry, 4326) NOT NULL CONSTRAINT ck_gazetteer_entries_geom_not_empty CHECK (NOT ST_IsEmpty(geom)),
    priority double precision NOT NULL DEFAULT 0,
    source text NOT NULL,
    code text,
    region varchar(16),
    radius_m double precision CONSTRAINT ck_gazetteer_entries_radius_m CHECK (radius_m IS NULL OR radius_m > 0),
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_gazetteer_entries_normalised_name ON gazetteer_entries (normalised_name);
CREATE INDEX ix_gazetteer_entries_source ON gazetteer_entries (source);
CREATE INDEX ix_gazetteer_entries_geom ON gazetteer_entries USING gist (geom);

ALTER TABLE observations ALTER COLUMN geom DROP NOT NULL, ALTER COLUMN uncertainty_m DROP NOT NULL;
ALTER TABLE observations ADD COLUMN text_fingerprint varchar(32);
CREATE INDEX ix_observations_text_fingerprint ON observations (text_fingerprint, observed_at)
    WHERE text_fingerprint IS NOT NULL;

CREATE TABLE zone_pieces (
    zone_id integer NOT NULL CONSTRAINT fk_zone_pieces_zone_id_zones REFERENCES zones(id) ON DELETE CASCADE,
    geom geometry(Geometry, 4326) NOT NULL
);
CREATE INDEX ix_zone_pieces_geom ON zone_pieces USING gist (geom);
CREATE INDEX ix_zone_pieces_zone_id ON zone_pieces (zone_id);
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
INSERT INTO zone_pieces (zone_id, geom) SELECT id, ST_Subdivide(geom, 128) FROM zones;
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS zones_pieces_insert ON zones;
DROP TRIGGER IF EXISTS zones_pieces_update ON zones;
DROP FUNCTION IF EXISTS tocsin_zone_pieces();
DROP TABLE IF EXISTS zone_pieces;
DROP INDEX IF EXISTS ix_observations_text_fingerprint;
ALTER TABLE observations DROP COLUMN IF EXISTS text_fingerprint;
DELETE FROM observations WHERE geom IS NULL OR uncertainty_m IS NULL;
ALTER TABLE observations ALTER COLUMN geom SET NOT NULL, ALTER COLUMN uncertainty_m SET NOT NULL;
DROP TABLE IF EXISTS gazetteer_entries;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
