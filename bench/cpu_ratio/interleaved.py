"""The product's CPU per report over its floor's with both stacks up at once and the load switching between them
every few seconds: bench.cpu_ratio's default method (`runs.py` is the earlier one).

Why: alternating whole runs (a stack started, warmed up, driven for 5 s, stopped) put a minute between the two
sides of a pair, and this host's speed moves by tens of percent within a minute: one invocation's median read
1.87 and the next 2.57, with the same tree and the floor's own runs 2.0 to 4.1 ms per report. Here each stack
runs in a database of its own (PostgreSQL signals listeners per database, and backends are told apart by it),
both are started and warmed up once, and the load goes to one and then the other in slices of BENCH_SLICE_S
seconds (2) at BENCH_RATE reports a second (200), in ABBA order (floor, product, product, floor, ...), for
BENCH_SLICES slices (28, a multiple of four). Each product report goes into a cell of its own, so that each
opens an alert (5,600 of the grid's 6,000 cells at the defaults); the floor's open nothing and reuse cells.

What each stack is charged: its own processes (API with its workers, relay, SMS planner with the sweeper; the
floor's API and relay) and its database's backends, over the whole measurement, whatever slice they ran in:
what a stack does later for a report (the sweeper's first look at each new alert, the planner's batch) is its
own, as is what it does while the other is loaded. The shared processes (PostgreSQL's own: WAL writer,
checkpointer and the rest; Mosquitto; this load generator with its subscribers) go to the stack whose slice
it is, and after the last slice the product is charged BENCH_TAIL_S (6) more seconds of everything, for the
sweeps and plans that its last slice left. Both stacks' idle work runs beside the other's slices; the
product's is the larger, so this leans, slightly, against the product.

Prints each stack's CPU per report by group, a line per block of four slices (`block 2: product 4.41 ms, floor
2.20 ms, ratio 2.00`), then `cpu_ratio= cpu_ratio_median= cpu_ratio_min= cpu_ratio_max= blocks= rate=
product_ms= floor_ms=`: the ratio of the two totals, and the median and range of the blocks'. Goal:
cpu_ratio_median <= 2 (#17). A missing event or failed post fails the benchmark (exit 1).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import psycopg

from bench import cpu
from bench.db import admin_url, drop_database, fresh_or_skip
from bench.http_load import free_port
from bench.latency import stacks
from bench.latency.load import COLS, ROWS, Arrivals, post_schedule, stop_all, wait_for
from bench.latency.site import setup
from tocsin import heap

SLICE_S = float(os.environ.get("BENCH_SLICE_S", "2"))
SLICES = int(os.environ.get("BENCH_SLICES", "28"))
RATE = int(os.environ.get("BENCH_RATE", "200"))
TAIL_S = float(os.environ.get("BENCH_TAIL_S", "6"))
WARM_UP = 100
PRODUCT = ("api_p", "relay_p", "sms_p", "pg_p")
FLOOR = ("api_f", "relay_f", "pg_f")
SHARED = ("pg_shared", "mosquitto", "load")


def order(slices: int) -> list[str]:
    """ABBA: floor, product, product, floor, floor, product, ..."""
    return ["floor" if i % 4 in (0, 3) else "product" for i in range(slices)]


def backends(conn: psycopg.Connection, database: str) -> Callable[[], list[int]]:
    """The pids of `database`'s backends now (for cpu.Groups, which reads them on its meter's thread only)."""
    return lambda: [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]


def charge(slices: list[tuple[str, dict[str, float]]], tail: dict[str, float]) -> dict[str, dict[str, float]]:
    """CPU seconds by group for each stack (see the module docstring): its own groups over every slice and the
    tail, the shared ones over its own slices (and the tail, for the product)."""
    out = {"product": dict.fromkeys(PRODUCT + SHARED, 0.0), "floor": dict.fromkeys(FLOOR + SHARED, 0.0)}
    for stack, used in slices + [("product", tail)]:
        for group in PRODUCT:
            out["product"][group] += used[group]
        for group in FLOOR:
            out["floor"][group] += used[group]
        for group in SHARED:
            out[stack][group] += used[group]
    return out


def shared_pg(used: dict[str, float]) -> dict[str, float]:
    """`postgres` (every PostgreSQL process) less the two databases' backends: PostgreSQL's own processes."""
    out = {g: v for g, v in used.items() if g != "postgres"}
    out["pg_shared"] = max(0.0, used["postgres"] - used["pg_p"] - used["pg_f"])
    return out


def blocks(slices: list[tuple[str, dict[str, float]]], reports: int) -> list[tuple[float, float]]:
    """(product, floor) ms of CPU per report of each block of four slices (FPPF): each stack's own groups over
    the block, the shared ones over its own slices in it."""
    out = []
    for b in range(0, len(slices) - 3, 4):
        part = charge(slices[b:b + 4], dict.fromkeys(PRODUCT + FLOOR + SHARED, 0.0))
        per = {stack: sum(part[stack].values()) * 1000 / (2 * reports) for stack in part}
        out.append((per["product"], per["floor"]))
    return out


def run(settings, db_name: str) -> int:
    if SLICES < 4 or SLICES % 4 or (SLICES // 2) * int(RATE * SLICE_S) + WARM_UP > COLS * ROWS:
        print(f"BENCH_SLICES must be a multiple of 4 (whole FPPF blocks), and BENCH_SLICES / 2 x BENCH_SLICE_S x "
              f"BENCH_RATE + {WARM_UP} must fit the grid's {COLS * ROWS} cells")
        return 2
    if not cpu.available():
        print("skipped: the CPU of each process is read from /proc, which this machine lacks")
        return 0
    if (url := fresh_or_skip(settings.database_url, db_name)) is None:
        return 0
    floor_name = db_name + "_floor"
    if (url_f := fresh_or_skip(settings.database_url, floor_name)) is None:
        drop_database(settings.database_url, db_name)
        return 0
    procs: list = []
    arrivals: dict[str, Arrivals] = {}
    meter_conn = psycopg.connect(admin_url(settings.database_url), autocommit=True)
    try:
        key, env, prefix = stacks.site(url)
        setup(url_f)  # the grid the floor's API looks reports up in
        stacks.analyze(url, vacuum=True)
        stacks.analyze(url_f, vacuum=True)
        ports = {"product": free_port(), "floor": free_port()}
        product = stacks.start_product(env, ports["product"])
        procs += product
        floor = stacks.start_floor(url_f, {**env, "TOCSIN_DATABASE_URL": url_f}, ports["floor"])
        procs += floor
        arrivals = {"product": Arrivals(settings.mqtt_url, f"{prefix}/alerts/#"),
                    "floor": Arrivals(settings.mqtt_url, f"{prefix}/floor")}
        base = {stack: f"http://127.0.0.1:{port}" for stack, port in ports.items()}
        post_schedule(base["product"], key, first_cell=0, rate=50, seconds=2)  # warm-up: connections, plans
        post_schedule(base["floor"], "", first_cell=0, rate=50, seconds=2, floor=True)
        stacks.analyze(url)
        stacks.analyze(url_f)
        heap.freeze()
        groups = stacks.cpu_groups(
            {"api_p": product[0].pid, "relay_p": product[1].pid, "sms_p": product[2].pid, "api_f": floor[0].pid,
             "relay_f": floor[1].pid},
            extra={"pg_p": backends(meter_conn, db_name), "pg_f": backends(meter_conn, floor_name)})
        assert groups is not None  # cpu.available() was checked first
        slices, wrong, first = [], [], WARM_UP
        n = int(RATE * SLICE_S)
        groups.start()
        for i, stack in enumerate(order(SLICES), 1):
            sent, failures, _ = post_schedule(base[stack], key if stack == "product" else "",
                                              first_cell=first if stack == "product" else WARM_UP,
                                              rate=RATE, seconds=SLICE_S, floor=stack == "floor")
            wait_for(arrivals[stack], sent, floor=stack == "floor")
            slices.append((stack, shared_pg(groups.stop())))
            groups.start()
            seen = arrivals[stack].by_event if stack == "floor" else arrivals[stack].at
            if missing := sum(1 for k in sent if k not in seen) + (n - len(sent)):
                wrong.append(f"slice {i} ({stack}): {missing} events missing, {failures} posts failed")
            if stack == "product":
                first += n
        time.sleep(TAIL_S)
        tail = shared_pg(groups.stop())
    finally:
        stop_all(procs)
        meter_conn.close()
        if "product" in arrivals:
            arrivals["product"].clear_retained(stacks.retained_topics(prefix))
        for a in arrivals.values():
            a.close()
        drop_database(settings.database_url, db_name)
        drop_database(settings.database_url, floor_name)
    reports = (SLICES // 2) * n
    total = charge(slices, tail)
    for stack in ("product", "floor"):
        print(cpu.line(f"cpu_ms_per_report {stack} rate={RATE}:", cpu.per_item_ms(total[stack], reports)))
    each = blocks(slices, n)
    for b, (p, f) in enumerate(each, 1):
        print(f"block {b}: product {p:.2f} ms, floor {f:.2f} ms, ratio {p / f:.2f}")
    for line in wrong:
        print(line)
    product_ms, floor_ms = (sum(total[s].values()) * 1000 / reports for s in ("product", "floor"))
    ratios = [p / f for p, f in each]
    print(f"cpu_ratio={product_ms / floor_ms:.2f} cpu_ratio_median={statistics.median(ratios):.2f} "
          f"cpu_ratio_min={min(ratios):.2f} cpu_ratio_max={max(ratios):.2f} blocks={len(ratios)} rate={RATE} "
          f"product_ms={product_ms:.2f} floor_ms={floor_ms:.2f}")
    return 1 if wrong else 0
