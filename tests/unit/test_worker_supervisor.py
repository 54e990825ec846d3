"""The worker's supervisor restarts a role whose thread dies; db.outage logs an outage once, not per retry."""

import logging
import threading
import time

from db.outage import Backoff, Outage
from tocsin import worker


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def _supervise_in_thread(runners, stop):
    result = {}
    t = threading.Thread(target=lambda: result.update(
        worker.supervise(runners, stop, first_backoff_s=0.01, max_backoff_s=0.05, check_s=0.01)), daemon=True)
    t.start()
    return t, result


def test_a_role_whose_thread_raises_is_logged_and_restarted(caplog):
    stop = threading.Event()
    flaky_runs, steady_runs = [], []

    def flaky(stop_):
        flaky_runs.append(1)
        if len(flaky_runs) < 3:
            raise RuntimeError(f"boom {len(flaky_runs)}")
        stop_.wait()

    def steady(stop_):
        steady_runs.append(1)
        stop_.wait()

    with caplog.at_level(logging.INFO, logger="tocsin.worker"):
        t, result = _supervise_in_thread({"relay": flaky, "sweeper": steady}, stop)
        assert _wait(lambda: len(flaky_runs) == 3)
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert result == {"relay": 2, "sweeper": 0}
    assert steady_runs == [1]  # the other role was left alone
    assert "worker role relay died" in caplog.text and "boom 1" in caplog.text and "boom 2" in caplog.text


def test_a_role_that_returns_before_stop_is_restarted_too():
    stop = threading.Event()
    runs = []

    def quitter(stop_):
        runs.append(1)
        if len(runs) >= 2:
            stop_.wait()

    t, result = _supervise_in_thread({"sms": quitter}, stop)
    assert _wait(lambda: len(runs) == 2)
    stop.set()
    t.join(10)
    assert result == {"sms": 1}


def test_backoff_doubles_to_its_cap_with_jitter():
    b = Backoff(first_s=0.5, cap_s=30.0, rng=lambda: 1.0)
    assert [b.next_s() for _ in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    low = Backoff(first_s=0.5, cap_s=30.0, rng=lambda: 0.0)
    assert [low.next_s() for _ in range(3)] == [0.25, 0.5, 1.0]
    b.reset()
    assert b.next_s() == 0.5


def test_an_outage_is_logged_once_when_it_begins_and_once_when_every_loop_recovered(caplog):
    log = logging.getLogger("test.outage")
    outage = Outage("sms: database", log)
    planner, sender = outage.retrier("planner"), outage.retrier("sender-0")
    with caplog.at_level(logging.DEBUG, logger="test.outage"):
        for _ in range(5):
            planner.failed(ConnectionError("refused"))
            sender.failed(ConnectionError("refused"))
        planner.ok()  # the sender is still failing: the outage goes on
        sender.failed(ConnectionError("refused"))
        sender.ok()
        planner.ok()
    levels = [(r.levelname, r.getMessage().split(":")[2].strip().split(" ")[0]) for r in caplog.records
              if r.levelno >= logging.INFO]
    assert levels == [("WARNING", "outage"), ("INFO", "recovered")]
    assert outage.outages == 1 and not outage.down
    planner.failed(ConnectionError("again"))
    assert outage.outages == 2
