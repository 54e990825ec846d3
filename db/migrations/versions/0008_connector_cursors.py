"""Connector cursors: where each live connector resumes (Jetstream's time_us, in microseconds).

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE connector_cursors (
    name varchar(64) CONSTRAINT pk_connector_cursors PRIMARY KEY,
    cursor bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS connector_cursors;")
