"""SMS deliveries are claimed before the provider is called.

A sender commits `sending` (attempt counted, `claimed_at` set) before it calls the provider and
records the result afterwards, so a crash in between leaves `sending` rather than a row that looks
unsent. The worker's recovery pass retries such a claim after a timeout, or marks it `unknown`
(we cannot tell whether the provider sent it) once the attempts are spent. `interrupted_at` keeps
the time of the first claim that was never recorded: the retry asks the provider for a message sent
since then before sending again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = ("0006",)  # the deliveries table is on another branch of the history

_OLD = "'pending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled'"
_NEW = "'pending', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled', 'unknown'"


def upgrade() -> None:
    op.execute("ALTER TABLE deliveries DROP CONSTRAINT ck_deliveries_status")
    op.execute(f"ALTER TABLE deliveries ADD CONSTRAINT ck_deliveries_status CHECK (status IN ({_NEW}))")
    op.execute("ALTER TABLE deliveries ADD COLUMN claimed_at timestamptz")
    op.execute("ALTER TABLE deliveries ADD COLUMN interrupted_at timestamptz")
    # The recovery pass looks only at claims in flight: a handful of rows at any time.
    op.execute("CREATE INDEX ix_deliveries_sending ON deliveries (claimed_at) WHERE status = 'sending'")


def downgrade() -> None:
    # The old schema has no way to say "claimed" or "outcome unknown": an open claim becomes a retry,
    # an unknown outcome a failure (its last_error keeps the explanation).
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'sending'")
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'unknown'")
    op.execute("DROP INDEX ix_deliveries_sending")
    op.execute("ALTER TABLE deliveries DROP COLUMN interrupted_at")
    op.execute("ALTER TABLE deliveries DROP COLUMN claimed_at")
    op.execute("ALTER TABLE deliveries DROP CONSTRAINT ck_deliveries_status")
    op.execute(f"ALTER TABLE deliveries ADD CONSTRAINT ck_deliveries_status CHECK (status IN ({_OLD}))")
