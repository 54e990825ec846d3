"""The SMS role's loop (dispatch.fanout_worker.run_forever): its planner and sender threads, idle and busy.

An idle site's senders used to poll the database every second, each of them; now only the lead does, and
the others wait until the planner (or a sender that found work) wakes them. The planner LISTENs only while
idle: while events keep coming it looks every gather_s instead of being signalled at every commit. Real
PostGIS with its LISTEN/NOTIFY, the real twilio client against the fake Twilio, the worker's real threads.
"""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text

from alerts.events import EventKind
from db.session import libpq_dsn, transaction
from tests.integration.dispatch_support import T0, deliveries, emit, open_alert, wait_until
from tests.integration.test_dispatch_fanout import ANA, BEN, CY, DEE, Clock, add, make_worker, sent_to, zone

pytestmark = [pytest.mark.integration, pytest.mark.committing]  # the worker's threads see committed rows only

FOLLOWERS = ("sms-sender-1", "sms-sender-2", "sms-sender-3")


class Run:
    def __init__(self, worker, clock):
        self.worker, self.clock = worker, clock
        self.opened: Counter[str] = Counter()  # sessions each thread opened, by thread name
        self.senders: list[str] = []  # the thread of each call to the provider


@pytest.fixture
def worker_run(session_factory, fake, direct_database_url):
    """A FanoutWorker of four senders running its loop (`run_forever`, polling every 0.2 s) on a clock the
    test moves, with the sessions each thread opened and the thread of each send."""
    clock = Clock(T0)
    run = Run(None, clock)
    opened = run.opened
    lock = threading.Lock()

    def counting():
        with lock:
            opened[threading.current_thread().name] += 1
        return session_factory()

    worker = run.worker = make_worker(counting, fake, clock)
    assert worker.concurrency == 4
    provider = worker.sender

    class Recording:
        def send(self, to, body, *, status_callback=None):
            run.senders.append(threading.current_thread().name)
            return provider.send(to, body, status_callback=status_callback)

    worker.sender = Recording()
    stop = threading.Event()
    loop = threading.Thread(target=worker.run_forever, name="sms-planner",
                            kwargs={"dsn": libpq_dsn(direct_database_url), "stop": stop, "poll_s": 0.2})
    loop.start()
    yield run
    stop.set()
    loop.join(timeout=10)
    assert not loop.is_alive()


def test_idle_senders_leave_the_polling_to_one_and_all_wake_for_a_page(session_factory, districts, fake,
                                                                         worker_run):
    opened = worker_run.opened
    for name, phone in (("Ana", ANA), ("Ben", BEN), ("Cy", CY), ("Dee", DEE)):
        add(session_factory, name, phone, zone("A"))

    # Idle: the lead looks every 0.2 s (a claim, a second claim, the next due time); the others looked when
    # they started, then wait to be woken: ten more looks of the lead's, none of theirs.
    wait_until(lambda: opened["sms-sender-0"] >= 6, what="the lead sender's first looks")
    idle = {name: opened[name] for name in FOLLOWERS}
    lead = opened["sms-sender-0"]
    wait_until(lambda: opened["sms-sender-0"] >= lead + 30, what="ten more looks of the lead's")
    assert {name: opened[name] for name in FOLLOWERS} == idle
    assert all(n >= 1 for n in idle.values()), idle  # each did look once

    open_alert(session_factory, code="A")  # its outbox event's NOTIFY wakes the planner, which plans 4 SMS
    wait_until(lambda: len(fake.messages) == 4, what="four SMS sent")
    assert sent_to(fake) == sorted([ANA, BEN, CY, DEE])
    wait_until(lambda: all(d["status"] == "sent" for d in deliveries(session_factory)), what="sends recorded")
    # The planner woke every sender: each one went to look.
    assert all(opened[name] > idle[name] for name in FOLLOWERS), (idle, dict(opened))


