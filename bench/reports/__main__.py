"""Utility report intake over HTTP: N concurrent clients POST single reports to a live server for a fixed time.

Setup (idempotent): a dedicated database `tocsin_bench_reports` on the configured PostGIS, migrated to all
heads, with the five New York demo zone layers (about 2,700 zones) loaded once; report tables are emptied
each run and given a day of history (bench.history: 20,000 resolved alerts, so that plans are a running
server's). A utility and key are created, then `uvicorn` serves the real app with BENCH_WORKERS workers
(default 2) on a free loopback port, rate limiting off. BENCH_CLIENTS (default 32) asyncio clients (bench/http_load.py) with
keep-alive post power-outage and gas-leak points scattered over New York for BENCH_SECONDS (default 20)
after a 3 s warm-up. Each report runs the full path: auth, validation, observation, zone matching in five
layers, the default rules, any alert and outbox event, commit.
Reports are written by group commit (ingest.reports.writer): the output says how many batches the API
processes committed and their mean size, and the CPU per report of the API, of PostgreSQL (every
postgres process on the machine) and of the client.

The closed loop measures throughput, not latency at a rate: with 32 clients each waiting for its answer,
the mean latency is 32 / throughput (Little's law), 64 ms at 500/s, so its p99 can never be 50 ms there.
BENCH_TERRITORY=1 gives the utility a service territory, New York's borough outline joined with the box the
points are drawn from (so that every report is inside), tens of thousands of vertices: each report is then
checked against it (ingest.reports.locate), as a real utility's would be.
Then an open loop posts at BENCH_OPEN_RATE (default 500/s; 0 skips it) for BENCH_OPEN_SECONDS (10), on a
schedule that does not wait for answers, each report timed from when it was due.
Last line: `open_rate=<r> open_p50_ms=<x> open_p99_ms=<y> reports_per_s=<closed-loop throughput>`.
Goal: reports_per_s >= 500 and open_p99_ms <= 50 at 500/s.
"""

import asyncio
import os
import random
import statistics
import sys
import time
import uuid

from bench import cpu, history
from bench.db import bench_database
from bench.http_load import ServerDidNotStart, serve
from tocsin import heap

DB_NAME = "tocsin_bench_reports"
NYC = (-74.02, 40.60, -73.78, 40.85)  # mostly land: Manhattan, Brooklyn, Queens, the Bronx


def _setup(url: str, *, territory: bool = False) -> str:
    """Migrate, load demo zones once, empty the report tables, create a utility (with a territory, if asked);
    returns its key."""
    from sqlalchemy import text

    from db import migrate
    from db.session import make_engine, make_sessionmaker, transaction
    from geo import zone_store as zone_service
    from geo.demo import DEMO_LAYERS, demo_layer_path
    from geo.zones import read_zone_file
    from accounts import keys
    from tocsin import models_registry

    migrate.upgrade(url)
    models_registry.load()
    engine = make_engine(url, pool_size=1)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        if session.execute(text("SELECT count(*) FROM zones")).scalar_one() == 0:
            for layer in DEMO_LAYERS:
                records, _ = read_zone_file(demo_layer_path(layer), code_field=layer.code_field,
                                            name_field=layer.name_field, assume_crs="EPSG:4326")
                zone_service.upsert_zones(session, layer=layer.name, records=records, description=layer.description)
        session.execute(text(
            "TRUNCATE observations, observation_zones, utility_reports, utility_report_history, signals, alerts, "
            "alert_evidence, alert_history, outbox_events, api_keys, utilities RESTART IDENTITY CASCADE"))
        utility = keys.add_utility(session, name="Bench Power")
        if territory:
            session.execute(text(_TERRITORY), {"id": utility.id, **dict(zip(("west", "south", "east", "north"), NYC))})
        key = keys.issue_key(session, role="utility", utility_id=utility.id)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE zones"))
    engine.dispose()
    history.seed(url, rule="bench_history", category="power_outage")  # a running server's tables (and ANALYZE)
    return key


