"""End-to-end latency: utility report POSTed -> alert event received on MQTT, at 50/s and at 200/s.

A fresh database on the local PostGIS gets a `grid` layer of 4,200 small zones and one rule that
opens a critical alert on a single gas-leak report (immediate). A real API server (`tocsin serve
--workers 2`, uvicorn; BENCH_API_WORKERS overrides) and a real dispatcher (`tocsin worker --roles
relay`, with `--roles sms,sweeper` in a second process, as README.md suggests for a busy site) run
as subprocesses on the local services. Reports are posted on a fixed schedule (open loop, each into
its own zone, so each opens one alert); a subscriber timestamps the `opened` events. Latency runs
from just before the POST is sent to the MQTT message's arrival, so it includes the HTTP request.
Prints `e2e_p50_ms=<x> e2e_p99_ms=<y> rate=<r>` per rate, 200/s last. Goal: p99 <= 50 ms at 200/s.
Before those, per rate: the rate actually sustained, missing events (must be 0), and the server-side
latency (from the alert's `opened_at`, the `now` the API took when it began the report, to arrival).
When the API cannot keep up with the schedule, requests queue and e2e latency grows with the run.

Then the same schedule runs against the stack's floor (bench.latency.floor: FastAPI, one PostgreSQL
transaction that finds the zone and writes an outbox row, a LISTEN/NOTIFY relay publishing at QoS 1),
on the same grid and subscriber, with the product's processes stopped: `floor_e2e_p50_ms=
floor_e2e_p99_ms= rate=` per rate, printed before the product's lines. BENCH_FLOOR=0 skips it. The
database is ANALYZEd after the warm-up, as a running server's would be (see `_analyze`).

For each rate and for both, the CPU each process group spent per report (bench.cpu: the API with its
workers, the relay, the SMS planner and sweeper, every PostgreSQL process, Mosquitto, and this load
generator with its subscriber): `cpu_ms_per_report product rate=50: api= relay= ... total=`, then
`cpu per report at 50/s: product X ms, floor Y ms`. Two cores give 10 ms of CPU per report at 200/s,
all of it; that figure says how far the product is from the rate, whatever the machine's noise.

Run: .venv/bin/python -m bench.latency
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg

from bench import cpu
from bench.db import bench_database, drop_database
from bench.http_load import free_port

DB_NAME = f"tocsin_bench_latency_{os.getpid()}"
WEST, SOUTH, EAST, NORTH = -74.25, 40.50, -73.70, 40.90
COLS, ROWS = 60, 70  # one cell per report: 100 warm-up + 500 + 1,000 + 2,000 = 3,600 cells
RATES = ((50, 10.0), (100, 10.0), (200, 10.0))  # reports per second, seconds (BENCH_RATES="5,50" overrides the rates)
API_WORKERS = int(os.environ.get("BENCH_API_WORKERS", "2"))  # `tocsin serve --workers`: one per core
REPO = Path(__file__).resolve().parents[2]
RULES = """rules:
  - name: bench_gas_leak
    categories: [gas_leak]
    sources: [utility_report]
    layer: grid
    immediate: true
    severity: critical
