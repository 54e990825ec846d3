"""A year of synthetic history, written by set-based SQL (INSERT ... SELECT FROM generate_series), chunk by chunk.

What the product would have written over the year, with every index, constraint and trigger in place:
- observations spread evenly over [start, end): 95 % posts (a signal in the `nta` zone of their point, as
  the post pipeline writes them: no observation_zones rows; `other` posts feed no rule, so no signal) and
  5 % utility reports, each as two observations: the report as first posted (a signal and an
  observation_zones row in every zone of every layer its point is in, as ingest.reports.service writes them)
  and its `restored` version a moment later (links, no signals; the first version's signals retired, as
  ingest.reports.updates does), with their utility_reports and utility_report_history rows;
- resolved alerts (one per RowsPerAlert observations) of the loaded rules in `nta` zones, each with its evidence,
  history, alert_rules, notification log and published outbox events (their SMS fan-out queue rows gone,
  as the fan-out would have left them), and the zone baselines the sweeper would have folded.

Points come from a table of sample points whose zones in every layer are found once (`bench_points`,
dropped at the end); every value is a hash of the row number, so a run is repeatable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

import psycopg

REPORT_EVERY = 40  # n % 40 == 39: a report's first version; n % 40 == 0: its `restored` version
ROWS_PER_ALERT = 300
CHUNK = 1_000_000  # a multiple of REPORT_EVERY: both versions of a report are in the same chunk
POST_CATEGORIES = (["other"] * 6 + ["collision"] * 3 + ["power_outage"] * 2 + ["flood"] * 2
                   + ["fire", "medical", "violence", "water_main", "gas_leak", "structural", "hazmat"])
REPORT_CATEGORIES = ["power_outage"] * 16 + ["gas_leak"] * 2 + ["water_main", "other"]

_POINTS = """
    DROP TABLE IF EXISTS bench_points;
    CREATE UNLOGGED TABLE bench_points AS
    SELECT (row_number() OVER (ORDER BY i) - 1)::int AS p, geom, nta, zones FROM (
        SELECT c.i, c.geom,
               (SELECT min(zp.zone_id) FROM zone_pieces zp JOIN zones z ON z.id = zp.zone_id
                JOIN zone_layers l ON l.id = z.layer_id
                WHERE l.name = 'nta' AND ST_Intersects(zp.geom, c.geom)) AS nta,
               ARRAY(SELECT DISTINCT zp.zone_id FROM zone_pieces zp WHERE ST_Intersects(zp.geom, c.geom)
                     ORDER BY 1) AS zones
        FROM (SELECT i, ST_SetSRID(ST_MakePoint(
                  %(w)s + (%(e)s - %(w)s) * (abs(hashint8extended(i, 11)) %% 1000000) / 1e6,
                  %(s)s + (%(n)s - %(s)s) * (abs(hashint8extended(i, 12)) %% 1000000) / 1e6), 4326) AS geom
              FROM generate_series(1, %(k)s) i) c
    ) x WHERE nta IS NOT NULL;
    CREATE UNIQUE INDEX ON bench_points (p);
"""

# One chunk's rows: kind 0 a post, 1 a report's first version, 2 its `restored` version (base: the first's n).
_CHUNK = """
    CREATE TEMP TABLE chunk ON COMMIT DROP AS
    SELECT g.n, g.base, g.kind, CAST(%(t0)s AS timestamptz) + make_interval(secs => g.n * %(step)s) AS at,
           bp.geom, bp.nta, bp.zones, abs(hashint8extended(g.base, 2)) AS h
    FROM (SELECT n, CASE WHEN n %% 40 = 0 THEN n - 1 ELSE n END AS base,
                 CASE n %% 40 WHEN 39 THEN 1 WHEN 0 THEN 2 ELSE 0 END AS kind
          FROM generate_series(%(a)s::bigint, %(b)s::bigint) n) g
    JOIN bench_points bp ON bp.p = abs(hashint8extended(g.base, 1)) %% %(np)s