# New York's borough outline, and the box the reports are drawn from: every report is inside, and the
# territory keeps the outline's vertices (tens of thousands) where the box does not reach.
_TERRITORY = """
    UPDATE utilities SET territory = (
        SELECT ST_Multi(ST_CollectionExtract(ST_Union(ST_Union(z.geom),
            ST_MakeEnvelope(:west, :south, :east, :north, 4326)), 3))
        FROM zones z JOIN zone_layers l ON l.id = z.layer_id WHERE l.name = 'borough')
    WHERE id = :id
"""


def _batches(base: str) -> tuple[int, int]:
    """Group commits and the reports they wrote, summed over the API processes that answered /metrics."""
    import httpx

    per_pid: dict[str, tuple[int, int]] = {}
    for _ in range(20):
        text = httpx.get(f"{base}/metrics", timeout=10).text
        found = dict.fromkeys(("batches", "reports"), None)
        pid = None
        for line in text.splitlines():
            if line.startswith("tocsin_report_batches_total{"):
                pid, found["batches"] = line.split('"')[1], int(float(line.split()[-1]))
            elif line.startswith("tocsin_report_batch_reports_total{"):
                found["reports"] = int(float(line.split()[-1]))
        if pid is not None:
            per_pid[pid] = max(per_pid.get(pid, (0, 0)), (found["batches"] or 0, found["reports"] or 0))
    return sum(b for b, _ in per_pid.values()), sum(r for _, r in per_pid.values())


def _feature(run: str, n: int, rng: random.Random) -> dict:
    west, south, east, north = NYC
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(rng.uniform(west, east), 6),
                                                      round(rng.uniform(south, north), 6)]},
        "properties": {"external_id": f"{run}-{n}", "category": "gas_leak" if n % 20 == 0 else "power_outage",
                       "customers_affected": rng.randint(1, 5000), "cause": "bench"},
    }


async def _load(base: str, key: str, *, clients: int, warmup_s: float, seconds: float) -> tuple[list[float], int]:
    from bench.http_load import Pool

    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    errors = 0
    counter = 0
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + seconds
    # bench.http_load: the client shares the cores with the server, and httpx cost ~9 ms CPU a POST.
    client = Pool(base, size=clients, headers={"Authorization": f"Bearer {key}"})

    async def worker(seed: int) -> None:
        nonlocal counter, errors
        rng = random.Random(seed)
        while (now := time.perf_counter()) < stop_at:
            counter += 1
            r = await client.post("/v1/reports", json=_feature(run, counter, rng))
            done = time.perf_counter()
            if now >= measure_from:
                if r.status_code == 201:
                    latencies.append(done - now)
                else:
                    errors += 1
                    if errors <= 3:
                        print(f"unexpected {r.status_code}: {r.text[:200]}", file=sys.stderr)

    await asyncio.gather(*(worker(i) for i in range(clients)))
    await client.aclose()
    return latencies, errors


async def _open_loop(base: str, key: str, *, rate: float, seconds: float) -> tuple[list[float], int, float]:
    """POST on a fixed schedule (`rate` a second, whatever the answers' pace), each report timed from the
    moment it was due: a server that falls behind shows as latency, not as a lower rate. Returns the
    latencies, the failures and the rate at which requests were actually sent."""
    from bench.http_load import Pool

    run = uuid.uuid4().hex[:8]
    rng = random.Random(7)
    latencies: list[float] = []
    errors = 0
    # Enough connections that the client never holds a request back: in flight = rate x latency.
    client = Pool(base, size=256, headers={"Authorization": f"Bearer {key}"})

    async def one(n: int, due: float) -> None:
        nonlocal errors
        try:
            r = await client.post("/v1/reports", json=_feature(run, n, rng))
        except OSError as exc:
            errors += 1
            print(f"request failed: {exc}", file=sys.stderr)
            return
        if r.status_code == 201:
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1
            if errors <= 3:
                print(f"unexpected {r.status_code}: {r.text[:200]}", file=sys.stderr)

    tasks = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        due = start + n / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(n, due)))
    sent_s = time.perf_counter() - start
    await asyncio.gather(*tasks)
    await client.aclose()
    return latencies, errors, len(tasks) / sent_s if sent_s > 0 else 0.0


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(x * 1000 for x in seconds)
    return statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]


