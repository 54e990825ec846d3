"""End-to-end latency: utility report POSTed -> alert event received on MQTT, at 50/s and at 200/s.

A fresh database on the local PostGIS gets a `grid` layer of 6,000 small zones, a day of history (20,000
resolved alerts with their evidence and published events: bench.history says why) and one rule that
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
floor_e2e_p99_ms= rate=` per rate, printed before the product's lines. BENCH_FLOOR=0 skips it. The floor
also runs at the last rate before the product starts, and the product again after the floor (on cells of
its own, so that each of its reports still opens an alert: 5,700 of the grid's 6,000), and the CPU
comparison at that rate takes the lesser of each stack's two runs: noise only adds, to either. This host's
speed drifts by tens of percent within minutes (the same tree gave 4.8 and 8.3 ms per report within an
hour), and two runs of one stack differed by up to 60%: one run on one side would charge that to the ratio.
Until 2026-12-05 only the floor had two runs, which charged the noise to the product alone. The
database is ANALYZEd after the warm-up, as a running server's would be (see `_analyze`).

For each rate and for both, the CPU each process group spent per report (bench.cpu: the API with its
workers, the relay, the SMS planner and sweeper, every PostgreSQL process, Mosquitto, and this load
generator with its subscriber): `cpu_ms_per_report product rate=50: api= relay= ... total=`, then
`cpu per report at 50/s: product X ms, floor Y ms`. Two cores give 10 ms of CPU per report at 200/s,
all of it; that figure says how far the product is from the rate, whatever the machine's noise.
After the last rate each stack also sits idle for BENCH_IDLE_S (5; 0 skips it): `idle_cpu_ms_per_s
product` and `floor` say what it spends with no report coming (the sweeper's passes over the run's open
alerts, polls, heartbeats), and what that comes to per report at the last rate. It is part of the CPU per
report above, shared by every report of a run, so it weighs more at lower rates.

Run: .venv/bin/python -m bench.latency
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from bench import cpu, history
from bench.db import drop_database, fresh_or_skip
from bench.http_load import free_port, wait_workers
from tocsin import heap
from bench.latency.load import COLS, ROWS, Arrivals, percentile, post_schedule, stop_all, wait_for, wait_http
from bench.latency.site import RULES, setup

DB_NAME = f"tocsin_bench_latency_{os.getpid()}"
RATES = ((50, 10.0), (100, 10.0), (200, 10.0))  # reports per second, seconds (BENCH_RATES="5,50" overrides the rates)
API_WORKERS = int(os.environ.get("BENCH_API_WORKERS", "2"))  # `tocsin serve --workers`: one per core
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "5"))  # the idle stack's CPU, measured after the last rate (0: not)
REPO = Path(__file__).resolve().parents[2]
def _relay_probe(url: str, *, rate: float, seconds: float) -> dict[str, float]:
    """Commit outbox events straight into the database on a schedule; returns {event_id: committed_at}.

    This isolates the dispatcher: NOTIFY wake-up, claim, publish, PUBACK, mark published. Its events copy
    the run's last `opened` one (not bench.history's, whose payloads are empty).
    """
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    committed: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        alert_id, payload = conn.execute(
            "SELECT alert_id, payload FROM outbox_events WHERE kind = 'opened' ORDER BY id DESC LIMIT 1").fetchone()
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


def _analyze(url: str, *, vacuum: bool = False) -> None:
    """Statistics for the tables the warm-up wrote, as a running server's database has them.

    A fresh database has none until autovacuum looks (up to a minute): the planner then takes alerts
    and the outbox for empty, and plans that last the run (generic plans are kept per connection)
    scan them whole as they grow. The day of history `main` writes first (bench.history) is what makes
    them the index probes a running server's are."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")


def _cpu_groups(ours: dict[str, int]) -> cpu.Groups | None:
    """Our processes (with their children: uvicorn's workers), PostgreSQL, Mosquitto and this load generator
    (with its subscriber)."""
    if not cpu.available():
        return None
    roots = {name: (lambda pid=pid: [pid]) for name, pid in ours.items()}
    return cpu.Groups({**roots, "postgres": "postgres", "mosquitto": "mosquitto", "load": lambda: [os.getpid()]},
                      trees=ours)