"""

_OBSERVATIONS = """
    INSERT INTO observations (id, source, external_id, author_hash, text, category, confidence, observed_at,
                              received_at, geom, uncertainty_m, geotag_method, raw, text_fingerprint, zone_weights)
    SELECT c.n,
           CASE WHEN c.kind = 0 THEN 'post' ELSE 'utility_report' END,
           CASE c.kind WHEN 0 THEN 'at://bench/' || c.n WHEN 1 THEN %(uidt)s::text || ':h' || c.base
                       ELSE %(uidt)s::text || ':h' || c.base || ':v2' END,
           CASE WHEN c.kind = 0 THEN md5('author' || (c.h / 20) %% 300000) ELSE 'utility:' || %(uidt)s::text END,
           CASE WHEN c.kind = 0 THEN 'synthetic post ' || c.n || ' ' || md5(c.n::text) || ' ' || md5(c.h::text)
                ELSE 'synthetic outage' END,
           CASE WHEN c.kind = 0 THEN (CAST(%(post_cats)s AS text[]))[1 + c.h %% 20]
                ELSE (CAST(%(report_cats)s AS text[]))[1 + c.h %% 20] END,
           CASE WHEN c.kind = 0 THEN 0.5 + ((c.h / 6000000) %% 50) / 100.0 ELSE 1.0 END,
           c.at, c.at + interval '2 seconds', c.geom, 25,
           CASE WHEN c.kind = 0 AND c.h %% 3 = 0 THEN 'gazetteer' ELSE 'coordinates' END,
           CASE WHEN c.kind = 0 THEN jsonb_build_object('uri', 'at://bench/' || c.n, 'langs', jsonb_build_array('en'))
                ELSE jsonb_build_object('type', 'Feature', 'properties',
                                        jsonb_build_object('external_id', 'h' || c.base)) END,
           CASE WHEN c.kind = 0 THEN left(md5(c.n::text || 'fp'), 32) END,
           CASE WHEN c.kind = 0 THEN decode(md5(c.n::text) || md5(c.h::text) || left(md5(c.base::text), 16), 'hex')
           END
    FROM chunk c ORDER BY c.n
"""

# Rows for alerts' own INSERT of signals (alerts.signals.insert_sql: only alerts writes that table), in its
# column order; then the first versions' signals retired when their `restored` version came, as
# alerts.service.retire_evidence does.
_SIGNAL_ROWS = """
    SELECT c.n, c.nta, 'post', (CAST(%(post_cats)s AS text[]))[1 + c.h %% 20], 0.5 + ((c.h / 6000000) %% 50) / 100.0,
           CASE WHEN c.h %% 3 = 0 THEN 0.6 ELSE 1.0 END, md5('author' || (c.h / 20) %% 300000), c.at
    FROM chunk c WHERE c.kind = 0 AND (CAST(%(post_cats)s AS text[]))[1 + c.h %% 20] <> 'other'
    UNION ALL
    SELECT c.n, z, 'utility_report', (CAST(%(report_cats)s AS text[]))[1 + c.h %% 20], 1.0, 1.0,
           'utility:' || %(uidt)s::text, c.at
    FROM chunk c, unnest(c.zones) AS z WHERE c.kind = 1
"""
_RETIRE = """
    UPDATE signals s SET retired_at = c.at + make_interval(secs => %(step)s)
    FROM chunk c WHERE c.kind = 1 AND s.observation_id = c.n
"""

_LINKS = """
    INSERT INTO observation_zones (observation_id, zone_id, weight)
    SELECT c.n, z, 1.0 FROM chunk c, unnest(c.zones) AS z WHERE c.kind > 0
"""

_REPORTS = """
    INSERT INTO utility_reports (id, observation_id, utility_id, external_id, category, status, customers_affected,
        cause, description, started_at, estimated_restore_at, footprint, body_hash, idempotency_key, version,
        created_at, updated_at)
    SELECT (c.base + 1) / 40, c.n, %(uid)s, 'h' || c.base, (CAST(%(report_cats)s AS text[]))[1 + c.h %% 20],
           'restored', 1 + (c.h / 20) %% 5000, 'bench', NULL, c.at - make_interval(secs => %(step)s), NULL, c.geom,
           md5(c.base::text), NULL, 2, c.at - make_interval(secs => %(step)s), c.at
    FROM chunk c WHERE c.kind = 2;
    INSERT INTO utility_report_history (report_id, version, observation_id, status, changes, key_id, at)
    SELECT (c.base + 1) / 40, c.kind, c.n, CASE c.kind WHEN 1 THEN 'reported' ELSE 'restored' END,
           CASE c.kind WHEN 1 THEN '{"category": [null, "power_outage"]}' ELSE '{"status": ["reported", "restored"]}'
           END::jsonb, NULL, c.at
    FROM chunk c WHERE c.kind > 0;
