"""`observations.geom` back to GiST: PostGIS's SP-GiST geometry index crashes the server.

0011 chose SP-GiST for cheaper inserts (123 ms against 183 ms of index upkeep per 10,000 posts). But an
index-only scan of that index, over pages VACUUM has marked all-visible, kills the backend with a
segmentation fault, and PostgreSQL then restarts every connection (PostGIS 3.3.2 on PostgreSQL 15, Debian
12: `SELECT count(*) FROM t` on a table whose only index is SP-GiST on a geometry did it). A count of
the points in a box is a query an operator or a report may well run. 60 ms per 10,000 inserts is not
worth a database that can fall over; GiST answers the same `geom && envelope` queries.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX ix_observations_geom")
    op.execute("CREATE INDEX ix_observations_geom ON observations USING gist (geom)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_observations_geom")
    op.execute("CREATE INDEX ix_observations_geom ON observations USING spgist (geom)")
