"""The two stacks bench.latency and bench.cpu_ratio run on one site: the product (`tocsin serve` with its
workers, the relay, the SMS planner with the sweeper) and its floor (bench.latency.floor), each started, warmed
up, driven at a schedule of rates and stopped, with the CPU each process group spent per report."""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from bench import cpu, history
from bench.db import admin_url
from bench.http_load import free_port, wait_workers
from bench.latency.load import COLS, ROWS, Arrivals, post_schedule, stop_all, wait_for, wait_http
from bench.latency.site import RULES, setup

API_WORKERS = int(os.environ.get("BENCH_API_WORKERS", "2"))  # `tocsin serve --workers`: one per core
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "5"))  # the idle stack's CPU, measured after the last rate (0: not)
REPO = Path(__file__).resolve().parents[2]


def site(url: str) -> tuple[str, dict[str, str], str]:
    """The site both stacks run on (bench.latency.site: the grid, a utility's key, the rule) with a day of history
    (bench.history); returns the key, the environment both stacks run in (the site's database, its rules file,
    a topic prefix of the run's own; SWEEP sets the sweeper's interval) and that prefix."""
    key = setup(url)
    history.seed(url, rule="bench_gas_leak", category="gas_leak")  # a running server's tables, not empty ones
    rules = Path(tempfile.mkdtemp()) / "rules.yaml"
    rules.write_text(RULES)
    prefix = f"bench/{uuid.uuid4().hex[:8]}/tocsin/v1"
    env = {**os.environ, "TOCSIN_DATABASE_URL": url, "TOCSIN_RULES_FILE": str(rules),
           "TOCSIN_MQTT_TOPIC_PREFIX": prefix, "TOCSIN_MQTT_CLIENT_ID": f"bench-relay-{uuid.uuid4().hex[:6]}",
           "TOCSIN_RATE_LIMIT_PER_MIN": "0", "TOCSIN_LOG_LEVEL": "WARNING", "TOCSIN_WARM_POST_CACHES": "false",
           **({"TOCSIN_SWEEP_INTERVAL_S": os.environ["SWEEP"]} if os.environ.get("SWEEP") else {})}
    return key, env, prefix


def analyze(url: str, *, vacuum: bool = False) -> None:
    """Statistics for the tables the warm-up wrote, as a running server's database has them.

    A fresh database has none until autovacuum looks (up to a minute): the planner then takes alerts
    and the outbox for empty, and plans that last the run (generic plans are kept per connection)
    scan them whole as they grow. The day of history `main` writes first (bench.history) is what makes
    them the index probes a running server's are."""
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")


def cpu_groups(ours: dict[str, int], extra: dict[str, Callable[[], Iterable[int]]] | None = None
               ) -> cpu.Groups | None:
    """Our processes (with their children: uvicorn's workers), PostgreSQL, Mosquitto and this load generator
    (with its subscriber); `extra`: more groups, each by the pids it has when read."""
    if not cpu.available():
        return None
    roots = {name: (lambda pid=pid: [pid]) for name, pid in ours.items()}
    return cpu.Groups({**roots, **(extra or {}), "postgres": "postgres", "mosquitto": "mosquitto",
                       "load": lambda: [os.getpid()]}, trees=ours)


def retained_topics(prefix: str) -> list[str]:
    """What a product run leaves retained under its topic prefix: each grid cell's zone state and the relay's
    status (for `Arrivals.clear_retained`, after the relay stopped)."""
    return [f"{prefix}/zones/grid/G{i}/state" for i in range(COLS * ROWS)] + [f"{prefix}/status"]


def idle_cpu(groups: cpu.Groups | None) -> dict[str, float] | None:
    """Each group's CPU in ms per second over IDLE_S seconds with no report posted, from a second after the
    last one: what the stack spends whatever the rate (sweeper passes over the open alerts, polls, heartbeats),
    which every report of a run shares."""
    if groups is None or IDLE_S <= 0:
        return None
    time.sleep(1.0)
    groups.start()
    time.sleep(IDLE_S)
    return {g: v * 1000 / IDLE_S for g, v in groups.stop().items()}


