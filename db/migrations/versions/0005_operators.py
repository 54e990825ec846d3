"""Control-room operator accounts: a role and a hashed bearer token each.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE operators (
    id serial CONSTRAINT pk_operators PRIMARY KEY,
    name varchar(64) NOT NULL CONSTRAINT uq_operators_name UNIQUE,
    role varchar(16) NOT NULL CONSTRAINT ck_operators_role CHECK (role IN ('viewer', 'operator', 'admin')),
    token_hash varchar(64) NOT NULL CONSTRAINT uq_operators_token_hash UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS operators;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
