"""`ix_alerts_unresolved` names the unresolved states, `state IN ('open', 'acknowledged')`, instead of
`state <> 'resolved'`.

With the very predicate of `uq_alerts_open_zone_category`, the two partial indexes competed for the rules'
READ (alerts/observe_sql.py), which looks up the unresolved alert of each (zone, category) it evaluates. A
generic plan made while the statistics said no alert was unresolved (after a quiet hour) rated them equally
cheap and took this one, so that every batch scanned every unresolved alert, and more of them the bigger the
storm, until autovacuum's next ANALYZE. READ's `state <> 'resolved'` does not imply the new predicate: it can
only probe the unique index. The sweeper, which walks unresolved alerts by id, asks for
`state IN ('open', 'acknowledged')` (alerts.lifecycle.UNRESOLVED), which this index serves.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
DROP INDEX IF EXISTS ix_alerts_unresolved;
CREATE INDEX ix_alerts_unresolved ON alerts (id) WHERE state IN ('open', 'acknowledged');
""")


def downgrade() -> None:
    op.execute("""
DROP INDEX IF EXISTS ix_alerts_unresolved;
CREATE INDEX ix_alerts_unresolved ON alerts (id) WHERE state <> 'resolved';
""")
