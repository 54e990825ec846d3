"""Live map feed: NOTIFY tocsin_live with the new row's id for every observation and outbox event.

The payload is only `obs:<id>` or `evt:<id>` (NOTIFY payloads are capped at 8000 bytes, and a small
payload keeps the queue small on bulk loads); the listener reads the rows by id after commit.
Notifications are delivered at commit, so a listener never sees an id it cannot read yet.

Revision ID: 0009
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0009"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE FUNCTION tocsin_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tocsin_live', TG_ARGV[0] || ':' || NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER observations_live_notify AFTER INSERT ON observations
    FOR EACH ROW EXECUTE FUNCTION tocsin_live_notify('obs');
CREATE TRIGGER outbox_events_live_notify AFTER INSERT ON outbox_events
    FOR EACH ROW EXECUTE FUNCTION tocsin_live_notify('evt');
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS outbox_events_live_notify ON outbox_events;
DROP TRIGGER IF EXISTS observations_live_notify ON observations;
DROP FUNCTION IF EXISTS tocsin_live_notify();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
