"""Progress of a long command, on stderr (stdout is for results).

On a terminal: a rich bar with the count, the rate and the time left. Elsewhere (CI, a pipe, a log file,
tests): a few plain lines, at the start, at every tenth and at the end, so a log stays readable:

    zones district: 0/1200 (0%)
    zones district: 120/1200 (10%)
    ...
    zones district: 1200/1200 (100%) in 3.2 s, 375 zone/s

Below MIN_TOTAL items only that last line is written, wherever it goes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

MIN_TOTAL = 200
STEPS = 10  # plain lines between the first and the last


def _count(done: int, total: int) -> str:
    pct = 100 if total <= 0 else min(100, done * 100 // total)
    return f"{done}/{total} ({pct}%)"


def _final(description: str, done: int, total: int, unit: str, elapsed_s: float) -> str:
    rate = f", {done / elapsed_s:.0f} {unit}/s" if total >= MIN_TOTAL and elapsed_s >= 0.05 else ""
    return f"{description}: {_count(done, total)} in {elapsed_s:.1f} s{rate}"


def _is_terminal(file: TextIO) -> bool:
    """A real terminal, and not a dumb one. FORCE_COLOR (set by many CI systems for coloured logs) does not
    count: a bar redrawn with carriage returns is what a log file must not get."""
    try:
        tty = file.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False
    return tty and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")


@contextmanager
def progress(total: int, description: str, unit: str = "item", *,
             file: TextIO | None = None) -> Iterator[Callable[[int], None]]:
    """Report progress through `total` items; yields `advance(n=1)`, to call as items are done.

    The last line is written only when the block ends without an error: the error says where it stopped."""
    out = file if file is not None else sys.stderr  # looked up now: a test runner swaps sys.stderr
    start = time.monotonic()
    if total >= MIN_TOTAL and _is_terminal(out):
        with _bar(out, total, description, unit) as advance:
            yield advance
        return
    done = 0
    shown = 0  # the last tenth written
    quiet = total < MIN_TOTAL

    def advance(n: int = 1) -> None:
        nonlocal done, shown
        done += n
        if quiet or done >= total:  # the 100% line is the last one, written at the end
            return
        tenth = done * STEPS // total
        if tenth > shown:
            shown = tenth
            print(f"{description}: {_count(done, total)}", file=out, flush=True)

    if not quiet:
        print(f"{description}: {_count(0, total)}", file=out, flush=True)
    yield advance
    print(_final(description, done, total, unit, time.monotonic() - start), file=out, flush=True)


@contextmanager
def _bar(out: TextIO, total: int, description: str, unit: str) -> Iterator[Callable[[int], None]]:
    """A rich bar; advances are batched (a per-row caller would otherwise pay rich's lock and speed
    estimate on every row)."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    step = max(1, total // 1000)
    pending = 0
    # stdout is not redirected: what a command prints there is its result, never to go above the bar.
    with Progress(*columns, console=Console(file=out, force_terminal=True), redirect_stdout=False) as bar:
        task = bar.add_task(description, total=total, rate="")

        def flush() -> None:
            nonlocal pending
            bar.advance(task, pending)
            pending = 0
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:.0f} {unit}/s" if speed else "")

        def advance(n: int = 1) -> None:
            nonlocal pending
            pending += n
            if pending >= step:
                flush()

        yield advance
        flush()
