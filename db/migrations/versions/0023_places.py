"""Places: the city (or county, or region) this Tocsin serves, set up by `tocsin place init`.

- `places`: a name, the jurisdiction boundary (a MultiPolygon), the IANA time zone on-call schedules
  default to, the languages posts are read in, the region code its names carry ("GB-LND"), and which
  zone layer plays which context level for the geotagger (`{"london_borough": "borough"}`). One place
  is active (a partial unique index): the one whose boundary is the jurisdiction and whose names the
  geotagger reads. New York is one place among others (`tocsin zones demo` creates "new-york").
- `gazetteer_entries.place`: the place an entry was loaded for; NULL entries serve every place.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = ("0003",)  # gazetteer_entries


def upgrade() -> None:
    op.execute("""
CREATE TABLE places (
    id serial CONSTRAINT pk_places PRIMARY KEY,
    name varchar(64) NOT NULL CONSTRAINT uq_places_name UNIQUE
        CONSTRAINT ck_places_name CHECK (name ~ '^[a-z0-9][a-z0-9_-]*$'),
    boundary geometry(MultiPolygon, 4326) NOT NULL
        CONSTRAINT ck_places_boundary_valid CHECK (ST_IsValid(boundary) AND NOT ST_IsEmpty(boundary)),
    timezone varchar(64) NOT NULL,
    languages text[] NOT NULL DEFAULT '{}',
    region varchar(16),
    context jsonb NOT NULL DEFAULT '{}',
    active boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX uq_places_active ON places (active) WHERE active;
ALTER TABLE gazetteer_entries ADD COLUMN place varchar(64);
CREATE INDEX ix_gazetteer_entries_place ON gazetteer_entries (place);
""")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_gazetteer_entries_place")
    op.execute("ALTER TABLE gazetteer_entries DROP COLUMN IF EXISTS place")
    op.execute("DROP TABLE IF EXISTS places")
