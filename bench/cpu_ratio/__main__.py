"""CPU per report of the product against its floor's at 200 reports/s: the figure of the write path's goal (#17:
CPU per report at most twice the floor's at 200/s), with its spread.

Two methods. The default (`interleaved.py`) keeps both stacks up, each on a database of its own, and switches
the load between them every BENCH_SLICE_S seconds, so that both sides of each comparison share the host's
speed of the same few seconds. BENCH_CPU_RATIO=runs (`runs.py`) alternates whole runs of freshly started
stacks, five pairs in ABBA order, as bench.cpu_ratio did until 2026-12-05. Both print `cpu_ratio_median=`;
goal: at most 2. Each needs /proc and the local PostgreSQL and Mosquitto, and skips politely without them.

Run: .venv/bin/python -m bench.cpu_ratio   (about two minutes)
"""

import os
import sys


def main() -> int:
    from tocsin.settings import Settings

    method = os.environ.get("BENCH_CPU_RATIO", "interleaved")
    if method == "runs":
        from bench.cpu_ratio import runs

        return runs.main()
    if method != "interleaved":
        print(f"BENCH_CPU_RATIO is 'interleaved' (the default) or 'runs', not {method!r}")
        return 2
    from bench.cpu_ratio import interleaved

    return interleaved.run(Settings(), f"tocsin_bench_cpu_ratio_{os.getpid()}")


if __name__ == "__main__":
    sys.exit(main())