def timed_rates(base: str, key: str, arrivals: Arrivals, rates: tuple[tuple[int, float], ...], first: int,
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


def floor_runs(url: str, env: dict[str, str], mqtt_url: str, prefix: str, rates: tuple[tuple[int, float], ...],
                first: int, cpu_ms: dict, *, label: str = "floor",
                idle: dict | None = None) -> list[tuple[int, list[float], int, int, float]]:
    """The same schedule against bench.latency.floor (the stack's least report -> MQTT path); its CPU per report
    goes into `cpu_ms` under (label, rate), and its idle CPU (`idle_cpu`) into `idle` under label, if given."""
    port = free_port()
    procs = start_floor(url, {**env, "TOCSIN_MQTT_URL": mqtt_url}, port)
    arrivals = None
    out = []
    try:
        base = f"http://127.0.0.1:{port}"
        arrivals = Arrivals(mqtt_url, f"{prefix}/floor")
        post_schedule(base, "", first_cell=first, rate=50, seconds=2, floor=True)  # warm-up
        first += 100
        groups = cpu_groups({"api": procs[0].pid, "relay": procs[1].pid})
        for rate, sent, failures, achieved in timed_rates(base, "", arrivals, rates, first, groups, cpu_ms, label,
                                                          floor=True):
            latencies = [(arrivals.by_event[e] - t) * 1000 for e, t in sent.items() if e in arrivals.by_event]
            out.append((rate, latencies, len(sent) - len(latencies), failures, achieved))
        if idle is not None and (ms := idle_cpu(groups)) is not None:
            idle[label] = ms
    finally:
        stop_all(procs)
        if arrivals is not None:
            arrivals.close()
    return out


def start_floor(url: str, env: dict[str, str], port: int) -> list[subprocess.Popen]:
    """bench.latency.floor's API (BENCH_API_WORKERS processes) and its relay, on the database at `url` (its
    outbox table created there), up and answering."""
    from bench.latency import floor

    floor.create_schema(admin_url(url))
    procs = [subprocess.Popen([sys.executable, "-m", "bench.latency.floor", "api", str(port)], env=env, cwd=REPO),
             subprocess.Popen([sys.executable, "-m", "bench.latency.floor", "relay"], env=env, cwd=REPO)]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base, procs[0])
        wait_workers(base, API_WORKERS, path="/healthz")  # every worker up before the load's connections open
    except BaseException:
        stop_all(procs)
        raise
    return procs


def start_product(env: dict[str, str], port: int) -> list[subprocess.Popen]:
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


def product_runs(url: str, base: str, key: str, procs: list[subprocess.Popen], arrivals: Arrivals,
                  rates: tuple[tuple[int, float], ...], first: int, cpu_ms: dict, *, label: str = "product",
                  idle: dict | None = None) -> list[tuple[int, list[float], int, int, float, list[float]]]:
    """The schedule against the product, one cell per report from `first` (a warm-up of 100 first); its CPU per
    report goes into `cpu_ms` under (label, rate), its idle CPU into `idle` under label, if given."""
    post_schedule(base, key, first_cell=first, rate=50, seconds=2)  # warm-up: connections, prepared plans
    analyze(url)
    first += 100
    results = []
    groups = cpu_groups({"api": procs[0].pid, "relay": procs[1].pid, "sms_sweeper": procs[2].pid})
    for rate, sent, failures, achieved in timed_rates(base, key, arrivals, rates, first, groups, cpu_ms, label):
        latencies = [(arrivals.at[a] - t) * 1000 for a, t in sent.items() if a in arrivals.at]
        dispatch = [arrivals.dispatch_ms[a] for a in sent if a in arrivals.dispatch_ms]
        missing = sum(1 for a in sent if a not in arrivals.at)
        results.append((rate, latencies, missing, failures, achieved, dispatch))
    if idle is not None and (ms := idle_cpu(groups)) is not None:
        idle[label] = ms
    return results
