"""`alert_sweep_hints`: zones whose window counts fell without any alert's row changing.

The sweeper sweeps an alert only when something can be due (alerts.sweeper.Schedule): its row changed, a
moment its decision turns on has come, the rules or the silences in force changed. Retiring evidence (a
utility report updated or closed, alerts.service.retire_evidence) lowers a zone's counts and touches no
alert, so it leaves the zone here; the sweeper's scan takes (deletes) the hints and sweeps those zones'
alerts. Insert-only for writers: no row lock, nothing to wait for.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE alert_sweep_hints (
    zone_id integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
""")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS alert_sweep_hints;")
