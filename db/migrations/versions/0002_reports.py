"""Utility reports: change history per version, and indexes for the report reads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
-- One row per report version: what changed, who changed it, and the observation the rules saw for it.
CREATE TABLE utility_report_history (
    id bigserial CONSTRAINT pk_utility_report_history PRIMARY KEY,
    report_id bigint NOT NULL CONSTRAINT fk_utility_report_history_report_id_utility_reports
        REFERENCES utility_reports(id) ON DELETE CASCADE,
    version integer NOT NULL,
    observation_id bigint NOT NULL CONSTRAINT fk_utility_report_history_observation_id_observations
        REFERENCES observations(id),
    status varchar(16) NOT NULL,
    changes jsonb NOT NULL DEFAULT '{}',
    key_id integer,
    at timestamptz NOT NULL,
    CONSTRAINT uq_utility_report_history_report_version UNIQUE (report_id, version)
);

-- Listing is per utility, newest first, with a keyset cursor on id.
CREATE INDEX ix_utility_reports_utility_id_id ON utility_reports (utility_id, id);
CREATE INDEX ix_utility_reports_footprint ON utility_reports USING gist (footprint);
"""

DOWNGRADE = """
DROP INDEX IF EXISTS ix_utility_reports_footprint;
DROP INDEX IF EXISTS ix_utility_reports_utility_id_id;
DROP TABLE IF EXISTS utility_report_history;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
