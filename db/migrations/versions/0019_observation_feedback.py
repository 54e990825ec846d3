"""Operators' feedback on evidence: "not an incident", "wrong category" (with the right one), "wrong place".

One row per mark, with the operator and the time; several operators may mark the same observation. The
classifier's development set takes the labels from here (`tocsin classifier feedback-export`).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE observation_feedback (
    id bigserial CONSTRAINT pk_observation_feedback PRIMARY KEY,
    observation_id bigint NOT NULL
        CONSTRAINT fk_observation_feedback_observation REFERENCES observations (id) ON DELETE CASCADE,
    kind varchar(16) NOT NULL
        CONSTRAINT ck_observation_feedback_kind CHECK (kind IN ('not_incident', 'wrong_category', 'wrong_place')),
    category varchar(32),
    note text,
    actor varchar(128) NOT NULL,
    created_at timestamptz NOT NULL,
    -- The right category comes with "wrong category", and only with it.
    CONSTRAINT ck_observation_feedback_category CHECK ((kind = 'wrong_category') = (category IS NOT NULL))
);
CREATE INDEX ix_observation_feedback_observation ON observation_feedback (observation_id);
CREATE INDEX ix_observation_feedback_created_at ON observation_feedback (created_at);
"""

DOWNGRADE = "DROP TABLE IF EXISTS observation_feedback;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