def test_deliveries_that_fall_due_while_idle_go_out_on_every_sender(session_factory, districts, fake, worker_run):
    """Retries whose backoff ends together: only the lead is polling, and the first it sends wakes the rest."""
    ids = [add(session_factory, name, phone, zone("B"))  # zone B: the alert in A plans nobody
           for name, phone in (("Ana", ANA), ("Ben", BEN), ("Cy", CY), ("Dee", DEE))]
    alert = open_alert(session_factory, code="A")
    due = T0 + timedelta(seconds=60)
    with transaction(session_factory) as session:
        for rid in ids:
            session.execute(text(
                "INSERT INTO deliveries (event_id, alert_id, responder_id, body, status, attempts, next_attempt_at, "
                "created_at, updated_at) VALUES (gen_random_uuid(), :a, :r, 'retry', 'pending', 1, :due, :t, :t)"),
                {"a": alert.id, "r": rid, "due": due, "t": T0})
    wait_until(lambda: worker_run.opened["sms-sender-0"] >= 10, what="the lead sender's polls")
    assert not fake.messages  # nothing is due yet
    fake.delay_next(0.5, n=4)  # each send takes a while, as Twilio's do
    worker_run.clock.now = due
    wait_until(lambda: len(fake.messages) == 4, what="four retries sent")
    assert sent_to(fake) == sorted([ANA, BEN, CY, DEE])
    assert len(set(worker_run.senders)) >= 2, worker_run.senders  # not all one after the other by the lead


def _planner_heard(factory) -> list[str]:
    """The last command of every connection of this database that LISTENs or did (the planner's only)."""
    with factory() as session:
        return session.execute(text(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE '%LISTEN tocsin_outbox'")).scalars().all()


def test_the_planner_stops_listening_while_events_keep_coming_and_listens_again_when_idle(
        session_factory, districts, fake, worker_run):
    add(session_factory, "Ana", ANA, zone("A"))
    wait_until(lambda: _planner_heard(session_factory) == ["LISTEN tocsin_outbox"], what="the idle planner listening")
    alert = open_alert(session_factory, code="A")  # idle: its NOTIFY wakes the planner
    wait_until(lambda: fake.messages, what="the page for the alert")
    commands = set()
    for _ in range(30):  # an event every 50 ms for 1.5 s
        emit(session_factory, alert.id, kind=EventKind.UPDATED, now=T0)
        commands.update(_planner_heard(session_factory))
        time.sleep(0.05)
    assert "UNLISTEN tocsin_outbox" in commands

    def queued() -> int:
        with session_factory() as session:
            return session.execute(text("SELECT count(*) FROM sms_fanout_queue")).scalar_one()

    wait_until(lambda: queued() == 0, what="every event planned")
    wait_until(lambda: _planner_heard(session_factory) == ["LISTEN tocsin_outbox"], what="the planner listening again")
    emit(session_factory, alert.id, kind=EventKind.ESCALATION_TICK, now=T0)  # heard: planned at once
    wait_until(lambda: queued() == 0, what="the tick planned")
    assert len(fake.messages) == 1  # Ana was paged once for the alert, whatever its later events


def test_a_planner_that_fails_takes_its_senders_with_it(session_factory, fake, direct_database_url):
    """A planner error that is not an outage escapes run_forever, for the worker's supervisor to start the role
    again, with senders of its own; the failed planner's senders used to go on beside them."""
    worker = make_worker(session_factory, fake, Clock(T0))
    plans = []

    def failing(stop):
        plans.append(1)
        if len(plans) == 2:
            raise RuntimeError("a planner bug")
        return 0

    worker._plan_all = failing
    senders = []
    start_sender = worker._start_sender
    worker._start_sender = lambda *a: senders.append(start_sender(*a)) or senders[-1]
    stop = threading.Event()
    with pytest.raises(RuntimeError, match="a planner bug"):
        worker.run_forever(dsn=libpq_dsn(direct_database_url), stop=stop, poll_s=0.2)
    assert not stop.is_set()
    assert len(senders) == 4
    wait_until(lambda: not any(t.is_alive() for t in senders), what="the failed planner's senders to end")
