"""Agencies sharing a control room (fire, police, EMS, utilities): what each covers, who belongs to which.

An agency covers categories (empty: every category) in zones (a JSON array of {"layer", "code"}; empty: every
zone). Operators and responders belong to any number of agencies (accounts.agencies); an alert history row
records the agencies of the operator who acted (`agency`, NULL for rules, the sweeper and responders by SMS).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = ("0005", "0006")  # operators and responders: branches of their own

UPGRADE = """
CREATE TABLE agencies (
    id serial CONSTRAINT pk_agencies PRIMARY KEY,
    name varchar(64) NOT NULL CONSTRAINT uq_agencies_name UNIQUE,
    categories text[] NOT NULL DEFAULT '{}',
    zones jsonb NOT NULL DEFAULT '[]' CONSTRAINT ck_agencies_zones_array CHECK (jsonb_typeof(zones) = 'array'),
    created_at timestamptz NOT NULL
);
CREATE TABLE operator_agencies (
    operator_id integer NOT NULL
        CONSTRAINT fk_operator_agencies_operator REFERENCES operators (id) ON DELETE CASCADE,
    agency_id integer NOT NULL
        CONSTRAINT fk_operator_agencies_agency REFERENCES agencies (id) ON DELETE CASCADE,
    CONSTRAINT pk_operator_agencies PRIMARY KEY (operator_id, agency_id)
);
CREATE INDEX ix_operator_agencies_agency ON operator_agencies (agency_id);
CREATE TABLE responder_agencies (
    responder_id integer NOT NULL
        CONSTRAINT fk_responder_agencies_responder REFERENCES responders (id) ON DELETE CASCADE,
    agency_id integer NOT NULL
        CONSTRAINT fk_responder_agencies_agency REFERENCES agencies (id) ON DELETE CASCADE,
    CONSTRAINT pk_responder_agencies PRIMARY KEY (responder_id, agency_id)
);
CREATE INDEX ix_responder_agencies_agency ON responder_agencies (agency_id);
ALTER TABLE alert_history ADD COLUMN agency varchar(256);
"""

DOWNGRADE = """
ALTER TABLE alert_history DROP COLUMN IF EXISTS agency;
DROP TABLE IF EXISTS responder_agencies;
DROP TABLE IF EXISTS operator_agencies;
DROP TABLE IF EXISTS agencies;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
