"""Utility report intake direct to PostgreSQL and through PgBouncer (transaction pooling), side by side.

The load of bench.reports (its database `tocsin_bench_reports`, zones, key and clients), run twice against the
real app under uvicorn: once with TOCSIN_DATABASE_URL straight to PostgreSQL, once through the local PgBouncer
(TOCSIN_PGBOUNCER_URL, from scripts/services.sh; its LISTEN stays direct). Through the pooler psycopg prepares
nothing on the server and each transaction takes a server connection from PgBouncer's pool (db.session).
BENCH_CLIENTS (default 32), BENCH_WORKERS (2) and BENCH_SECONDS (10, per side) as in bench.reports.
Last line: `reports_per_s_direct=<x> reports_per_s_pooled=<y> ratio=<y/x>`.
"""

import asyncio
import os
import statistics
import sys

from bench.db import bench_database
from bench.http_load import serve
from bench.reports.__main__ import DB_NAME, _load, _setup


def _serve_and_load(env: dict[str, str], key: str, *, clients: int, workers: int, seconds: float) -> tuple[list, int]:
    """Start the app with `env`, load it, stop it: the accepted reports' latencies and the errors."""
    with serve("bench.reports.server:app", env=env, workers=workers) as (base, _):
        return asyncio.run(_load(base, key, clients=clients, warmup_s=3.0, seconds=seconds))


def main() -> int:
    from sqlalchemy import make_url

    from tocsin.settings import Settings

    pooler = os.environ.get("TOCSIN_PGBOUNCER_URL")
    if not pooler:
        print("TOCSIN_PGBOUNCER_URL is not set: start the services (scripts/services.sh start) and source "
              "var/services.env", file=sys.stderr)
        return 1
    clients = int(os.environ.get("BENCH_CLIENTS", "32"))
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    direct = bench_database(Settings().database_url, DB_NAME, migrate=False)
    pooled = make_url(pooler).set(database=DB_NAME).render_as_string(hide_password=False)
    base_env = {**os.environ, "TOCSIN_DATABASE_LISTEN_URL": direct, "TOCSIN_RATE_LIMIT_PER_MIN": "0",
                "TOCSIN_LOG_LEVEL": "WARNING"}
    rates = {}
    for side, url in (("direct", direct), ("pooled", pooled)):
        key = _setup(direct)  # empties the report tables, a fresh key
        latencies, errors = _serve_and_load({**base_env, "TOCSIN_DATABASE_URL": url}, key,
                                            clients=clients, workers=workers, seconds=seconds)
        if not latencies:
            print(f"{side}: no report was accepted", file=sys.stderr)
            return 1
        ms = sorted(x * 1000 for x in latencies)
        rates[side] = len(ms) / seconds
        print(f"{side}: accepted={len(ms)} errors={errors} reports_per_s={rates[side]:.0f} "
              f"p50_ms={statistics.median(ms):.1f} p99_ms={ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.1f}",
              flush=True)
    print(f"clients={clients} workers={workers} seconds={seconds:g} per side, cores={os.cpu_count()} "
          f"load_avg_1m={os.getloadavg()[0]:.1f}")
    print(f"reports_per_s_direct={rates['direct']:.0f} reports_per_s_pooled={rates['pooled']:.0f} "
          f"ratio={rates['pooled'] / rates['direct']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
