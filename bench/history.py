"""A running server's history for the benchmarks' fresh databases: resolved alerts with all they leave behind.

Why: the hot path's statements run on generic plans, made once per connection (db.plans). On a database the
benchmark has just created, the tables the write path grows (alerts, observations, evidence, the outbox...)
hold a few hundred rows when those plans are made, so the planner rightly scans them whole; the plans
then last the run while the tables grow by thousands of rows, and every batch scans them all (bench.latency
at 200/s: about 1 ms of PostgreSQL CPU per report, and rising with the run). A server that has run for a day
has tables the planner probes by index, as these plans do once this history is there and ANALYZEd. A
new installation is like the bare benchmark only until autovacuum's first ANALYZE of the grown tables
(within about a minute), which makes PostgreSQL plan again.

`seed` writes `alerts` resolved alerts a day old, one per zone in turn, each with its observation, signal,
zone link, evidence, rule row (its ack code 'h' and a number: lower case, unlike any the product makes), two history rows, two published outbox events and their notification-log
rows, and the spike baselines folded up to this hour, as the sweeper of a server that ran that day has them;
triggers are off while it writes (no NOTIFY, nothing queued for SMS). None of it is in any rule's window
or cooldown.
"""

from __future__ import annotations

import psycopg

from alerts import signals as alert_signals
from bench.db import admin_url

DEFAULT_ALERTS = 20_000

_SQL = """
CREATE TEMP TABLE bench_history ON COMMIT DROP AS
    SELECT g, z.ids[1 + g %% cardinality(z.ids)] AS zone_id,
           now() - interval '1 day' - make_interval(secs => g) AS at
    FROM generate_series(1, %(n)s) g, (SELECT array_agg(id ORDER BY id) AS ids FROM zones) z;
ALTER TABLE bench_history ADD obs_id bigint, ADD alert_id bigint;
INSERT INTO observations (source, external_id, author_hash, category, confidence, observed_at, received_at, geom,
                          uncertainty_m, geotag_method, raw)
    SELECT %(source)s, 'bench-history:' || h.g, 'bench-history', %(category)s, 1.0, h.at, h.at,
           ST_PointOnSurface(z.geom), 25, 'coordinates', '{}'
    FROM bench_history h JOIN zones z ON z.id = h.zone_id;
UPDATE bench_history h SET obs_id = o.id FROM observations o WHERE o.external_id = 'bench-history:' || h.g;
""" + alert_signals.insert_sql(  # alerts owns the signals table: its statement, our rows
    "SELECT obs_id, zone_id, %(source)s, %(category)s, 1.0, 1.0, 'bench-history', at FROM bench_history") + """;
INSERT INTO observation_zones (observation_id, zone_id, weight) SELECT obs_id, zone_id, 1.0 FROM bench_history;
INSERT INTO alerts (rule, zone_id, category, severity, state, ack_code, evidence_count, distinct_authors, opened_at,
                    updated_at, last_evidence_at, resolved_at, resolved_by, expires_at, cooldown_until,
                    last_notified_at)
    SELECT %(rule)s, zone_id, %(category)s, 'critical', 'resolved', 'h' || g, 1, 1, at,
           at + interval '1 hour', at, at + interval '1 hour', 'bench', at + interval '1 hour',
           at + interval '1 hour', at
    FROM bench_history;
UPDATE bench_history h SET alert_id = a.id FROM alerts a WHERE a.ack_code = 'h' || h.g;
INSERT INTO alert_evidence (alert_id, observation_id, added_at) SELECT alert_id, obs_id, at FROM bench_history;
INSERT INTO alert_rules (alert_id, rule, zone_id, severity, first_fired_at, last_fired_at, cooldown_s, cooldown_until)
    SELECT alert_id, %(rule)s, zone_id, 'critical', at, at, 0, at + interval '1 hour' FROM bench_history;
INSERT INTO alert_history (alert_id, at, from_state, to_state, severity, actor, reason)
    SELECT alert_id, at + make_interval(hours => s.n), s.from_state, s.to_state, 'critical', 'bench', 'history'
    FROM bench_history, (VALUES (0, NULL, 'open'), (1, 'open', 'resolved')) AS s(n, from_state, to_state);
INSERT INTO outbox_events (event_id, alert_id, kind, payload, created_at, next_attempt_at, attempts, published_at)
    SELECT gen_random_uuid(), alert_id, k.kind, '{}', at + make_interval(hours => k.n), at, 1,
           at + make_interval(hours => k.n)
    FROM bench_history, (VALUES (0, 'opened'), (1, 'resolved')) AS k(n, kind);
INSERT INTO alert_notifications (alert_id, at, reason, kind, state, severity, event_id)
    SELECT o.alert_id, o.created_at, 'history', o.kind, 'open', 'critical', o.event_id
    FROM outbox_events o JOIN bench_history h ON h.alert_id = o.alert_id;
-- The sweeper of a running server has folded every past hour into the spike baselines (alerts.baselines).
INSERT INTO zone_baselines (zone_id, category, rate_per_h, through_hour)
    SELECT DISTINCT zone_id, %(category)s, 0.01, date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    FROM bench_history
    ON CONFLICT (zone_id, category) DO NOTHING;
"""


def seed(url: str, *, rule: str, category: str, source: str = "utility_report", alerts: int = DEFAULT_ALERTS) -> None:
    """Write the history (see the module docstring) into the migrated database at `url` (libpq or SQLAlchemy
    form), then VACUUM ANALYZE it."""
    dsn = admin_url(url)
    with psycopg.connect(dsn, cursor_factory=psycopg.ClientCursor) as conn:  # client-side binding: many statements
        conn.execute("SET LOCAL session_replication_role = replica")  # no triggers: no NOTIFY, no SMS queue
        conn.execute(_SQL, {"n": alerts, "rule": rule, "category": category, "source": source})
    with psycopg.connect(dsn, autocommit=True) as conn:  # VACUUM too: else autovacuum does it during the run
        conn.execute("VACUUM ANALYZE")