def _idle(groups: cpu.Groups | None) -> dict[str, float] | None:
    """Each group's CPU in ms per second over IDLE_S seconds with no report posted, from a second after the
    last one: what the stack spends whatever the rate (sweeper passes over the open alerts, polls, heartbeats),
    which every report of a run shares."""
    if groups is None or IDLE_S <= 0:
        return None
    time.sleep(1.0)
    groups.start()
    time.sleep(IDLE_S)
    return {g: v * 1000 / IDLE_S for g, v in groups.stop().items()}


def _timed_rates(base: str, key: str, arrivals: Arrivals, rates: tuple[tuple[int, float], ...], first: int,
                 groups: cpu.Groups | None, cpu_ms: dict, label: str, *, floor: bool = False
                 ) -> Iterator[tuple[int, dict[Any, float], int, float]]:
    """Each rate's schedule, one cell per report from `first`, waited out until its events arrived; its CPU per
    report goes into `cpu_ms` under (label, rate). Yields (rate, {key: sent_at}, failures, achieved rate)."""
    for rate, seconds in rates:
        if groups:
            groups.start()
        sent, failures, achieved = post_schedule(base, key, first_cell=first, rate=rate, seconds=seconds,
                                                  floor=floor)
        first += int(rate * seconds)
        wait_for(arrivals, sent, floor=floor)
        if groups:
            cpu_ms[(label, rate)] = cpu.per_item_ms(groups.stop(), int(rate * seconds))
        yield rate, sent, failures, achieved


def _floor_runs(url: str, env: dict[str, str], mqtt_url: str, prefix: str, rates: tuple[tuple[int, float], ...],
                first: int, cpu_ms: dict, *, label: str = "floor",
                idle: dict | None = None) -> list[tuple[int, list[float], int, int, float]]:
    """The same schedule against bench.latency.floor (the stack's least report -> MQTT path); its CPU per report
    goes into `cpu_ms` under (label, rate), and its idle CPU (`_idle`) into `idle` under label, if given."""
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
        wait_http(base, procs[0])
        wait_workers(base, API_WORKERS, path="/healthz")  # every worker up before the load's connections open
        arrivals = Arrivals(mqtt_url, f"{prefix}/floor")
        post_schedule(base, "", first_cell=first, rate=50, seconds=2, floor=True)  # warm-up
        first += 100
        groups = _cpu_groups({"api": procs[0].pid, "relay": procs[1].pid})
        for rate, sent, failures, achieved in _timed_rates(base, "", arrivals, rates, first, groups, cpu_ms, label,
                                                          floor=True):
            latencies = [(arrivals.by_event[e] - t) * 1000 for e, t in sent.items() if e in arrivals.by_event]
            out.append((rate, latencies, len(sent) - len(latencies), failures, achieved))
        if idle is not None and (ms := _idle(groups)) is not None:
            idle[label] = ms
    finally:
        stop_all(procs)
        if arrivals is not None:
            arrivals.close()
    return out


def _start_product(env: dict[str, str], port: int) -> list[subprocess.Popen]:
    """The API (`tocsin serve`), the relay in a process of its own and the SMS planner with the sweeper in a
    third: the deployment README.md describes for a busy site."""
    procs = [subprocess.Popen([sys.executable, "-m", "tocsin.cli", "serve", "--port", str(port),
                               "--workers", str(API_WORKERS)], env=env, cwd=REPO),
             subprocess.Popen([sys.executable, "-m", "tocsin.cli", "worker", "--roles", "relay"], env=env, cwd=REPO),
             subprocess.Popen([sys.executable, "-m", "tocsin.cli", "worker", "--roles", "sms,sweeper"],
                              env={**env, "TOCSIN_MQTT_CLIENT_ID": env["TOCSIN_MQTT_CLIENT_ID"] + "-b"}, cwd=REPO)]
    base = f"http://127.0.0.1:{port}"
    wait_http(base, procs[0])
    wait_workers(base, API_WORKERS)  # every worker up before the load's connections open
    return procs


