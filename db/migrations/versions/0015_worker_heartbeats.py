"""Worker role heartbeats: one row per (host, pid, role), written by `tocsin worker`, read by /readyz and
/metrics. A role whose freshest row is old is stalled (or cannot reach the database).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE worker_heartbeats (
            host text NOT NULL,
            pid integer NOT NULL,
            role text NOT NULL,
            started_at timestamptz NOT NULL,
            last_beat_at timestamptz NOT NULL,
            state text NOT NULL,
            last_error text,
            last_error_at timestamptz,
            PRIMARY KEY (host, pid, role)
        )
        """
    )
    op.execute("CREATE INDEX worker_heartbeats_role_beat ON worker_heartbeats (role, last_beat_at DESC)")


def downgrade() -> None:
    op.execute("DROP TABLE worker_heartbeats")
