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
Until 2026-12-05 only the floor had two runs, which charged the noise to the product alone. bench.cpu_ratio
keeps both stacks up and switches the load between them every 2 s, which is the figure to judge that ratio
by. The database is ANALYZEd after the warm-up, as a running server's would be (see `stacks.analyze`).

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
import time
import uuid

import psycopg

from bench import cpu
from bench.db import admin_url, drop_database, fresh_or_skip
from bench.http_load import free_port
from tocsin import heap
from bench.latency import stacks
from bench.latency.load import Arrivals, percentile, stop_all, wait_for

DB_NAME = f"tocsin_bench_latency_{os.getpid()}"
RATES = ((50, 10.0), (100, 10.0), (200, 10.0))  # reports per second, seconds (BENCH_RATES="5,50" overrides the rates)


def _relay_probe(url: str, *, rate: float, seconds: float) -> dict[str, float]:
    """Commit outbox events straight into the database on a schedule; returns {event_id: committed_at}.

    This isolates the dispatcher: NOTIFY wake-up, claim, publish, PUBACK, mark published. Its events copy
    the run's last `opened` one (not bench.history's, whose payloads are empty).
    """
    dsn = admin_url(url)
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
        key, env, prefix = stacks.site(url)
        port = free_port()
        if with_floor:  # the floor at the last rate before the product too: see the module docstring
            stacks.analyze(url, vacuum=True)  # the history just written: autovacuum's pass would be charged to this run
            stacks.floor_runs(url, env, settings.mqtt_url, prefix, rates[-1:], 0, cpu_ms, label="floor before")
        procs = stacks.start_product(env, port)
        base = f"http://127.0.0.1:{port}"
        arrivals = Arrivals(settings.mqtt_url, f"{prefix}/alerts/#")
        heap.freeze()  # the subscriber timestamps arrivals: a full GC pass here would show as latency
        results = stacks.product_runs(url, base, key, procs, arrivals, rates, 0, cpu_ms, idle=idle)
        first = 100 + sum(int(rate * seconds) for rate, seconds in rates)  # the cells it used, and its warm-up's
        committed = _relay_probe(url, rate=200, seconds=5)
        wait_for(arrivals, committed, floor=True)
        relay_ms = [(arrivals.by_event[e] - t) * 1000 for e, t in committed.items() if e in arrivals.by_event]
        stop_all(procs)
        if with_floor:
            floors = stacks.floor_runs(url, env, settings.mqtt_url, prefix, rates, 0, cpu_ms,  # cells reused: no alerts
                                 idle=idle)
            # The product again at the last rate, on cells of its own (each report opens an alert): its CPU
            # is the lesser of two runs too, as the floor's is.
            procs = stacks.start_product(env, port := free_port())
            again = stacks.product_runs(url, f"http://127.0.0.1:{port}", key, procs, arrivals, rates[-1:], first, cpu_ms,
                                  label="product again")
    finally:
        stop_all(procs)
        if arrivals is not None:  # after the relay stopped: its last word is a retained status
            arrivals.clear_retained(stacks.retained_topics(prefix))
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
        print(cpu.line(f"idle_cpu_ms_per_s {what} ({stacks.IDLE_S:g} s, no report):", ms)
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
