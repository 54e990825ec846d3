"""Two identical submissions at the same instant store one report: the database decides, not the code."""

import threading
import time
from pathlib import Path
from datetime import UTC, datetime

import pytest
from reports_support import report
from sqlalchemy import text

from db.errors import Conflict

RULES_PATH = Path(__file__).resolve().parents[1] / "data" / "rules.yaml"

# Two threads, each on its own connection: the second sees the first's rows only when they commit.
pytestmark = [pytest.mark.integration, pytest.mark.committing]


def _submit(session_factory, key, body, idempotency_key, out, *, hold: threading.Event | None = None):
    """create_report in its own session; with `hold`, wait for it before committing."""
    from alerts.rules import load_rules
    from accounts import keys
    from ingest.reports import service as reports
    from ingest.reports.schemas import ReportCreate

    with session_factory() as session:
        try:
            out["pid"] = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            caller = keys.authenticate(session, key=key)
            result = reports.create_report(
                session, caller=caller, body=ReportCreate.model_validate(body), idempotency_key=idempotency_key,
                rules=load_rules(RULES_PATH), jurisdiction_bbox=(-74.3, 40.45, -73.65, 40.95),
                now=datetime.now(UTC))
            out["created"], out["id"] = result.created, result.report.id
            if hold is not None:
                hold.wait(10)
            session.commit()
        except Conflict as exc:
            out["conflict"] = exc.message
            session.rollback()


def _race(engine, session_factory, key, first_body, second_body, first_key=None, second_key=None):
    """The first transaction inserts and holds; the second starts, must block, and resumes after the commit."""
    release = threading.Event()
    a, b = {}, {}
    ta = threading.Thread(target=_submit, args=(session_factory, key, first_body, first_key, a),
                          kwargs={"hold": release})
    ta.start()
    deadline = time.monotonic() + 10
    while "id" not in a and time.monotonic() < deadline:
        time.sleep(0.01)
    tb = threading.Thread(target=_submit, args=(session_factory, key, second_body, second_key, b))
    tb.start()
    blocked = _waits_on(engine, tb, b, holder=a["pid"])
    release.set()
    ta.join(10)
    tb.join(10)
    return a, b, blocked


def _waits_on(engine, thread: threading.Thread, out: dict, *, holder: int) -> bool:
    """Whether the thread's backend is seen waiting on a lock `holder`'s backend holds (the unique index
    entry of its uncommitted insert), polling pg_stat_activity until then or until the thread finished."""
    deadline = time.monotonic() + 10
    # Autocommit: pg_stat_activity is read once per transaction, and each poll must see it afresh.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while time.monotonic() < deadline and thread.is_alive():
            if "pid" in out and conn.execute(text(
                    "SELECT wait_event_type = 'Lock' AND :holder = ANY(pg_blocking_pids(pid)) "
                    "FROM pg_stat_activity WHERE pid = :pid"), {"pid": out["pid"], "holder": holder}).scalar():
                return True
            time.sleep(0.01)
    return False


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM utility_reports")).scalar_one()


def test_identical_concurrent_posts_create_one_report(session_factory, utility_key, districts, engine):
    a, b, blocked = _race(engine, session_factory, utility_key, report(), report())
    assert blocked
    assert (a["created"], b["created"]) == (True, False)
    assert a["id"] == b["id"]
    assert _count(engine) == 1


def test_same_idempotency_key_concurrently_with_another_external_id_is_a_conflict(
        session_factory, utility_key, districts, engine):
    a, b, blocked = _race(engine, session_factory, utility_key, report(), report(external_id="OTHER"),
                          "k-1", "k-1")
    assert blocked
    assert a["created"] is True
    assert "Idempotency-Key 'k-1' was already used" in b["conflict"]
    assert _count(engine) == 1
    with engine.connect() as conn:  # the loser's observation went with it
        assert conn.execute(text("SELECT count(*) FROM observations")).scalar_one() == 1


def test_many_threads_same_report_over_http(client, utility_key, engine):
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def go():
        barrier.wait()
        r = client.post("/v1/reports", json=report(), headers={"Authorization": f"Bearer {utility_key}",
                                                               "Idempotency-Key": "same"})
        codes.append(r.status_code)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [200] * 7 + [201]
    assert _count(engine) == 1