def main() -> int:
    from tocsin.settings import Settings

    settings = Settings()
    clients = int(os.environ.get("BENCH_CLIENTS", "32"))
    seconds = float(os.environ.get("BENCH_SECONDS", "20"))
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    open_rate = float(os.environ.get("BENCH_OPEN_RATE", "500"))  # 0: no open-loop phase
    open_seconds = float(os.environ.get("BENCH_OPEN_SECONDS", "10"))
    url = bench_database(settings.database_url, DB_NAME, migrate=False)
    territory = os.environ.get("BENCH_TERRITORY", "0") == "1"
    key = _setup(url, territory=territory)
    env = {**os.environ, "TOCSIN_DATABASE_URL": url, "TOCSIN_RATE_LIMIT_PER_MIN": "0", "TOCSIN_LOG_LEVEL": "WARNING"}
    try:
        with serve("bench.reports.server:app", env=env, workers=workers) as (base, server):
            heap.freeze()  # the client times the answers: a full GC pass here would show as latency
            # bench.cpu: the server with its workers, every PostgreSQL process, and this client.
            groups = cpu.Groups({"api": lambda: [server.pid], "postgres": "postgres",
                                 "client": lambda: [os.getpid()]}, trees=["api"])
            groups.start()
            latencies, errors = asyncio.run(_load(base, key, clients=clients, warmup_s=3.0, seconds=seconds))
            spent = groups.stop()
            batches, batched = _batches(base)
            opened = (asyncio.run(_open_loop(base, key, rate=open_rate, seconds=open_seconds)) if open_rate > 0
                      else None)
    except ServerDidNotStart as exc:
        print(f"the server did not start: {exc}", file=sys.stderr)
        return 1
    if not latencies:
        print("no report was accepted", file=sys.stderr)
        return 1
    p50, p99 = _percentiles(latencies)
    total = len(latencies) * (seconds + 3.0) / seconds  # the warm-up's requests used CPU too
    print(f"clients={clients} workers={workers} seconds={seconds:g} accepted={len(latencies)} errors={errors} "
          f"cores={os.cpu_count()} load_avg_1m={os.getloadavg()[0]:.1f} territory={'yes' if territory else 'no'}")
    print(f"cpu per report: api_server_ms={spent['api'] * 1000 / total:.2f} "
          f"postgres_ms={spent['postgres'] * 1000 / total:.2f} client_ms={spent['client'] * 1000 / total:.2f}")
    print(f"group commits: {batches} batches of {batched / batches if batches else 0:.1f} reports on average "
          "(ingest.reports.writer)")
    print(f"closed loop ({clients} clients, each waiting for its answer): reports_per_s={len(latencies) / seconds:.0f} "
          f"p50_ms={p50:.1f} p99_ms={p99:.1f}")
    if opened is None:
        return 0
    open_latencies, open_errors, sent_rate = opened
    if not open_latencies:
        print("open loop: no report was accepted", file=sys.stderr)
        return 1
    o50, o99 = _percentiles(open_latencies)
    print(f"open loop: {len(open_latencies)} accepted, {open_errors} failed, sent at {sent_rate:.0f}/s")
    print(f"open_rate={open_rate:g} open_p50_ms={o50:.1f} open_p99_ms={o99:.1f} "
          f"reports_per_s={len(latencies) / seconds:.0f}")
    return 0 if open_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
