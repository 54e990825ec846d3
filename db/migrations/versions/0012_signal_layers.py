"""Posts write signals only in the zone layers the rules count (`signal_layers`), and keep their zone
weights in every layer on the observation (`observations.zone_weights`), to backfill a layer from.

A located post touches a zone in each of the five demo layers, but the rules count one: four signals
in five were written for nobody. ingest.posts.signal_layers keeps the set a superset of the rules' layers.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE observations ADD COLUMN zone_weights bytea")
    op.execute(
        """
        CREATE TABLE signal_layers (
            layer_id integer PRIMARY KEY REFERENCES zone_layers (id) ON DELETE CASCADE,
            added_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE signal_layers")
    op.execute("ALTER TABLE observations DROP COLUMN zone_weights")
