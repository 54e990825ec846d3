"""Initial schema: zones, observations, utilities, signals, alerts and the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE zone_layers (
    id serial CONSTRAINT pk_zone_layers PRIMARY KEY,
    name varchar(64) NOT NULL CONSTRAINT uq_zone_layers_name UNIQUE,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE zones (
    id serial CONSTRAINT pk_zones PRIMARY KEY,
    layer_id integer NOT NULL CONSTRAINT fk_zones_layer_id_zone_layers REFERENCES zone_layers(id) ON DELETE CASCADE,
    code varchar(64) NOT NULL,
    name text NOT NULL,
    properties jsonb NOT NULL DEFAULT '{}',
    geom geometry(MultiPolygon, 4326) NOT NULL,
    area_m2 double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_zones_layer_code UNIQUE (layer_id, code),
    CONSTRAINT ck_zones_geom_valid CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))
);
CREATE INDEX ix_zones_geom ON zones USING gist (geom);

CREATE TABLE observations (
    id bigserial CONSTRAINT pk_observations PRIMARY KEY,
    source varchar(32) NOT NULL,
    external_id text NOT NULL,
    author_hash text,
    text text,
    category varchar(32) NOT NULL,
    confidence double precision NOT NULL,
    observed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    geom geometry(Geometry, 4326) NOT NULL,
    uncertainty_m double precision NOT NULL,
    geotag_method varchar(16) NOT NULL,
    raw jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT uq_observations_source_external_id UNIQUE (source, external_id)
);
CREATE INDEX ix_observations_geom ON observations USING gist (geom);
CREATE INDEX ix_observations_received_at ON observations (received_at);

CREATE TABLE observation_zones (
    observation_id bigint NOT NULL CONSTRAINT fk_observation_zones_observation_id_observations REFERENCES observations(id) ON DELETE CASCADE,
    zone_id integer NOT NULL CONSTRAINT fk_observation_zones_zone_id_zones REFERENCES zones(id) ON DELETE CASCADE,
    weight double precision NOT NULL,
    CONSTRAINT pk_observation_zones PRIMARY KEY (observation_id, zone_id)
);
CREATE INDEX ix_observation_zones_zone_id ON observation_zones (zone_id);

CREATE TABLE utilities (
    id serial CONSTRAINT pk_utilities PRIMARY KEY,
    name varchar(128) NOT NULL CONSTRAINT uq_utilities_name UNIQUE,
    territory geometry(MultiPolygon, 4326),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id serial CONSTRAINT pk_api_keys PRIMARY KEY,
    utility_id integer CONSTRAINT fk_api_keys_utility_id_utilities REFERENCES utilities(id) ON DELETE CASCADE,
    role varchar(16) NOT NULL CONSTRAINT ck_api_keys_role CHECK (role IN ('utility', 'partner')),
    prefix varchar(16) NOT NULL,
    key_hash varchar(64) NOT NULL CONSTRAINT uq_api_keys_key_hash UNIQUE,
    label text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE utility_reports (
    id bigserial CONSTRAINT pk_utility_reports PRIMARY KEY,
    observation_id bigint NOT NULL CONSTRAINT uq_utility_reports_observation_id UNIQUE
        CONSTRAINT fk_utility_reports_observation_id_observations REFERENCES observations(id),
    utility_id integer NOT NULL CONSTRAINT fk_utility_reports_utility_id_utilities REFERENCES utilities(id),
    external_id text NOT NULL,
    category varchar(32) NOT NULL,
    status varchar(16) NOT NULL,
    customers_affected integer,
    cause text,
    description text,
    started_at timestamptz,
    estimated_restore_at timestamptz,
    footprint geometry(Geometry, 4326) NOT NULL,
    body_hash varchar(64) NOT NULL,
    idempotency_key text,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT uq_utility_reports_utility_external UNIQUE (utility_id, external_id)
);
CREATE UNIQUE INDEX uq_utility_reports_idempotency_key ON utility_reports (utility_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE signals (
    id bigserial CONSTRAINT pk_signals PRIMARY KEY,
    observation_id bigint NOT NULL CONSTRAINT fk_signals_observation_id_observations REFERENCES observations(id) ON DELETE CASCADE,
    zone_id integer NOT NULL CONSTRAINT fk_signals_zone_id_zones REFERENCES zones(id) ON DELETE CASCADE,
    source varchar(32) NOT NULL,
    category varchar(32) NOT NULL,
    confidence double precision NOT NULL,
    weight double precision NOT NULL,
    author_key text,
    observed_at timestamptz NOT NULL,
    retired_at timestamptz
);
CREATE INDEX ix_signals_zone_category_time ON signals (zone_id, category, observed_at);
CREATE INDEX ix_signals_observation_id ON signals (observation_id);

CREATE SEQUENCE ack_code_seq;

CREATE TABLE alerts (
    id bigserial CONSTRAINT pk_alerts PRIMARY KEY,
    rule varchar(64) NOT NULL,
    zone_id integer NOT NULL CONSTRAINT fk_alerts_zone_id_zones REFERENCES zones(id),
    category varchar(32) NOT NULL,
    severity varchar(16) NOT NULL,
    state varchar(16) NOT NULL CONSTRAINT ck_alerts_state CHECK (state IN ('open', 'acknowledged', 'resolved')),
    ack_code varchar(8) NOT NULL CONSTRAINT uq_alerts_ack_code UNIQUE,
    evidence_count integer NOT NULL,
    distinct_authors integer NOT NULL,
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_evidence_at timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at timestamptz,
    expires_at timestamptz
);
-- One unresolved alert per (rule, zone): concurrent workers cannot open two.
CREATE UNIQUE INDEX uq_alerts_open_rule_zone ON alerts (rule, zone_id) WHERE state <> 'resolved';

CREATE TABLE alert_evidence (
    alert_id bigint NOT NULL CONSTRAINT fk_alert_evidence_alert_id_alerts REFERENCES alerts(id) ON DELETE CASCADE,
    observation_id bigint NOT NULL CONSTRAINT fk_alert_evidence_observation_id_observations REFERENCES observations(id) ON DELETE CASCADE,
    added_at timestamptz NOT NULL,
    CONSTRAINT pk_alert_evidence PRIMARY KEY (alert_id, observation_id)
);

CREATE TABLE alert_history (
    id bigserial CONSTRAINT pk_alert_history PRIMARY KEY,
    alert_id bigint NOT NULL CONSTRAINT fk_alert_history_alert_id_alerts REFERENCES alerts(id) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    from_state varchar(16),
    to_state varchar(16) NOT NULL,
    severity varchar(16) NOT NULL,
    actor text NOT NULL,
    reason text NOT NULL
);
CREATE INDEX ix_alert_history_alert_id ON alert_history (alert_id);

CREATE TABLE outbox_events (
    id bigserial CONSTRAINT pk_outbox_events PRIMARY KEY,
    event_id uuid NOT NULL CONSTRAINT uq_outbox_events_event_id UNIQUE,
    alert_id bigint CONSTRAINT fk_outbox_events_alert_id_alerts REFERENCES alerts(id),
    kind varchar(32) NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    published_at timestamptz,
    parked_at timestamptz,
    last_error text
);
CREATE INDEX ix_outbox_events_pending ON outbox_events (next_attempt_at)
    WHERE published_at IS NULL AND parked_at IS NULL;

-- Wake relays on commit; the trigger means no writer can forget to.
CREATE FUNCTION tocsin_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tocsin_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION tocsin_outbox_notify();
"""

DOWNGRADE = """
DROP TABLE IF EXISTS outbox_events, alert_history, alert_evidence, alerts, signals, utility_reports,
    api_keys, utilities, observation_zones, observations, zones, zone_layers CASCADE;
DROP SEQUENCE IF EXISTS ack_code_seq;
DROP FUNCTION IF EXISTS tocsin_outbox_notify();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