"""

# Resolved alerts: alert k is about observation `n` (its zone and time), opened by one of the rules.
_ALERTS = """
    CREATE TEMP TABLE hist_alerts ON COMMIT DROP AS
    SELECT k AS id, n, (CAST(%(rule)s AS text[]))[1 + h %% %(nrules)s] AS rule,
           (CAST(%(incident)s AS text[]))[1 + h %% %(nrules)s] AS category,
           (ARRAY['minor', 'major', 'major', 'critical'])[1 + (h / 7) %% 4] AS severity, bp.nta AS zone_id,
           CAST(%(t0)s AS timestamptz) + make_interval(secs => n * %(step)s) AS opened_at,
           make_interval(mins => CAST(45 + (h / 31) %% 150 AS int)) AS lasted, CAST(3 + (h / 11) %% 12 AS int) AS evidence,
           (h / 13) %% 2 = 0 AS acked
    FROM (SELECT k, LEAST(%(rows)s - 60, (k - 1) * %(per)s + 1 + abs(hashint8extended(k, 5)) %% %(per)s) AS n,
                 abs(hashint8extended(k, 6)) AS h
          FROM generate_series(1, %(k)s) k) a
    JOIN bench_points bp ON bp.p = abs(hashint8extended(CASE WHEN a.n %% 40 = 0 THEN a.n - 1 ELSE a.n END, 1)) %% %(np)s;

    INSERT INTO alerts (id, rule, zone_id, category, severity, state, ack_code, evidence_count, distinct_authors,
        opened_at, updated_at, last_evidence_at, acknowledged_at, acknowledged_by, resolved_at, expires_at,
        quiet_since, cooldown_until, last_notified_at, escalation_ticks, resolved_by)
    SELECT id, rule, zone_id, category, severity, 'resolved', 'A' || id, evidence, evidence, opened_at,
           opened_at + lasted, opened_at + lasted / 2,
           CASE WHEN acked THEN opened_at + interval '4 minutes' END, CASE WHEN acked THEN 'operator:bench' END,
           opened_at + lasted, NULL, NULL, opened_at + lasted + interval '30 minutes', opened_at + lasted,
           0, 'rule:' || rule
    FROM hist_alerts;

    INSERT INTO alert_evidence (alert_id, observation_id, added_at)
    SELECT a.id, a.n + 3 * j, a.opened_at FROM hist_alerts a, generate_series(0, a.evidence - 1) j;

    INSERT INTO alert_history (alert_id, at, from_state, to_state, severity, actor, reason)
    SELECT id, opened_at, NULL, 'open', severity, 'rule:' || rule, 'threshold reached' FROM hist_alerts
    UNION ALL
    SELECT id, opened_at + interval '4 minutes', 'open', 'acknowledged', severity, 'operator:bench', 'acknowledged'
    FROM hist_alerts WHERE acked
    UNION ALL
    SELECT id, opened_at + lasted, CASE WHEN acked THEN 'acknowledged' ELSE 'open' END, 'resolved', severity,
           'rule:' || rule, 'quiet period elapsed' FROM hist_alerts;

    INSERT INTO alert_rules (alert_id, rule, zone_id, severity, first_fired_at, last_fired_at, cooldown_s,
                             cooldown_until)
    SELECT id, rule, zone_id, severity, opened_at, opened_at + lasted / 2, 1800,
           opened_at + lasted + interval '30 minutes' FROM hist_alerts;

    CREATE TEMP TABLE hist_events ON COMMIT DROP AS
    SELECT gen_random_uuid() AS event_id, a.id AS alert_id, e.kind, e.at, a.severity, e.state
    FROM hist_alerts a, LATERAL (VALUES ('opened', a.opened_at, 'open'),
                                        ('resolved', a.opened_at + a.lasted, 'resolved')) AS e(kind, at, state);

    INSERT INTO outbox_events (event_id, alert_id, kind, payload, created_at, next_attempt_at, attempts, published_at)
    SELECT event_id, alert_id, kind,
           jsonb_build_object('event_id', event_id, 'kind', kind, 'alert_id', alert_id, 'severity', severity,
                              'state', state, 'reason', 'bench history', 'padding', repeat('x', 600)),
           at, at, 1, at + interval '50 milliseconds'
    FROM hist_events;

    INSERT INTO alert_notifications (alert_id, at, reason, kind, state, severity, event_id)
    SELECT alert_id, at, kind, kind, state, severity, event_id FROM hist_events;

    DELETE FROM sms_fanout_queue;
