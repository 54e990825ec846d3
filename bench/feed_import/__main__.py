"""Outage-feed import throughput on PG&E's storm-day snapshot, against direct report creation, in one run.

Setup: a dedicated database `tocsin_bench_feeds` on the configured server, migrated, its utility tables
emptied. The snapshot is ../shared/data/outages/pge/snapshot_fca7d6b_2024-02-05_2000records.json
(2,000 point outages); without the shared data the benchmark says so and exits 0.

- import: `ingest.reports.feed_import.import_feed` (savepoint per outage, diffing, the feed_imports row), one
  transaction, as `tocsin reports import-feed` runs it.
- direct: the same parsed bodies through `ingest.reports.service.create_report` in one transaction with no
  importer around them (the floor the importer adds to), for another utility. Each side runs twice,
  in the order import, direct, direct, import, on fresh utilities.
- reimport: the same snapshot again (every outage unchanged: the steady state of an hourly import).

`python -m bench.feed_import N` uses the first N outages (a quick look, not the figure).
Last line: `import_per_s=<x> direct_per_s=<y> ratio=<x/y> reimport_per_s=<z>`.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

DB_NAME = "tocsin_bench_feeds"
SNAPSHOT = ("outages", "pge", "snapshot_fca7d6b_2024-02-05_2000records.json")
CALIFORNIA = (-125.0, 32.0, -114.0, 42.0)


def main() -> int:
    from sqlalchemy import text

    from alerts.rules import load_rules
    from bench.db import bench_database
    from db.session import make_engine, make_sessionmaker, transaction
    from accounts import keys
    from ingest.reports import feed_import, service as reports
    from ingest.reports.feeds import parse_feed
    from tocsin import models_registry
    from tocsin.settings import Settings

    settings = Settings()
    path = settings.shared_data_dir.joinpath(*SNAPSHOT)
    if not path.exists():
        print(f"skipped: {path} is absent (set TOCSIN_SHARED_DATA_DIR to the reference data)")
        return 0
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
    parsed = parse_feed("pge", json.loads(path.read_text())[:limit])
    n = len(parsed.items)
    models_registry.load()
    engine = make_engine(bench_database(settings.database_url, DB_NAME), pool_size=2)
    factory = make_sessionmaker(engine)
    rules = load_rules(settings.rules_file)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE feed_imports, utility_report_history, utility_reports, signals, "
                          "observation_zones, observations, api_keys, utilities CASCADE"))
    with transaction(factory) as session:
        for name in ("Bench Import 1", "Bench Direct 1", "Bench Import 2", "Bench Direct 2"):
            keys.add_utility(session, name=name)

    def run_import(utility: str) -> float:
        t = time.perf_counter()
        with transaction(factory) as session:
            caller = feed_import.feed_caller(session, utility_name=utility)
            result = feed_import.import_feed(session, caller=caller, feed="pge", parsed=parsed, rules=rules,
                                             jurisdiction_bbox=CALIFORNIA, now=datetime.now(UTC), source=path.name)
        elapsed = time.perf_counter() - t
        print(f"  import: {result.counts()} in {elapsed:.1f} s", flush=True)
        return elapsed

    def run_direct(utility: str) -> float:
        t = time.perf_counter()
        with transaction(factory) as session:
            caller = feed_import.feed_caller(session, utility_name=utility)
            for item in parsed.items:
                reports.create_report(session, caller=caller, body=item.body, idempotency_key=None, rules=rules,
                                      jurisdiction_bbox=CALIFORNIA, now=datetime.now(UTC))
        elapsed = time.perf_counter() - t
        print(f"  direct: {n} created in {elapsed:.1f} s", flush=True)
        return elapsed

    print(f"{n} outages from {path.name}", flush=True)
    # Alternate the order (import, direct, direct, import) so neither side gets the warmer caches.
    import_s = run_import("Bench Import 1")
    direct_s = run_direct("Bench Direct 1") + run_direct("Bench Direct 2")
    import_s += run_import("Bench Import 2")
    reimport_s = run_import("Bench Import 2")
    engine.dispose()
    import_rate, direct_rate, reimport_rate = 2 * n / import_s, 2 * n / direct_s, n / reimport_s
    print(f"import_per_s={import_rate:.0f} direct_per_s={direct_rate:.0f} ratio={import_rate / direct_rate:.2f} "
          f"reimport_per_s={reimport_rate:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
