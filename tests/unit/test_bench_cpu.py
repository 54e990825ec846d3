"""bench.cpu counts the CPU a group of processes spent, including a child that exited before the end."""

import os
import subprocess
import sys

import pytest

from bench import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason="reads /proc (Linux)")

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3:\n    pass\n"


def test_an_exited_child_still_counts_and_only_trees_take_children():
    groups = cpu.Groups({"tree": lambda: [os.getpid()], "self": lambda: [os.getpid()]}, trees=["tree"],
                        interval_s=0.02)
    groups.start()
    child = subprocess.Popen([sys.executable, "-c", BURN])
    child.wait()  # it burnt 0.3 s of CPU and is gone before stop()
    spent = groups.stop()
    assert spent["tree"] >= spent["self"] + 0.2
    assert spent["self"] < 0.2  # this process only waited


def test_per_item_and_line():
    ms = cpu.per_item_ms({"api": 0.5, "postgres": 0.25}, 100)
    assert ms == {"api": 5.0, "postgres": 2.5}
    assert cpu.line("cpu", ms) == "cpu api=5.00 postgres=2.50 total=7.50"


def test_one_process_seconds_grow_with_its_work_and_end_with_it():
    child = subprocess.Popen([sys.executable, "-c", BURN + "input()\n"], stdin=subprocess.PIPE)
    try:
        while (spent := cpu.seconds_of(child.pid)) is not None and spent < 0.25:
            pass  # until it has burnt its 0.3 s (it then waits for input, spending nothing)
        assert spent is not None and spent >= 0.25
    finally:
        child.communicate(b"\n")
    assert cpu.seconds_of(child.pid) is None  # reaped: no such process
