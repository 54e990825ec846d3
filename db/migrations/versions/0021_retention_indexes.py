"""Indexes for the retention purge (`tocsin purge`, tocsin/retention.py): references to observations by id.

Deleting an observation makes PostgreSQL look for rows that refer to it: alert_evidence (ON DELETE CASCADE)
and utility_report_history (NO ACTION) by observation_id, which neither table indexed (alert_evidence's key
leads with alert_id). Without these, each deleted observation cost a sequential scan of both tables, so a
purge of a month of posts took time proportional to posts times evidence rows.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = ("0002",)  # utility_report_history is on another branch of the history


def upgrade() -> None:
    op.execute("CREATE INDEX ix_alert_evidence_observation_id ON alert_evidence (observation_id)")
    op.execute("CREATE INDEX ix_utility_report_history_observation_id ON utility_report_history (observation_id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_utility_report_history_observation_id")
    op.execute("DROP INDEX IF EXISTS ix_alert_evidence_observation_id")
