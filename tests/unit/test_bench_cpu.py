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