def _product_runs(url: str, base: str, key: str, procs: list[subprocess.Popen], arrivals: Arrivals,
                  rates: tuple[tuple[int, float], ...], first: int, cpu_ms: dict, *, label: str = "product",
                  idle: dict | None = None) -> list[tuple[int, list[float], int, int, float, list[float]]]:
    """The schedule against the product, one cell per report from `first` (a warm-up of 100 first); its CPU per
    report goes into `cpu_ms` under (label, rate), its idle CPU into `idle` under label, if given."""
    post_schedule(base, key, first_cell=first, rate=50, seconds=2)  # warm-up: connections, prepared plans
    _analyze(url)
    first += 100
    results = []
    groups = _cpu_groups({"api": procs[0].pid, "relay": procs[1].pid, "sms_sweeper": procs[2].pid})
    for rate, sent, failures, achieved in _timed_rates(base, key, arrivals, rates, first, groups, cpu_ms, label):
        latencies = [(arrivals.at[a] - t) * 1000 for a, t in sent.items() if a in arrivals.at]
        dispatch = [arrivals.dispatch_ms[a] for a in sent if a in arrivals.dispatch_ms]
        missing = sum(1 for a in sent if a not in arrivals.at)
        results.append((rate, latencies, missing, failures, achieved, dispatch))
    if idle is not None and (ms := _idle(groups)) is not None:
        idle[label] = ms
    return results


def _least(cpu_ms: dict, rate: int, runs: tuple[str, str]) -> tuple[float, str]:
    """The lesser total CPU per report of a stack's runs at `rate` (the noise of a shared host only adds), and
    both, in words, when it had two."""
    totals = [sum(cpu_ms[(run, rate)].values()) for run in runs if (run, rate) in cpu_ms]
    return min(totals), (f" (runs {totals[0]:.1f} and {totals[1]:.1f})" if len(totals) == 2 else "")


