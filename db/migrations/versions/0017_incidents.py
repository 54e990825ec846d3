"""One incident, one alert: alerts keyed by (zone, category), with every rule that fired in `alert_rules`.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = ("0004",)  # the alert lifecycle columns are on another branch of the history


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE alert_rules (
    alert_id bigint NOT NULL CONSTRAINT fk_alert_rules_alert_id_alerts REFERENCES alerts(id) ON DELETE CASCADE,
    rule varchar(64) NOT NULL,
    -- The alert's zone, copied: a rule's cooldown in a zone is read without joining alerts.
    zone_id integer NOT NULL,
    severity varchar(16) NOT NULL,
    first_fired_at timestamptz NOT NULL,
    last_fired_at timestamptz NOT NULL,
    -- The rule's cooldown when it fired; cooldown_until is set when the alert resolves.
    cooldown_s double precision NOT NULL DEFAULT 0,
    cooldown_until timestamptz,
    CONSTRAINT pk_alert_rules PRIMARY KEY (alert_id, rule)
);
CREATE INDEX ix_alert_rules_rule_zone ON alert_rules (rule, zone_id, cooldown_until);

INSERT INTO alert_rules (alert_id, rule, zone_id, severity, first_fired_at, last_fired_at, cooldown_until)
SELECT id, rule, zone_id, severity, opened_at, last_evidence_at, cooldown_until FROM alerts;

-- Unresolved alerts of one category in one zone (one per rule until now) become one: the oldest keeps
-- the incident and takes the others' rules and evidence; the others resolve.
CREATE TEMP TABLE merged AS
SELECT a.id AS old_id, k.keep_id FROM alerts a
JOIN (SELECT zone_id, category, min(id) AS keep_id FROM alerts WHERE state <> 'resolved'
      GROUP BY zone_id, category HAVING count(*) > 1) k ON k.zone_id = a.zone_id AND k.category = a.category
WHERE a.state <> 'resolved' AND a.id <> k.keep_id;
INSERT INTO alert_rules (alert_id, rule, zone_id, severity, first_fired_at, last_fired_at)
SELECT m.keep_id, a.rule, a.zone_id, a.severity, a.opened_at, a.last_evidence_at
FROM merged m JOIN alerts a ON a.id = m.old_id ON CONFLICT DO NOTHING;
INSERT INTO alert_evidence (alert_id, observation_id, added_at)
SELECT m.keep_id, e.observation_id, e.added_at FROM merged m JOIN alert_evidence e ON e.alert_id = m.old_id
ON CONFLICT DO NOTHING;
INSERT INTO alert_history (alert_id, at, from_state, to_state, severity, actor, reason)
SELECT a.id, now(), a.state, 'resolved', a.severity, 'migration:0017', 'merged into alert ' || m.keep_id
FROM merged m JOIN alerts a ON a.id = m.old_id;
INSERT INTO alert_history (alert_id, at, from_state, to_state, severity, actor, reason)
SELECT k.id, now(), k.state, k.state, k.severity, 'migration:0017',
       'one incident, one alert: merged alerts ' || string_agg(m.old_id::text, ', ' ORDER BY m.old_id)
FROM merged m JOIN alerts k ON k.id = m.keep_id GROUP BY k.id, k.state, k.severity;
UPDATE alerts a SET state = 'resolved', resolved_at = now(), resolved_by = 'migration:0017', updated_at = now()
FROM merged m WHERE a.id = m.old_id;
-- Then the kept alert takes the highest severity of the merged ones, and the rule that raised it leads.
UPDATE alerts k SET severity = w.severity, rule = w.rule, updated_at = now()
FROM (SELECT DISTINCT ON (m.keep_id) m.keep_id, a.severity, a.rule FROM merged m JOIN alerts a ON a.id = m.old_id
      ORDER BY m.keep_id, array_position(ARRAY['minor', 'major', 'critical'], a.severity::text) DESC, a.id) w
WHERE k.id = w.keep_id AND array_position(ARRAY['minor', 'major', 'critical'], w.severity::text)
                           > array_position(ARRAY['minor', 'major', 'critical'], k.severity::text);
DROP TABLE merged;

DROP INDEX uq_alerts_open_rule_zone;
CREATE UNIQUE INDEX uq_alerts_open_zone_category ON alerts (zone_id, category) WHERE state <> 'resolved';
"""
    )


def downgrade() -> None:
    op.execute(
        """
DROP INDEX IF EXISTS uq_alerts_open_zone_category;
-- Two rules' alerts were one incident; before this revision each rule had its own.
CREATE UNIQUE INDEX uq_alerts_open_rule_zone ON alerts (rule, zone_id) WHERE state <> 'resolved';
DROP TABLE IF EXISTS alert_rules;
"""
    )

