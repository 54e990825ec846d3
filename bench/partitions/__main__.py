"""A year of data stays fast: report latency and a rule evaluation on an empty database and after a year.

Setup: a dedicated database `tocsin_bench_partitions_empty` (dropped and re-created, migrated) with the
five New York demo zone layers (about 2,700 zones) and a utility with its key; the default rules
(data/rules.yaml, every rule on `nta`). A copy of it, `tocsin_bench_partitions_full`, gets a year of
history (bench.partitions.history): BENCH_PARTITION_ROWS observations (default 10,000,000: 0.32 a second
over 365 days, posts and utility reports) with their signals, zone links, reports, and resolved alerts
with their evidence, history and events; then VACUUM ANALYZE. The history ends two hours before the run,
so rule windows hold only the run's own signals on both: the difference is the size of the tables alone.
A year of posts is the worst case: posts are kept 30 days by default (`post_retention_days`), utility
reports and resolved alerts a year.

Timed on both databases the same way (bench.partitions.measure), in turn, one request or evaluation to
each (alternating which goes first), so what else runs on the machine weighs on both alike:
BENCH_PARTITION_REPORTS (default 1,000) reports POSTed one at a time to a real API per database
(uvicorn, one worker each) after a warm-up, then BENCH_PARTITION_EVALS (default 500) rule evaluations
(alerts.service.observe of one post signal, committed alone).

Before the last line: `rule_eval_p99_ms_empty= rule_eval_p99_ms_full= rule_eval_ratio=`; last line:
`rows= report_p99_ms_empty= report_p99_ms_full= ratio=` (goal: ratio <= 1.2).
BENCH_PARTITION_ROWS=0 skips the bench; BENCH_KEEP=1 keeps both databases afterwards (for EXPLAIN).

Run: .venv/bin/python -m bench.partitions (BENCH_PARTITION_ROWS=200000 for a quick one)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

DB_EMPTY = "tocsin_bench_partitions_empty"
DB_FULL = "tocsin_bench_partitions_full"
DAYS = 365


def _summary(what: str, ms: list[float]) -> str:
    from bench.partitions.measure import percentile

    return (f"{what}: n={len(ms)} p50_ms={statistics.median(ms):.2f} p90_ms={percentile(ms, 0.9):.2f} "
            f"p99_ms={percentile(ms, 0.99):.2f} max_ms={max(ms):.2f}")


def main() -> int:
    rows = int(os.environ.get("BENCH_PARTITION_ROWS", "10000000"))
    if rows <= 0:
        print("skipped: BENCH_PARTITION_ROWS=0")
        return 0

    from alerts.rules import load_rules
    from bench.db import admin_url, drop_database, fresh_or_skip
    from bench.partitions import history, measure
    from tocsin.settings import Settings

    settings = Settings()
    n_reports = int(os.environ.get("BENCH_PARTITION_REPORTS", "1000"))
    n_evals = int(os.environ.get("BENCH_PARTITION_EVALS", "500"))
    rows = history.rounded(rows)
    if (empty := fresh_or_skip(settings.database_url, DB_EMPTY, migrate=True)) is None:
        return 0
    rules = load_rules(settings.rules_file)
    try:
        key, utility_id = measure.setup(empty)
        full = measure.copy(settings.database_url, DB_EMPTY, DB_FULL)
        end = datetime.now(UTC) - timedelta(hours=2)
        print(f"loading {rows:,} observations over {DAYS} days ({rows / (DAYS * 86400):.2f}/s) into {DB_FULL}...",
              flush=True)
        counts = history.load(admin_url(full), rows=rows, start=end - timedelta(days=DAYS), end=end,
                              utility_id=utility_id, bbox=measure.NYC,
                              rules=[(r.name, r.incident_category) for r in rules],
                              say=lambda line: print(line, flush=True))
        print("  " + ", ".join(f"{t}={n:,}" for t, n in counts.items()), flush=True)
        run = uuid.uuid4().hex[:6]
        started = time.perf_counter()
        r_empty, r_full = measure.report_latencies([empty, full], key, run=run, n=n_reports)
        e_empty, e_full = measure.evaluation_latencies([empty, full], rules, run=run, n=n_evals)
        print(f"measured in {time.perf_counter() - started:.0f}s, the two databases in turn "
              f"(cores={os.cpu_count()} load_avg_1m={os.getloadavg()[0]:.1f})")
        for name, reports, evals in (("empty", r_empty, e_empty), ("full", r_full, e_full)):
            print(f"  {name}: " + _summary("POST /v1/reports", reports))
            print(f"  {name}: " + _summary("rule evaluation (observe, one signal, commit)", evals), flush=True)
    finally:
        if os.environ.get("BENCH_KEEP") == "1":
            print(f"kept databases {DB_EMPTY} and {DB_FULL} (BENCH_KEEP=1)")
        else:
            drop_database(settings.database_url, DB_FULL)
            drop_database(settings.database_url, DB_EMPTY)
    p99 = {k: measure.percentile(v, 0.99) for k, v in
           (("r_empty", r_empty), ("r_full", r_full), ("e_empty", e_empty), ("e_full", e_full))}
    print(f"rule_eval_p50_ms_empty={statistics.median(e_empty):.2f} rule_eval_p50_ms_full={statistics.median(e_full):.2f} "
          f"report_p50_ms_empty={statistics.median(r_empty):.2f} report_p50_ms_full={statistics.median(r_full):.2f}")
    print(f"rule_eval_p99_ms_empty={p99['e_empty']:.2f} rule_eval_p99_ms_full={p99['e_full']:.2f} "
          f"rule_eval_ratio={p99['e_full'] / p99['e_empty']:.2f}")
    print(f"rows={rows} report_p99_ms_empty={p99['r_empty']:.2f} report_p99_ms_full={p99['r_full']:.2f} "
          f"ratio={p99['r_full'] / p99['r_empty']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
