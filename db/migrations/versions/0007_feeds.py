"""Outage feed imports: what each import of a utility's feed saw, so a vanished outage is marked restored.

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
-- One row per import of a snapshot: the outage ids it held (usable or not) and the counts printed.
-- The next import of the same (utility, feed) marks restored whatever this one saw and it does not.
CREATE TABLE feed_imports (
    id bigserial CONSTRAINT pk_feed_imports PRIMARY KEY,
    utility_id integer NOT NULL CONSTRAINT fk_feed_imports_utility_id_utilities
        REFERENCES utilities(id) ON DELETE CASCADE,
    feed varchar(32) NOT NULL,
    source text NOT NULL DEFAULT '',
    imported_at timestamptz NOT NULL,
    external_ids text[] NOT NULL,
    counts jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ix_feed_imports_utility_feed_id ON feed_imports (utility_id, feed, id);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS feed_imports;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
