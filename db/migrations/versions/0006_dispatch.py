"""Dispatch: responders, coverage, SMS deliveries, the SMS fan-out mark on the outbox, counters.

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE responders (
    id serial CONSTRAINT pk_responders PRIMARY KEY,
    name text NOT NULL,
    phone varchar(16) NOT NULL CONSTRAINT uq_responders_phone UNIQUE
        CONSTRAINT ck_responders_phone_e164 CHECK (phone ~ '^\\+[1-9][0-9]{1,14}$'),
    opted_out boolean NOT NULL DEFAULT false,
    opted_out_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (responder, zone or whole layer, tier). zone_id NULL means the whole layer.
CREATE TABLE coverage (
    id serial CONSTRAINT pk_coverage PRIMARY KEY,
    responder_id integer NOT NULL CONSTRAINT fk_coverage_responder_id_responders
        REFERENCES responders(id) ON DELETE CASCADE,
    layer varchar(64) NOT NULL,
    zone_id integer CONSTRAINT fk_coverage_zone_id_zones REFERENCES zones(id) ON DELETE CASCADE,
    tier integer NOT NULL DEFAULT 1 CONSTRAINT ck_coverage_tier CHECK (tier >= 1),
    on_call text,
    timezone varchar(64) NOT NULL DEFAULT 'America/New_York'
);
CREATE INDEX ix_coverage_responder_id ON coverage (responder_id);
CREATE INDEX ix_coverage_layer ON coverage (layer);

-- One row per (event, responder, channel): a retry or a second dispatcher cannot page twice.
CREATE TABLE deliveries (
    id bigserial CONSTRAINT pk_deliveries PRIMARY KEY,
    event_id uuid NOT NULL,
    alert_id bigint NOT NULL CONSTRAINT fk_deliveries_alert_id_alerts REFERENCES alerts(id) ON DELETE CASCADE,
    responder_id integer CONSTRAINT fk_deliveries_responder_id_responders
        REFERENCES responders(id) ON DELETE SET NULL,
    channel varchar(16) NOT NULL DEFAULT 'sms',
    tier integer NOT NULL DEFAULT 1,
    body text NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'pending' CONSTRAINT ck_deliveries_status CHECK (
        status IN ('pending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled')),
    provider_sid varchar(64),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    next_attempt_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT uq_deliveries_event_responder_channel UNIQUE (event_id, responder_id, channel)
);
CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX ix_deliveries_alert_id ON deliveries (alert_id);
CREATE UNIQUE INDEX uq_deliveries_provider_sid ON deliveries (provider_sid) WHERE provider_sid IS NOT NULL;

-- The SMS fan-out's own queue, filled by a trigger in the transaction that writes the outbox event,
-- so the fan-out never contends with the MQTT relay for outbox rows. A row is deleted once planned.
CREATE TABLE sms_fanout_queue (
    outbox_id bigint CONSTRAINT pk_sms_fanout_queue PRIMARY KEY
        CONSTRAINT fk_sms_fanout_queue_outbox_id_outbox_events REFERENCES outbox_events(id) ON DELETE CASCADE
);
CREATE FUNCTION tocsin_fanout_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sms_fanout_queue (outbox_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_events_fanout AFTER INSERT ON outbox_events
    FOR EACH ROW EXECUTE FUNCTION tocsin_fanout_enqueue();

-- Monotonic counters shared by every process (the /metrics endpoint reads them).
CREATE TABLE dispatch_counters (
    name varchar(64) CONSTRAINT pk_dispatch_counters PRIMARY KEY,
    value bigint NOT NULL DEFAULT 0
);
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS outbox_events_fanout ON outbox_events;
DROP FUNCTION IF EXISTS tocsin_fanout_enqueue();
DROP TABLE IF EXISTS sms_fanout_queue, dispatch_counters, deliveries, coverage, responders CASCADE;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