"""

_FINISH = """
    INSERT INTO zone_baselines (zone_id, category, rate_per_h, through_hour)
    SELECT zone_id, category, count(*) / (365.0 * 24), date_trunc('hour', CAST(%(end)s AS timestamptz))
    FROM signals WHERE source = 'post' GROUP BY zone_id, category
    ON CONFLICT (zone_id, category) DO NOTHING;
    SELECT setval(pg_get_serial_sequence('observations', 'id'), %(rows)s);
    SELECT setval(pg_get_serial_sequence('utility_reports', 'id'), %(rows)s / 40 + 1);
    SELECT setval(pg_get_serial_sequence('alerts', 'id'), (SELECT max(id) FROM alerts));
    DROP TABLE bench_points;
"""


def _run(conn: psycopg.Connection, sql: str, params: dict) -> None:
    """Each statement of `sql` in turn (a statement with parameters is sent alone)."""
    for statement in sql.split(";\n"):
        if statement.strip():
            conn.execute(statement, params)


def rounded(rows: int) -> int:
    """Rows rounded up to whole reports (a report is two observations in every REPORT_EVERY)."""
    return -(-rows // REPORT_EVERY) * REPORT_EVERY


def load(dsn: str, *, rows: int, start: datetime, end: datetime, utility_id: int,
         rules: Sequence[tuple[str, str]], bbox: tuple[float, float, float, float],
         say: Callable[[str], None] = print) -> dict[str, int]:
    """Write `rows` observations (a multiple of REPORT_EVERY) evenly over [start, end) with everything the
    product would have written with them; returns the row counts of the tables written."""
    from alerts import signals

    assert rows % REPORT_EVERY == 0
    step = (end - start).total_seconds() / rows
    common = {"t0": start, "step": step, "uid": utility_id, "uidt": str(utility_id), "post_cats": POST_CATEGORIES,
              "report_cats": REPORT_CATEGORIES}
    began = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        w, s, e, n = bbox
        _run(conn, _POINTS, {"w": w, "s": s, "e": e, "n": n, "k": 20_000})
        np_ = conn.execute("SELECT count(*) FROM bench_points").fetchone()[0]
        say(f"  {np_} sample points with their zones ({time.perf_counter() - began:.0f}s)")
        for a in range(1, rows + 1, CHUNK):
            b = min(rows, a + CHUNK - 1)
            t = time.perf_counter()
            with conn.transaction():
                _run(conn, _CHUNK, {**common, "a": a, "b": b, "np": np_})
                for sql in (_OBSERVATIONS, signals.insert_sql(_SIGNAL_ROWS), _RETIRE, _LINKS, _REPORTS):
                    _run(conn, sql, common)
            done = time.perf_counter()
            rate = (b - a + 1) / (done - t)
            say(f"  observations {b:,}/{rows:,}: {done - t:.0f}s for this chunk ({rate:,.0f} rows/s), "
                f"about {(rows - b) / rate / 60:.0f} min to go", )
        alerts = max(1, rows // ROWS_PER_ALERT)
        t = time.perf_counter()
        with conn.transaction():
            _run(conn, _ALERTS, {**common, "rule": [r for r, _ in rules], "incident": [c for _, c in rules],
                                   "nrules": len(rules), "rows": rows, "per": rows // alerts, "k": alerts,
                                   "np": np_})
            _run(conn, _FINISH, {"end": end, "rows": rows})
        say(f"  {alerts:,} resolved alerts with evidence, history and events ({time.perf_counter() - t:.0f}s)")
        t = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        say(f"  VACUUM ANALYZE ({time.perf_counter() - t:.0f}s); loaded in {(time.perf_counter() - began) / 60:.1f} min")
        counts = {}
        for table in ("observations", "signals", "observation_zones", "utility_reports", "utility_report_history",
                      "alerts", "alert_evidence", "alert_history", "outbox_events"):
            counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return counts
