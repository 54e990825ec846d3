"""The report writer alone while a new site's tables grow: CPU per report, in this process and in its backend.

Lone reports go through the group-commit writer (ingest.reports.writer.ReportWriter.write_batch) in this
process, on the one connection it holds across them as the API's writer thread does (`holding`, db.held),
with no HTTP, relay or SMS around them, each into a grid cell of its own so that each opens an alert
(bench.latency's site: bench/latency/site.py). The database's statistics are taken while it is
empty, as on a new site or after a quiet hour, and the writer's connection plans its statements and
foreign-key checks once (db.plans): a plan that walks what grows (every unresolved alert, a whole table)
makes each report cost more than the one before. READ's look-up of a pair's alert did until 2026-12-05
(growth 2.8: it walked every unresolved alert), and so did every sequential scan planned while a table held
a few rows (growth 1.9 to 4.2, in the runs where autovacuum's ANALYZE came late), until the writer's
connections were opened with `enable_seqscan = off` (db.plans.STARTUP).

Per block of BENCH_WRITER_BLOCK reports (300; BENCH_WRITER_BLOCKS blocks, 10) it prints the writer
thread's CPU (`time.thread_time`) and its backend's (read from /proc, so PostgreSQL must run on this
machine; otherwise only the client's is printed) per report, then `writer_client_ms= writer_server_ms=
growth=`: the medians over the blocks, and the server's median of the last two blocks over that of the
first two. Goal: growth <= 1.2. CPU, not wall time, so the host's noise moves it less; the figures
still drift with the host's speed, so compare runs made side by side.

Run: .venv/bin/python -m bench.writer
"""

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import cpu
from bench.db import admin_url, drop_database, fresh_or_skip
from bench.latency.load import COLS, ROWS, cell
from bench.latency.site import RULES, setup

DB_NAME = f"tocsin_bench_writer_{os.getpid()}"
BLOCK = int(os.environ.get("BENCH_WRITER_BLOCK", "300"))
BLOCKS = int(os.environ.get("BENCH_WRITER_BLOCKS", "10"))
WARM_UP = 20  # reports before the first block: the writer's connection opened, its statements prepared
ANYWHERE = (-180.0, -90.0, 180.0, 90.0)  # the jurisdiction: every cell is inside


def _report(i: int) -> dict:
    west, south, east, north = cell(i)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [(west + east) / 2, (south + north) / 2]},
            "properties": {"external_id": f"writer-{i}", "category": "gas_leak"}}


def run(url: str, key: str) -> tuple[list[float], list[float | None]]:
    """Per block, the writer's client and server CPU per report (ms)."""
    from accounts import keys
    from alerts.rules import load_rules
    from db.session import make_engine, make_sessionmaker
    from ingest.reports import service as reports
    from ingest.reports.schemas import ReportCreate
    from ingest.reports.writer import ReportWriter

    rules_path = Path(tempfile.mkdtemp()) / "rules.yaml"
    rules_path.write_text(RULES)
    rules = load_rules(rules_path)
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # statistics of the empty tables: what the plans are made from
    engine = make_engine(url, pool_size=1, generic_plans=True)  # as tocsin.app's writer engine
    factory = make_sessionmaker(engine)
    with factory() as session:
        caller = keys.authenticate(session, key=key)
    writer = ReportWriter(factory, rules=lambda: rules)
    numbered = iter(range(COLS * ROWS))

    def submission() -> reports.Submission:
        return reports.prepare(caller=caller, body=ReportCreate.model_validate(_report(next(numbered))),
                               idempotency_key=None, jurisdiction_bbox=ANYWHERE, now=datetime.now(UTC))

    def write(sub: reports.Submission) -> None:
        [outcome] = writer.write_batch([sub])
        if isinstance(outcome, Exception) or not outcome.alerts_changed:
            raise SystemExit(f"a report did not open its alert: {outcome!r}")

    try:
        with writer.holding():  # one connection across the reports, as the API's writer thread holds it (db.held)
            for _ in range(WARM_UP):
                write(submission())
            backend = _last_active(url)
            client_ms, server_ms = _blocks(submission, write, backend)
    finally:
        engine.dispose()
    return client_ms, server_ms


def _last_active(url: str) -> int:
    """The backend of the database's connection that ran a statement last, but this one: the writer's."""
    with psycopg.connect(admin_url(url)) as conn:
        return conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid() ORDER BY query_start DESC NULLS LAST LIMIT 1").fetchone()[0]


def _blocks(submission, write, backend: int) -> tuple[list[float], list[float | None]]:
    """BLOCKS blocks of BLOCK reports: the writer thread's and its backend's CPU per report in each (ms)."""
    client_ms: list[float] = []
    server_ms: list[float | None] = []
    for _ in range(BLOCKS):
        subs = [submission() for _ in range(BLOCK)]
        t0, s0 = time.thread_time(), cpu.seconds_of(backend)
        for sub in subs:
            write(sub)
        t1, s1 = time.thread_time(), cpu.seconds_of(backend)
        client_ms.append((t1 - t0) / BLOCK * 1000)
        server_ms.append(None if s0 is None or s1 is None else (s1 - s0) / BLOCK * 1000)
    return client_ms, server_ms


def main() -> int:
    from tocsin.settings import Settings

    if WARM_UP + BLOCK * BLOCKS > COLS * ROWS:
        print(f"BENCH_WRITER_BLOCK x BENCH_WRITER_BLOCKS must leave room in the grid's {COLS * ROWS - WARM_UP} cells")
        return 2
    settings = Settings()
    if (url := fresh_or_skip(settings.database_url, DB_NAME)) is None:
        return 0
    try:
        client_ms, server_ms = run(url, setup(url))
    finally:
        drop_database(settings.database_url, DB_NAME)
    for i, (client, server) in enumerate(zip(client_ms, server_ms)):
        shown = "n/a" if server is None else f"{server:.3f}"
        print(f"block {i + 1} (open alerts {WARM_UP + i * BLOCK}-{WARM_UP + (i + 1) * BLOCK}): "
              f"client_ms={client:.3f} server_ms={shown}")
    line = f"writer_client_ms={statistics.median(client_ms):.3f}"
    if None not in server_ms:
        growth = statistics.median(server_ms[-2:]) / max(statistics.median(server_ms[:2]), 1e-9)
        line += f" writer_server_ms={statistics.median(server_ms):.3f} growth={growth:.2f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
