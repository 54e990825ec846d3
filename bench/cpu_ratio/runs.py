"""bench.cpu_ratio's earlier method (BENCH_CPU_RATIO=runs): CPU per report of the product against its floor's, in
alternating runs at 200 reports/s. `interleaved.py`, the default, keeps both stacks up and switches the load
between them every 2 s, because a minute between a pair's two runs was enough for the host to move the ratio
by a third.

Why a benchmark of its own: bench.latency runs each stack twice at 200/s (floor, product, floor, product) and
divides the lesser of the product's two runs by the lesser of the floor's. On this shared host one invocation
of it gave 1.35 and the next 2.6, and within one invocation the floor's two runs gave 2.0 and 3.7 ms per
report (2026-12-05): the host's speed moves by more than the distance to the goal. Here the two stacks
alternate BENCH_PAIRS times (5) in ABBA order (floor, product, product, floor, floor, ...), each run
BENCH_PHASE_S seconds (5) at BENCH_RATE reports per second (200), on a stack started afresh and warmed up as
bench.latency does (bench.latency.stacks), on the same site: a grid of 6,000 cells, a day of history and one
rule that opens an alert on every gas-leak report. Each product run is divided by the floor run next to it
in time, which shares that minute's host speed, and the figure is the median of those ratios.

Prints the CPU each process group spent per report in each run (`cpu_ms_per_report product 3 rate=200: api=
... total=`), then a line per pair (`pair 3: product 5.10 ms, floor 2.40 ms, ratio 2.13`), and last
`cpu_ratio_median= cpu_ratio_min= cpu_ratio_max= pairs= product_ms_median= floor_ms_median=
cpu_ratio_of_least=`. Goal: cpu_ratio_median <= 2. The last figure is the least of the product's runs over
the least of the floor's, bench.latency's reading (the host's noise only adds CPU) over five runs a side
instead of two. A run with an event missing or a post failed fails the benchmark (exit 1), as in
bench.latency. Each product run posts into cells of its own, so that each of its reports opens an alert:
BENCH_PAIRS x (BENCH_PHASE_S x BENCH_RATE + 100 of warm-up) must fit in the grid. It needs /proc (the CPU of
every process) and the local PostgreSQL and Mosquitto; without them it says so and exits 0.

Run: BENCH_CPU_RATIO=runs .venv/bin/python -m bench.cpu_ratio   (about three minutes)
"""

import os
import statistics

from bench import cpu
from bench.db import drop_database, fresh_or_skip
from bench.http_load import free_port
from bench.latency import stacks
from bench.latency.load import COLS, ROWS, Arrivals, stop_all
from tocsin import heap

DB_NAME = f"tocsin_bench_cpu_ratio_{os.getpid()}"
PAIRS = int(os.environ.get("BENCH_PAIRS", "5"))
PHASE_S = float(os.environ.get("BENCH_PHASE_S", "5"))
RATE = int(os.environ.get("BENCH_RATE", "200"))
WARM_UP = 100  # reports stacks.product_runs posts before its timed run, each into a cell of its own


def ratios(cpu_ms: dict[tuple[str, int], dict[str, float]], pairs: int, rate: int) -> list[tuple[float, float]]:
    """(product, floor) total CPU per report of each pair's runs, in pair order."""
    return [(sum(cpu_ms[(f"product {i}", rate)].values()), sum(cpu_ms[(f"floor {i}", rate)].values()))
            for i in range(1, pairs + 1)]


def _runs(url: str, key: str, env: dict[str, str], mqtt_url: str, prefix: str, arrivals: Arrivals,
          cpu_ms: dict) -> list[str]:
    """Every pair's two runs, in ABBA order; returns what went wrong in them (events missing, posts failed)."""
    schedule = ((RATE, PHASE_S),)
    wrong = []
    first = 0
    for i in range(1, PAIRS + 1):
        for stack in ("floor", "product") if i % 2 else ("product", "floor"):
            if stack == "floor":  # its reports open no alert: every floor run may use the same cells
                [(_, _, missing, failures, _)] = stacks.floor_runs(url, env, mqtt_url, prefix, schedule, 0, cpu_ms,
                                                                   label=f"floor {i}")
            else:
                port = free_port()
                procs = stacks.start_product(env, port)
                try:
                    [(_, _, missing, failures, _, _)] = stacks.product_runs(
                        url, f"http://127.0.0.1:{port}", key, procs, arrivals, schedule, first, cpu_ms,
                        label=f"product {i}")
                finally:
                    stop_all(procs)
                first += WARM_UP + int(RATE * PHASE_S)
            if missing or failures:
                wrong.append(f"{stack} run {i}: {missing} events missing, {failures} posts failed")
    return wrong


def main() -> int:
    from tocsin.settings import Settings

    if PAIRS < 1 or PAIRS * (WARM_UP + int(RATE * PHASE_S)) > COLS * ROWS:
        print(f"BENCH_PAIRS x (BENCH_PHASE_S x BENCH_RATE + {WARM_UP}) must be positive and fit the grid's "
              f"{COLS * ROWS} cells")
        return 2
    if not cpu.available():
        print("skipped: the CPU of each process is read from /proc, which this machine lacks")
        return 0
    settings = Settings()
    if (url := fresh_or_skip(settings.database_url, DB_NAME)) is None:
        return 0
    arrivals = None
    cpu_ms: dict[tuple[str, int], dict[str, float]] = {}
    try:
        key, env, prefix = stacks.site(url)
        stacks.analyze(url, vacuum=True)  # the history just written: autovacuum's pass would be charged to a run
        arrivals = Arrivals(settings.mqtt_url, f"{prefix}/alerts/#")
        heap.freeze()
        wrong = _runs(url, key, env, settings.mqtt_url, prefix, arrivals, cpu_ms)
    finally:
        if arrivals is not None:
            arrivals.clear_retained(stacks.retained_topics(prefix))
            arrivals.close()
        drop_database(settings.database_url, DB_NAME)
    for (label, rate), ms in cpu_ms.items():
        print(cpu.line(f"cpu_ms_per_report {label} rate={rate}:", ms))
    pairs = ratios(cpu_ms, PAIRS, RATE)
    for i, (product, floor) in enumerate(pairs, 1):
        print(f"pair {i}: product {product:.2f} ms, floor {floor:.2f} ms, ratio {product / floor:.2f}")
    for line in wrong:
        print(line)
    each = [product / floor for product, floor in pairs]
    print(f"cpu_ratio_median={statistics.median(each):.2f} cpu_ratio_min={min(each):.2f} "
          f"cpu_ratio_max={max(each):.2f} pairs={len(each)} rate={RATE} "
          f"product_ms_median={statistics.median(p for p, _ in pairs):.2f} "
          f"floor_ms_median={statistics.median(f for _, f in pairs):.2f} "
          f"cpu_ratio_of_least={min(p for p, _ in pairs) / min(f for _, f in pairs):.2f}")
    return 1 if wrong else 0
