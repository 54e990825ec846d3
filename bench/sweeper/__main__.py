"""The sweeper's CPU over a quiet minute: the worker's passes (`alerts.sweeper.Schedule`) against sweeping every
unresolved alert each pass (`alerts.sweeper.sweep_pass`, what every pass did before), side by side.

Setup: a dedicated database `tocsin_bench_sweeper` (dropped and re-created each run, migrated), a layer of
1,000 grid zones over New York, and BENCH_SWEEPER_ALERTS open alerts (default 3,000: three immediate rules,
one utility report each in every zone), with escalation, repeats and expiry far enough off that nothing is
due during the minute: the sweeper of a control room whose incidents are open and quiet.

Timed, alternating ROUNDS times: one simulated minute of passes at the worker's default interval (12
passes, 5 s apart in simulated time, run back to back) by a Schedule that has already swept every alert
once, so that in each of its minutes every alert comes back once by the backstop (FULL_EVERY_S: each alert
45-60 s after its last sweep), over its scans; and 12 full passes.
CPU of this process (the sweeper) and of PostgreSQL, from /proc (bench/cpu.py).

Last line: `sweeper_cpu_ms_per_min scheduled=<ms> every_alert=<ms> ratio=<every_alert / scheduled>`.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

from bench import cpu
from bench.db import bench_database

DB_NAME = "tocsin_bench_sweeper"
N_ALERTS = int(os.environ.get("BENCH_SWEEPER_ALERTS", "3000"))
ROUNDS = 3
PASSES_PER_MIN = 12  # TOCSIN_SWEEP_INTERVAL_S = 5
T0 = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
CATEGORIES = ("gas_leak", "power_outage", "water_main")
RULES_DOC = {"rules": [
    {"name": f"{category}_report", "categories": [category], "sources": ["utility_report"], "layer": "grid",
     "immediate": True, "severity": "major", "expire_after": "12h", "escalate_after": "6h",
     "repeat_interval": "6h"} for category in CATEGORIES]}


def _open_alerts(factory, zones: list) -> int:
    """One utility report per (zone, category) until N_ALERTS, observed at T0 in one batch: one alert each."""
    from sqlalchemy import text

    from alerts import service as alert_service
    from alerts.rules import parse_rules

    wanted = [(zone, category) for category in CATEGORIES for zone in zones][:N_ALERTS]
    with factory() as s, s.begin():
        ids = s.execute(text(
            """
            INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at,
                received_at, geom, uncertainty_m, geotag_method)
            SELECT 'utility_report', 'bench-' || n, 'utility:1', '', cat, 1.0, :at, :at, ST_PointOnSurface(z.geom),
                   25, 'coordinates'
            FROM unnest(CAST(:cat AS text[]), CAST(:zone AS int[])) WITH ORDINALITY AS t(cat, zone_id, n)
            JOIN zones z ON z.id = t.zone_id ORDER BY n
            RETURNING id
            """), {"cat": [c for _, c in wanted], "zone": [z.zone_id for z, _ in wanted], "at": T0}).scalars().all()
        signals = [alert_service.SignalIn(observation_id=oid, source="utility_report", category=category,
                                          confidence=1.0, author_key="utility:1", observed_at=T0, zones=[zone])
                   for oid, (zone, category) in zip(ids, wanted)]
        alert_service.observe_many(s, signals=signals, rules=parse_rules(RULES_DOC), now=T0)
    with factory() as s:
        return s.execute(text("SELECT count(*) FROM alerts WHERE state = 'open'")).scalar_one()


def main() -> int:
    from alerts import sweeper
    from alerts.rules import parse_rules
    from bench.grid import grid_zones
    from db.session import make_engine, make_sessionmaker
    from tocsin import models_registry
    from tocsin.settings import Settings

    if not cpu.available():
        print("bench.sweeper: /proc is not available here; it measures CPU from it. Skipped.")
        return 0
    models_registry.load()
    url = bench_database(Settings().database_url, DB_NAME, fresh=True)
    engine = make_engine(url, pool_size=1)
    factory = make_sessionmaker(engine)
    rules = parse_rules(RULES_DOC)
    opened = _open_alerts(factory, grid_zones(factory, cols=40, rows=25, bbox=(-74.05, 40.55, -73.75, 40.90)))
    print(f"{opened} open alerts in 1,000 zones, nothing due for hours", flush=True)

    schedule = sweeper.Schedule(factory)
    schedule.run_pass(rules=rules, now=T0 + timedelta(seconds=1))  # the worker's first pass: every alert, new to it
    groups = cpu.Groups({"sweeper": lambda: [os.getpid()], "postgres": "postgres"})
    totals: dict[str, list[float]] = {"scheduled": [], "every_alert": []}
    swept: dict[str, int] = {"scheduled": 0, "every_alert": 0}
    minute = {"scheduled": 0, "every_alert": 0}  # each its own timeline: the Schedule's minutes follow on
    for _ in range(ROUNDS):
        for how in ("scheduled", "every_alert"):
            minute[how] += 1
            groups.start()
            for k in range(PASSES_PER_MIN):
                now = T0 + timedelta(minutes=minute[how], seconds=5 * k + 1)
                result = (schedule.run_pass(rules=rules, now=now) if how == "scheduled"
                          else sweeper.sweep_pass(factory, rules=rules, now=now))
                swept[how] += result.swept
                assert not (result.resolved or result.notified or result.escalation_ticks), "nothing is due"
            spent = groups.stop()
            totals[how].append(sum(spent.values()) * 1000)
            print(cpu.line(f"cpu_ms_per_min {how}", {g: v * 1000 for g, v in spent.items()}), flush=True)
    engine.dispose()
    scheduled, every = (sorted(totals[h])[len(totals[h]) // 2] for h in ("scheduled", "every_alert"))
    print(f"alerts swept per minute: scheduled {swept['scheduled'] // ROUNDS}, "
          f"every alert {swept['every_alert'] // ROUNDS} (medians of {ROUNDS} alternating minutes below)")
    print(f"sweeper_cpu_ms_per_min scheduled={scheduled:.0f} every_alert={every:.0f} ratio={every / scheduled:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