"""


def _cell(i: int) -> tuple[float, float, float, float]:
    w, h = (EAST - WEST) / COLS, (NORTH - SOUTH) / ROWS
    col, row = i % COLS, i // COLS
    return WEST + col * w, SOUTH + row * h, WEST + (col + 1) * w, SOUTH + (row + 1) * h


def _setup(url: str) -> str:
    """Migrate, load the grid, create a utility; returns its API key."""
    from shapely.geometry import MultiPolygon, box

    from db import migrate
    from db.session import make_engine, make_sessionmaker, transaction
    from geo import service as zone_service
    from geo.zones import ZoneRecord
    from ingest import keys
    from tocsin import models_registry

    migrate.upgrade(url)
    models_registry.load()
    engine = make_engine(url, pool_size=1)
    with transaction(make_sessionmaker(engine)) as session:
        zone_service.upsert_zones(session, layer="grid", records=[
            ZoneRecord(code=f"G{i}", name=f"Cell {i}", geometry=MultiPolygon([box(*_cell(i))]), properties={})
            for i in range(COLS * ROWS)])
        utility = keys.add_utility(session, name="Bench Power")
        key = keys.issue_key(session, role="utility", utility_id=utility.id)
    engine.dispose()
    return key


class Arrivals:
    """A QoS 1 subscriber recording when each alert's `opened` event arrived (wall clock)."""

    def __init__(self, mqtt_url: str, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.at: dict[int, float] = {}
        self.dispatch_ms: dict[int, float] = {}  # the API's `now` for the report -> arrival
        self.by_event: dict[str, float] = {}  # event_id -> arrival, for the relay-only probe
        self._ready = threading.Event()
        u = urlparse(mqtt_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, ud, fl, rc, pr: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(u.hostname, u.port or 1883)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError(f"could not subscribe on {mqtt_url}")

    def _on_message(self, client, userdata, msg) -> None:
        now = time.time()
        event = json.loads(msg.payload)
        self.by_event.setdefault(event.get("event_id", ""), now)
        if event.get("kind") == "opened" and event["alert_id"] not in self.at:
            self.at[event["alert_id"]] = now
            opened = datetime.fromisoformat(event["opened_at"]).timestamp()
            self.dispatch_ms[event["alert_id"]] = (now - opened) * 1000

    def clear_retained(self, topics: list[str]) -> None:
        """Publish an empty retained message to each topic: the broker forgets what the run left there.

        Every run writes a retained zone state per cell under its own prefix; left behind, they pile up
        in Mosquitto's persistence file, which it rewrites every second (36 MB here after a day of runs,
        a 150 ms stall every other second for later runs)."""
        infos = [self.client.publish(t, b"", qos=1, retain=True) for t in topics]
        for info in infos:
            info.wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _post_schedule(base: str, key: str, *, first_cell: int, rate: float, seconds: float,
                   connections: int = 32, floor: bool = False) -> tuple[dict[Any, float], int, float]:
    """POST one report per cell on an open-loop schedule; returns ({alert_id: sent_at}, failures, achieved rate).

    `floor`: the reports go to bench.latency.floor's API and are keyed by the event_id they carry.

    One asyncio thread sends them (bench.http_load, up to `connections` at once): the load generator
    shares the two cores with what it measures, so it must cost little (httpx cost ~9 ms CPU a POST)."""
    import asyncio

    from bench.http_load import Pool

    n = int(rate * seconds)
    sent: dict[int, float] = {}
    failures = [0]

    async def one(pool: Pool, i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        west, south, east, north = _cell(first_cell + i)
        feature = {"type": "Feature",
                   "geometry": {"type": "Point", "coordinates": [(west + east) / 2, (south + north) / 2]},
                   "properties": {"external_id": f"lat-{first_cell + i}", "category": "gas_leak"}}
        if floor:
            feature["properties"]["event_id"] = str(uuid.uuid4())
        t = time.time()
        try:
            r = await pool.post("/v1/reports", json=feature)
        except OSError as exc:
            r, why = None, f"{type(exc).__name__}: {exc}"
        if r is not None and r.status_code == 201 and floor:
            sent[feature["properties"]["event_id"]] = t
            return
        if r is not None and r.status_code == 201 and r.json().get("alerts_changed"):
            sent[r.json()["alerts_changed"][0]] = t
            return
        failures[0] += 1
        if failures[0] <= 3:
            print(f"  failed post: {why if r is None else f'{r.status_code} {r.text[:200]}'}", flush=True)

    async def run() -> float:
        pool = Pool(base, size=connections, headers={"Authorization": f"Bearer {key}"})
        start = time.monotonic() + 0.2
        await asyncio.gather(*(one(pool, i, start + i / rate) for i in range(n)))
        await pool.aclose()
        return time.monotonic() - start

    elapsed = asyncio.run(run())
    return sent, failures[0], n / max(elapsed, 1e-9)


def _relay_probe(url: str, *, rate: float, seconds: float) -> dict[str, float]:
    """Commit outbox events straight into the database on a schedule; returns {event_id: committed_at}.

    This isolates the dispatcher: NOTIFY wake-up, claim, publish, PUBACK, mark published.
    """
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    committed: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        alert_id, payload = conn.execute(
            "SELECT alert_id, payload FROM outbox_events WHERE kind = 'opened' ORDER BY id LIMIT 1").fetchone()
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            event_id = str(uuid.uuid4())
            body = json.dumps({**payload, "event_id": event_id, "kind": "updated", "reason": "bench"})
            conn.execute("INSERT INTO outbox_events (event_id, alert_id, kind, payload, next_attempt_at, created_at) "
                         "VALUES (%s, %s, 'updated', %s, now(), now())", (event_id, alert_id, body))
            committed[event_id] = time.time()
    return committed


def _analyze(url: str) -> None:
    """Statistics for the tables the warm-up wrote, as a running server's database has them.

    A fresh database has none until autovacuum looks (up to a minute): the planner then takes alerts
    and the outbox for empty, and plans that last the run (generic plans are kept per connection)
    scan them whole as they grow."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute("ANALYZE")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _wait_http(base: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the API server exited during start-up")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API server did not start")


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def _wait_for(arrivals: "Arrivals", keys: Any, *, floor: bool, timeout_s: float = 15) -> None:
    seen = arrivals.by_event if floor else arrivals.at
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(k in seen for k in keys):
        time.sleep(0.05)


def _cpu_groups(ours: dict[str, int]) -> cpu.Groups | None:
    """Our processes (with their children: uvicorn's workers), PostgreSQL, Mosquitto and this load generator
    (with its subscriber)."""
    if not cpu.available():
        return None
    roots = {name: (lambda pid=pid: [pid]) for name, pid in ours.items()}
    return cpu.Groups({**roots, "postgres": "postgres", "mosquitto": "mosquitto", "load": lambda: [os.getpid()]},
                      trees=ours)


def _floor_runs(url: str, env: dict[str, str], mqtt_url: str, prefix: str, rates: tuple[tuple[int, float], ...],
                first: int, cpu_ms: dict) -> list[tuple[int, list[float], int, int, float]]:
    """The same schedule against bench.latency.floor (the stack's least report -> MQTT path)."""
    from bench.latency import floor

    floor.create_schema(url.replace("postgresql+psycopg://", "postgresql://", 1))
    port = free_port()
    env = {**env, "TOCSIN_MQTT_URL": mqtt_url}
    procs = [subprocess.Popen([sys.executable, "-m", "bench.latency.floor", "api", str(port)], env=env, cwd=REPO),
             subprocess.Popen([sys.executable, "-m", "bench.latency.floor", "relay"], env=env, cwd=REPO)]
    arrivals = None
    out = []
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(base, procs[0])
        arrivals = Arrivals(mqtt_url, f"{prefix}/floor")
        _post_schedule(base, "", first_cell=first, rate=50, seconds=2, floor=True)  # warm-up
        first += 100
        groups = _cpu_groups({"api": procs[0].pid, "relay": procs[1].pid})
        for rate, seconds in rates:
            if groups:
                groups.start()
            sent, failures, achieved = _post_schedule(base, "", first_cell=first, rate=rate, seconds=seconds,
                                                      floor=True)
            first += int(rate * seconds)
            _wait_for(arrivals, sent, floor=True)
            if groups:
                cpu_ms[("floor", rate)] = cpu.per_item_ms(groups.stop(), int(rate * seconds))
            latencies = [(arrivals.by_event[e] - t) * 1000 for e, t in sent.items() if e in arrivals.by_event]
            out.append((rate, latencies, len(sent) - len(latencies), failures, achieved))
    finally:
        _stop(procs)
        if arrivals is not None:
            arrivals.close()
    return out


def main() -> int:
    from tocsin.settings import Settings

    settings = Settings()
    try:
        url = bench_database(settings.database_url, DB_NAME, fresh=True, migrate=False)
    except psycopg.OperationalError as exc:
        print(f"skipped: PostgreSQL is not reachable ({exc})")
        return 0
    procs: list[subprocess.Popen] = []
    arrivals = None
    results = []
    relay_ms: list[float] = []
    committed: dict[str, float] = {}
    floors: list[tuple[int, list[float], int, int, float]] = []
    cpu_ms: dict[tuple[str, int], dict[str, float]] = {}  # (product | floor, rate) -> group -> ms per report
    rates = RATES
    if os.environ.get("BENCH_RATES"):
        rates = tuple((int(r), 10.0) for r in os.environ["BENCH_RATES"].split(","))
    try:
        key = _setup(url)
        rules = Path(tempfile.mkdtemp()) / "rules.yaml"
        rules.write_text(RULES)
        prefix = f"bench/{uuid.uuid4().hex[:8]}/tocsin/v1"
        port = free_port()
        env = {**os.environ, "TOCSIN_DATABASE_URL": url, "TOCSIN_RULES_FILE": str(rules),
               "TOCSIN_MQTT_TOPIC_PREFIX": prefix, "TOCSIN_MQTT_CLIENT_ID": f"bench-relay-{uuid.uuid4().hex[:6]}",
               "TOCSIN_RATE_LIMIT_PER_MIN": "0", "TOCSIN_LOG_LEVEL": "WARNING", "TOCSIN_WARM_POST_CACHES": "false",
               **({"TOCSIN_SWEEP_INTERVAL_S": os.environ["SWEEP"]} if os.environ.get("SWEEP") else {})}
        procs.append(subprocess.Popen([sys.executable, "-m", "tocsin.cli", "serve", "--port", str(port),
                                       "--workers", str(API_WORKERS)], env=env, cwd=REPO))
        # The deployment README.md describes for a busy site: the relay in a process of its own.
        procs.append(subprocess.Popen([sys.executable, "-m", "tocsin.cli", "worker", "--roles", "relay"],
                                      env=env, cwd=REPO))
        procs.append(subprocess.Popen([sys.executable, "-m", "tocsin.cli", "worker", "--roles", "sms,sweeper"],
                                      env={**env, "TOCSIN_MQTT_CLIENT_ID": env["TOCSIN_MQTT_CLIENT_ID"] + "-b"},
                                      cwd=REPO))
        base = f"http://127.0.0.1:{port}"
        _wait_http(base, procs[0])
        arrivals = Arrivals(settings.mqtt_url, f"{prefix}/alerts/#")
        _post_schedule(base, key, first_cell=0, rate=50, seconds=2)  # warm-up: connections, prepared plans
        _analyze(url)
        first = 100
        groups = _cpu_groups({"api": procs[0].pid, "relay": procs[1].pid, "sms_sweeper": procs[2].pid})
        for rate, seconds in rates:
            if groups:
                groups.start()
            sent, failures, achieved = _post_schedule(base, key, first_cell=first, rate=rate, seconds=seconds)
            first += int(rate * seconds)
            _wait_for(arrivals, sent, floor=False)
            if groups:
                cpu_ms[("product", rate)] = cpu.per_item_ms(groups.stop(), int(rate * seconds))
            latencies = [(arrivals.at[a] - t) * 1000 for a, t in sent.items() if a in arrivals.at]
            dispatch = [arrivals.dispatch_ms[a] for a in sent if a in arrivals.dispatch_ms]
            missing = sum(1 for a in sent if a not in arrivals.at)
            results.append((rate, latencies, missing, failures, achieved, dispatch))
        committed = _relay_probe(url, rate=200, seconds=5)
        _wait_for(arrivals, committed, floor=True)
        relay_ms = [(arrivals.by_event[e] - t) * 1000 for e, t in committed.items() if e in arrivals.by_event]
        _stop(procs)
        if os.environ.get("BENCH_FLOOR", "1") != "0":
            floors = _floor_runs(url, env, settings.mqtt_url, prefix, rates, 0, cpu_ms)  # cells reused: no alerts
    finally:
        _stop(procs)
        if arrivals is not None:  # after the relay stopped: its last word is a retained status
            arrivals.clear_retained([f"{prefix}/zones/grid/G{i}/state" for i in range(COLS * ROWS)]
                                    + [f"{prefix}/status"])
            arrivals.close()
        drop_database(settings.database_url, DB_NAME)
    ok = True
    for rate, latencies, missing, failures, achieved, dispatch in results:
        print(f"rate {rate}/s: posted at {achieved:.0f}/s, {len(latencies)} events timed, {missing} missing, "
              f"{failures} failed posts")
        if dispatch:
            print(f"  server side (alert's opened_at, taken when the API began the report -> MQTT arrival): "
                  f"p50_ms={_percentile(dispatch, 0.5):.1f} p99_ms={_percentile(dispatch, 0.99):.1f}")
        ok = ok and missing == 0 and failures == 0 and bool(latencies)
    if relay_ms:
        print(f"dispatcher only (outbox event committed -> MQTT arrival, 200/s for 5 s): "
              f"p50_ms={_percentile(relay_ms, 0.5):.1f} p99_ms={_percentile(relay_ms, 0.99):.1f} "
              f"missing={len(committed) - len(relay_ms)}")
    for (what, rate), ms in sorted(cpu_ms.items()):
        print(cpu.line(f"cpu_ms_per_report {what} rate={rate}:", ms))
    for rate, _seconds in rates:
        if ("product", rate) in cpu_ms and ("floor", rate) in cpu_ms:
            mine, least = (sum(cpu_ms[(w, rate)].values()) for w in ("product", "floor"))
            print(f"cpu per report at {rate}/s: product {mine:.1f} ms, floor {least:.1f} ms, "
                  f"floor/product={least / max(mine, 1e-9):.2f}")
    for rate, latencies, missing, failures, achieved in floors:
        print(f"floor rate {rate}/s: posted at {achieved:.0f}/s, {len(latencies)} events timed, {missing} missing, "
              f"{failures} failed posts")
    for rate, latencies, *_rest in floors:
        if latencies:
            print(f"floor_e2e_p50_ms={_percentile(latencies, 0.5):.1f} "
                  f"floor_e2e_p99_ms={_percentile(latencies, 0.99):.1f} rate={rate}")
    for rate, latencies, *_rest in results:
        if latencies:
            print(f"e2e_p50_ms={_percentile(latencies, 0.5):.1f} e2e_p99_ms={_percentile(latencies, 0.99):.1f} "
                  f"rate={rate}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
