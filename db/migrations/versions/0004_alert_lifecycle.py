"""Alert lifecycle: hysteresis and cooldown columns, notification log, silences, zone baselines.

Both alert_history and outbox_events record the writing transaction's id, so anyone can check
from the database that every alert change committed together with its outbox event.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE alerts
    ADD COLUMN quiet_since timestamptz,
    ADD COLUMN cooldown_until timestamptz,
    ADD COLUMN last_notified_at timestamptz,
    ADD COLUMN escalation_ticks integer NOT NULL DEFAULT 0,
    ADD COLUMN resolved_by text;
-- Cooldown look-ups find the last resolved alert of a (rule, zone).
CREATE INDEX ix_alerts_rule_zone_resolved ON alerts (rule, zone_id, resolved_at) WHERE state = 'resolved';
-- The sweeper walks only unresolved alerts.
CREATE INDEX ix_alerts_unresolved ON alerts (id) WHERE state <> 'resolved';

ALTER TABLE alert_history ADD COLUMN txid bigint NOT NULL DEFAULT txid_current();
ALTER TABLE outbox_events ADD COLUMN txid bigint NOT NULL DEFAULT txid_current();
CREATE INDEX ix_outbox_events_alert_id ON outbox_events (alert_id);

CREATE TABLE alert_notifications (
    id bigserial CONSTRAINT pk_alert_notifications PRIMARY KEY,
    alert_id bigint NOT NULL CONSTRAINT fk_alert_notifications_alert_id_alerts REFERENCES alerts(id) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    reason varchar(32) NOT NULL,
    kind varchar(32) NOT NULL,
    state varchar(16) NOT NULL,
    severity varchar(16) NOT NULL,
    event_id uuid NOT NULL,
    txid bigint NOT NULL DEFAULT txid_current()
);
CREATE INDEX ix_alert_notifications_alert_id ON alert_notifications (alert_id, at);

CREATE TABLE silences (
    id bigserial CONSTRAINT pk_silences PRIMARY KEY,
    matchers jsonb NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    created_by text NOT NULL,
    comment text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    expired_at timestamptz,
    expired_by text,
    CONSTRAINT ck_silences_range CHECK (ends_at > starts_at)
);
CREATE INDEX ix_silences_ends_at ON silences (ends_at);

-- Exponentially weighted hourly rate of signals per (zone, category), folded hour by hour.
CREATE TABLE zone_baselines (
    zone_id integer NOT NULL CONSTRAINT fk_zone_baselines_zone_id_zones REFERENCES zones(id) ON DELETE CASCADE,
    category varchar(32) NOT NULL,
    rate_per_h double precision NOT NULL,
    through_hour timestamptz NOT NULL,
    CONSTRAINT pk_zone_baselines PRIMARY KEY (zone_id, category)
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS zone_baselines, silences, alert_notifications;
DROP INDEX IF EXISTS ix_outbox_events_alert_id;
ALTER TABLE outbox_events DROP COLUMN IF EXISTS txid;
ALTER TABLE alert_history DROP COLUMN IF EXISTS txid;
DROP INDEX IF EXISTS ix_alerts_unresolved;
DROP INDEX IF EXISTS ix_alerts_rule_zone_resolved;
ALTER TABLE alerts DROP COLUMN IF EXISTS quiet_since, DROP COLUMN IF EXISTS cooldown_until,
    DROP COLUMN IF EXISTS last_notified_at, DROP COLUMN IF EXISTS escalation_ticks, DROP COLUMN IF EXISTS resolved_by;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
