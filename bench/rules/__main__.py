"""Rule-engine throughput: 1,000 zones x 10 rules while evidence streams in, one transaction per signal.

Setup: a dedicated database `tocsin_bench_rules` (dropped and re-created each run, migrated), one
zone layer `grid` of 1,000 squares (40 x 25 over New York), and the observations the stream will
need (bulk-inserted before timing; geo matching is not part of this figure: each signal carries its
grid cell, as `geo.match_postgis` would have found it).

Timed: N_SIGNALS signals over four simulated hours (background noise in every zone plus bursts in 40
zones) through `alerts.service.observe`, each committed alone as an accepted report is, and the
sweeper every five simulated minutes (hysteresis, expiry, repeats, escalation ticks); a share of the
alerts is acknowledged. A rule evaluation is one (rule, zone) pair re-evaluated: by observe for each
rule a signal feeds, or by the sweeper for each unresolved alert it visits.

Then, from the database: the share of alert changes (alert_history rows) that have an outbox event
for the same alert written by the same transaction (`txid_current()` stored on both rows), which
must be 1.0. Every rule here notifies on every change of state or severity (notify_on_lower), so every
such change has one. A second rule joining an open alert at no higher severity is history only: it
changes neither state nor severity, so nobody is notified (alerts.observe); those rows are counted
apart and printed, not in the share.

Last line: `rule_evals_per_s=<x> outbox_same_tx=<share>`.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.db import bench_database

DB_NAME = "tocsin_bench_rules"
N_SIGNALS = int(os.environ.get("BENCH_RULES_SIGNALS", "3000"))
COLS, ROWS = 40, 25
WEST, SOUTH, EAST, NORTH = -74.05, 40.55, -73.75, 40.90
T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
SIM_S = 4 * 3600
SWEEP_EVERY_S = 300

_COMMON = {"layer": "grid", "notify_on_lower": True}
RULES_DOC = {"rules": [
    {"name": "flood_posts", "categories": ["flood"], "sources": ["post"], "window": "10m",
     "ladder": {"minor": 3, "major": 6, "critical": 10}, "min_distinct_authors": 2, "resolve_below": 2,
     "quiet_period": "10m", "cooldown": "20m", "repeat_interval": "30m", "escalate_after": "15m"},
    {"name": "fire_posts", "categories": ["fire"], "sources": ["post"], "window": "10m",
     "ladder": {"major": 3, "critical": 8}, "min_distinct_authors": 2, "quiet_period": "10m",
     "escalate_after": "5m", "repeat_interval": "20m"},
    {"name": "collision_spike", "categories": ["collision"], "sources": ["post"], "window": "30m", "min_count": 3,
     "spike_factor": 3, "severity": "minor", "quiet_period": "10m"},
    {"name": "power_correlated", "categories": ["power_outage"], "sources": ["post", "utility_report"],
     "window": "30m", "min_count": 3, "severity": "minor", "quiet_period": "10m", "cooldown": "10m"},
    {"name": "large_outage", "categories": ["power_outage"], "sources": ["utility_report"], "immediate": True,
     "conditions": {"customers_affected": {"gte": 500}}, "expire_after": "1h", "quiet_period": "5m"},
    {"name": "gas_leak_report", "categories": ["gas_leak"], "sources": ["utility_report"], "immediate": True,
     "severity": "critical", "expire_after": "45m", "escalate_after": "10m"},
    {"name": "water_main", "categories": ["water_main"], "window": "20m", "min_count": 3, "quiet_period": "10m"},
    {"name": "medical_cluster", "categories": ["medical"], "sources": ["post"], "window": "15m", "min_count": 4,
     "min_distinct_authors": 3, "quiet_period": "10m"},
    {"name": "structural", "categories": ["structural"], "window": "30m", "min_count": 2, "severity": "major",
     "quiet_period": "15m"},
    {"name": "hazmat", "categories": ["hazmat"], "window": "15m", "ladder": {"major": 2, "critical": 5},
     "quiet_period": "10m"},
]}
for _r in RULES_DOC["rules"]:
    _r.update(_COMMON)
POST_CATEGORIES = ["flood", "fire", "collision", "power_outage", "water_main", "medical", "structural", "hazmat",
                   "other"]
REPORT_CATEGORIES = ["power_outage", "gas_leak", "water_main"]


def _grid(factory) -> list:
    from bench.grid import grid_zones

    return grid_zones(factory, cols=COLS, rows=ROWS, bbox=(WEST, SOUTH, EAST, NORTH))


def _stream(zones: list, rng: random.Random) -> list[dict]:
    """Signals in time order: noise everywhere, bursts in 40 zones."""
    n_burst = N_SIGNALS // 3
    items = []
    for _ in range(N_SIGNALS - n_burst):
        report = rng.random() < 0.1
        items.append({"zone": rng.randrange(len(zones)), "at": rng.uniform(0, SIM_S),
                      "source": "utility_report" if report else "post",
                      "category": rng.choice(REPORT_CATEGORIES if report else POST_CATEGORIES),
                      "author": f"n{rng.randrange(10**9)}", "customers": rng.choice([10, 120, 800, 4000])})
    bursts = [(rng.randrange(len(zones)), rng.uniform(0, SIM_S - 1800), rng.choice(POST_CATEGORIES[:8]))
              for _ in range(40)]
    for k in range(n_burst):
        zone, start, category = bursts[k % len(bursts)]
        items.append({"zone": zone, "at": start + rng.uniform(0, 900), "source": "post", "category": category,
                      "author": f"b{rng.randrange(20)}", "customers": None})
    items.sort(key=lambda i: i["at"])
    return items


def _observations(factory, zones, items) -> list[int]:
    from sqlalchemy import text

    with factory() as s, s.begin():
        z = [zones[i["zone"]] for i in items]
        ids = s.execute(text(
            """
            INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at,
                received_at, geom, uncertainty_m, geotag_method)
            SELECT src, 'bench-' || n, author, '', cat, 0.9, at, at,
                   ST_PointOnSurface(z.geom), 25, 'coordinates'
            FROM unnest(CAST(:src AS text[]), CAST(:author AS text[]), CAST(:cat AS text[]),
                        CAST(:at AS timestamptz[]), CAST(:zone AS int[])) WITH ORDINALITY AS t(src, author, cat, at,
                        zone_id, n)
            JOIN zones z ON z.id = t.zone_id
            ORDER BY n
            RETURNING id
            """),
            {"src": [i["source"] for i in items], "author": [i["author"] for i in items],
             "cat": [i["category"] for i in items], "at": [T0 + timedelta(seconds=i["at"]) for i in items],
             "zone": [m.zone_id for m in z]},
        ).scalars().all()
    return list(ids)


def main() -> int:
    from sqlalchemy import text

    from alerts import service as alert_service
    from alerts import sweeper
    from alerts.evaluate import conditions_hold
    from alerts.rules import parse_rules
    from db.session import make_engine, make_sessionmaker
    from tocsin import models_registry
    from tocsin.settings import Settings

    models_registry.load()
    settings = Settings()
    url = bench_database(settings.database_url, DB_NAME, fresh=True)
    engine = make_engine(url, pool_size=2)
    factory = make_sessionmaker(engine)
    rules = parse_rules(RULES_DOC)
    rng = random.Random(20261125)
    zones = _grid(factory)
    items = _stream(zones, rng)
    ids = _observations(factory, zones, items)
    print(f"{len(zones)} zones x {len(rules)} rules, {len(items)} signals over {SIM_S // 3600} simulated hours",
          flush=True)

    evals = swept = 0
    next_sweep = 0.0
    started = time.perf_counter()
    for item, oid in zip(items, ids):
        while item["at"] >= next_sweep:
            with factory() as s, s.begin():
                result = sweeper.sweep(s, rules=rules, now=T0 + timedelta(seconds=next_sweep), limit=10_000)
                swept += result.swept
            next_sweep += SWEEP_EVERY_S
        now = T0 + timedelta(seconds=item["at"])
        attributes = {"customers_affected": item["customers"]} if item["source"] == "utility_report" else {}
        signal = alert_service.SignalIn(
            observation_id=oid, source=item["source"], category=item["category"], confidence=0.9,
            author_key=item["author"], observed_at=now, zones=[zones[item["zone"]]], attributes=attributes)
        evals += sum(1 for r in rules
                     if r.matches(category=signal.category, source=signal.source, confidence=signal.confidence)
                     and (not r.immediate or conditions_hold(r, attributes)))
        with factory() as s, s.begin():
            changes = alert_service.observe(s, signal=signal, rules=rules, now=now)
            for change in changes:
                if change.kind == "opened" and change.alert_id % 4 == 0:  # operators take a quarter of them
                    alert_service.acknowledge(s, alert_id=change.alert_id, actor="operator:bench", note=None,
                                              now=now, rules=rules)
    with factory() as s, s.begin():
        swept += sweeper.sweep(s, rules=rules, now=T0 + timedelta(seconds=SIM_S + 7200), limit=10_000).swept
    elapsed = time.perf_counter() - started
    evals += swept

    with factory() as s:
        changes, same_tx, joins = s.execute(text(
            "SELECT count(*) FILTER (WHERE NOT joined), count(*) FILTER (WHERE NOT joined AND EXISTS (SELECT 1 "
            "FROM outbox_events e WHERE e.alert_id = h.alert_id AND e.txid = h.txid)), count(*) FILTER (WHERE joined) "
            "FROM (SELECT *, reason LIKE 'rule joined:%' AND from_state = to_state AS joined FROM alert_history) h"
        )).one()
        alerts, events = s.execute(text(
            "SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM outbox_events)")).one()
        kinds = dict(s.execute(text("SELECT kind, count(*) FROM outbox_events GROUP BY kind ORDER BY kind")).all())
        lonely = s.execute(text(
            "SELECT coalesce(from_state, '-') || '->' || to_state || ' by ' || split_part(actor, ':', 1) || ': ' "
            "|| left(reason, 60), count(*) FROM alert_history h WHERE NOT EXISTS (SELECT 1 FROM outbox_events e "
            "WHERE e.alert_id = h.alert_id AND e.txid = h.txid) AND NOT (reason LIKE 'rule joined:%' AND "
            "from_state = to_state) GROUP BY 1 ORDER BY 2 DESC LIMIT 5")).all()
    engine.dispose()
    print(f"{alerts} alerts, {changes} alert changes, {events} outbox events {kinds}; "
          f"{joins} rules joined an open alert (history only)")
    for what, n in lonely:
        print(f"  a change with no outbox event of its transaction: {n} x {what}")
    print(f"{len(items)} signals in {elapsed:.1f}s ({len(items) / elapsed:.0f} signals/s, one transaction each), "
          f"{evals} rule evaluations ({swept} by the sweeper)")
    print("(a rule evaluation is one (rule, zone) pair re-evaluated: by observe, for each rule a signal feeds in "
          "each zone it matched; by the sweeper, for each unresolved alert it visits)")
    share = same_tx / changes if changes else 0.0
    print(f"rule_evals_per_s={evals / elapsed:.0f} outbox_same_tx={share:.3f}")
    return 0 if changes and share == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
