"""Server-side operator sessions: the map's cookie carries a random session id, not the operator token.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = "0005"  # operators: a branch of its own off 0001

UPGRADE = """
CREATE TABLE operator_sessions (
    id bigserial CONSTRAINT pk_operator_sessions PRIMARY KEY,
    operator_id integer NOT NULL
        CONSTRAINT fk_operator_sessions_operator_id_operators REFERENCES operators (id) ON DELETE CASCADE,
    id_hash varchar(64) NOT NULL CONSTRAINT uq_operator_sessions_id_hash UNIQUE,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason varchar(64),
    user_agent varchar(256),
    ip varchar(64)
);
CREATE INDEX ix_operator_sessions_operator_id ON operator_sessions (operator_id);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS operator_sessions;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