def main() -> int:
    from tocsin.settings import Settings

    settings = Settings()
    if (url := fresh_or_skip(settings.database_url, DB_NAME)) is None:
        return 0
    procs: list[subprocess.Popen] = []
    arrivals = None
    results = []
    relay_ms: list[float] = []
    committed: dict[str, float] = {}
    floors: list[tuple[int, list[float], int, int, float]] = []
    again: list[tuple[int, list[float], int, int, float, list[float]]] = []
    cpu_ms: dict[tuple[str, int], dict[str, float]] = {}  # (a run's label, rate) -> group -> ms
    idle: dict[str, dict[str, float]] = {}  # product | floor -> group -> ms of CPU per second, no report posted
    rates = RATES
    with_floor = os.environ.get("BENCH_FLOOR", "1") != "0"
    if os.environ.get("BENCH_RATES"):
        rates = tuple((int(r), 10.0) for r in os.environ["BENCH_RATES"].split(","))
    try:
        key = setup(url)
        history.seed(url, rule="bench_gas_leak", category="gas_leak")  # a running server's tables, not empty ones
        rules = Path(tempfile.mkdtemp()) / "rules.yaml"
        rules.write_text(RULES)
        prefix = f"bench/{uuid.uuid4().hex[:8]}/tocsin/v1"
        port = free_port()
        env = {**os.environ, "TOCSIN_DATABASE_URL": url, "TOCSIN_RULES_FILE": str(rules),
               "TOCSIN_MQTT_TOPIC_PREFIX": prefix, "TOCSIN_MQTT_CLIENT_ID": f"bench-relay-{uuid.uuid4().hex[:6]}",
               "TOCSIN_RATE_LIMIT_PER_MIN": "0", "TOCSIN_LOG_LEVEL": "WARNING", "TOCSIN_WARM_POST_CACHES": "false",
               **({"TOCSIN_SWEEP_INTERVAL_S": os.environ["SWEEP"]} if os.environ.get("SWEEP") else {})}
        if with_floor:  # the floor at the last rate before the product too: see the module docstring
            _analyze(url, vacuum=True)  # the history just written: autovacuum's pass would be charged to this run
            _floor_runs(url, env, settings.mqtt_url, prefix, rates[-1:], 0, cpu_ms, label="floor before")
        procs = _start_product(env, port)
        base = f"http://127.0.0.1:{port}"
        arrivals = Arrivals(settings.mqtt_url, f"{prefix}/alerts/#")
        heap.freeze()  # the subscriber timestamps arrivals: a full GC pass here would show as latency
        results = _product_runs(url, base, key, procs, arrivals, rates, 0, cpu_ms, idle=idle)
        first = 100 + sum(int(rate * seconds) for rate, seconds in rates)  # the cells it used, and its warm-up's
        committed = _relay_probe(url, rate=200, seconds=5)
        wait_for(arrivals, committed, floor=True)
        relay_ms = [(arrivals.by_event[e] - t) * 1000 for e, t in committed.items() if e in arrivals.by_event]
        stop_all(procs)
        if with_floor:
            floors = _floor_runs(url, env, settings.mqtt_url, prefix, rates, 0, cpu_ms,  # cells reused: no alerts
                                 idle=idle)
            # The product again at the last rate, on cells of its own (each report opens an alert): its CPU
            # is the lesser of two runs too, as the floor's is.
            procs = _start_product(env, port := free_port())
            again = _product_runs(url, f"http://127.0.0.1:{port}", key, procs, arrivals, rates[-1:], first, cpu_ms,
                                  label="product again")
    finally:
        stop_all(procs)
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
                  f"p50_ms={percentile(dispatch, 0.5):.1f} p99_ms={percentile(dispatch, 0.99):.1f}")
        ok = ok and missing == 0 and failures == 0 and bool(latencies)
    if relay_ms:
        print(f"dispatcher only (outbox event committed -> MQTT arrival, 200/s for 5 s): "
              f"p50_ms={percentile(relay_ms, 0.5):.1f} p99_ms={percentile(relay_ms, 0.99):.1f} "
              f"missing={len(committed) - len(relay_ms)}")
    elif committed:  # say so, rather than leave the line out
        print(f"dispatcher only: none of its {len(committed)} events arrived (see the relay's log above)")
        ok = False
    for (what, rate), ms in sorted(cpu_ms.items()):
        print(cpu.line(f"cpu_ms_per_report {what} rate={rate}:", ms))
    for what, ms in idle.items():
        print(cpu.line(f"idle_cpu_ms_per_s {what} ({IDLE_S:g} s, no report):", ms)
              + f" (at {rates[-1][0]}/s: {sum(ms.values()) / rates[-1][0]:.2f} ms per report)")
    for rate, _seconds in rates:
        if ("product", rate) in cpu_ms and ("floor", rate) in cpu_ms:
            # Each the lesser of its runs where it has two (the last rate: floor, product, floor, product).
            mine, least = (_least(cpu_ms, rate, runs) for runs in (("product", "product again"),
                                                                      ("floor before", "floor")))
            print(f"cpu per report at {rate}/s: product {mine[0]:.1f} ms{mine[1]}, floor {least[0]:.1f} ms{least[1]}, "
                  f"floor/product={least[0] / max(mine[0], 1e-9):.2f}")
    for rate, latencies, missing, failures, achieved in floors:
        print(f"floor rate {rate}/s: posted at {achieved:.0f}/s, {len(latencies)} events timed, {missing} missing, "
              f"{failures} failed posts")
    for rate, latencies, *_rest in floors:
        if latencies:
            print(f"floor_e2e_p50_ms={percentile(latencies, 0.5):.1f} "
                  f"floor_e2e_p99_ms={percentile(latencies, 0.99):.1f} rate={rate}")
    for rate, latencies, missing, failures, *_rest in again:
        ok = ok and missing == 0 and failures == 0 and bool(latencies)
        if latencies:
            print(f"again_e2e_p50_ms={percentile(latencies, 0.5):.1f} again_e2e_p99_ms="
                  f"{percentile(latencies, 0.99):.1f} rate={rate} (the product's second run, {missing} missing)")
    for rate, latencies, *_rest in results:
        if latencies:
            print(f"e2e_p50_ms={percentile(latencies, 0.5):.1f} e2e_p99_ms={percentile(latencies, 0.99):.1f} "
                  f"rate={rate}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
