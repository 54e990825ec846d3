"""CPU time of processes, read from /proc: a figure shared, noisy machines disturb far less than wall time.

A neighbour's load stretches latency and throughput from run to run by 20 % or more here; the CPU a
piece of work costs moves much less between runs made side by side (about 5 %), though the host's
speed still moves it by up to a quarter over an hour: compare paired runs, old and new alternating.
The benchmarks print it beside their figures, per process group, so that a change can be judged by
what it costs rather than by how long it happened to take.

`Groups` maps names to process ids (and, for the groups that ask, their descendants, found when
sampled: uvicorn's workers are children of the server), or to a command name: "postgres" is every
PostgreSQL server process on the machine, the backends serving the benchmark and the WAL writer and
checkpointer working for them. Linux only; on another system `available()` is False and the
benchmarks leave these figures out.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    return os.path.exists("/proc/self/stat")


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, command name, CPU seconds in user and system mode), or None once it has exited."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    name = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), name, (int(fields[11]) + int(fields[12])) / _HZ


def seconds_of(pid: int) -> float | None:
    """One process's CPU seconds so far (user and system); None once it has exited, for a process elsewhere
    (a remote PostgreSQL's backend), or without /proc."""
    st = _stat(pid) if available() else None
    return None if st is None else st[2]


def _all() -> dict[int, tuple[int, str, float]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            out[int(entry)] = st
    return out


class Groups:
    """Named groups of processes and the CPU they spend between `start()` and `stop()`.

    `roots`: each group's processes, or a command name for all its processes (`"postgres"`: every
    server process on the machine); `trees`: the groups that also count their processes' descendants
    (not the load generator's: the servers it started are groups of their own). A thread reads every
    process twice a second (2.4 ms of CPU a read here), so that one which exits meanwhile (a pooled
    connection's backend closed at overflow) still counts, up to its last read."""

    def __init__(self, roots: dict[str, Callable[[], Iterable[int]] | str], trees: Iterable[str] = (),
                 interval_s: float = 0.5) -> None:
        self.roots = roots
        self.trees = set(trees)
        self.interval_s = interval_s
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> dict[tuple[str, int], float]:
        procs = _all()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        out = {}
        for group, roots in self.roots.items():
            if isinstance(roots, str):  # a command name: every process of it
                stack = [pid for pid, (_, comm, _) in procs.items() if comm == roots]
            else:
                stack = list(roots())
            seen = set()
            while stack:
                pid = stack.pop()
                if pid in seen or pid not in procs:
                    continue
                seen.add(pid)
                out[(group, pid)] = procs[pid][2]
                if group in self.trees:
                    stack.extend(children.get(pid, ()))
        return out

    def _record(self, first: bool = False) -> None:
        for key, seconds in self._read().items():
            # A process first seen after start() began within the window: all its CPU counts.
            self._first.setdefault(key, seconds if first else 0.0)
            self._last[key] = seconds

    def start(self) -> None:
        self._first, self._last = {}, {}
        self._record(first=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._record()

    def stop(self) -> dict[str, float]:
        """CPU seconds each group spent since start()."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._record()
        out = {group: 0.0 for group in self.roots}
        for (group, pid), last in self._last.items():
            out[group] += max(0.0, last - self._first[(group, pid)])
        return out


def per_item_ms(seconds: dict[str, float], items: int) -> dict[str, float]:
    """Milliseconds of CPU per item in each group."""
    return {g: v * 1000 / max(items, 1) for g, v in seconds.items()}


def line(prefix: str, ms: dict[str, float]) -> str:
    """`<prefix> api=7.5 postgres=6.0 ... total=18.0` (ms of CPU per item)."""
    return prefix + " " + " ".join(f"{g}={v:.2f}" for g, v in ms.items()) + f" total={sum(ms.values()):.2f}"
