"""`observations.geom` indexed with SP-GiST instead of GiST.

The map's bbox query (`geom && envelope`) uses either. Inserting 10,000 posts cost 183 ms of GiST
upkeep and 123 ms with SP-GiST (psql, same rows, side by side), and a post batch is mostly inserts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX ix_observations_geom")
    op.execute("CREATE INDEX ix_observations_geom ON observations USING spgist (geom)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_observations_geom")
    op.execute("CREATE INDEX ix_observations_geom ON observations USING gist (geom)")
