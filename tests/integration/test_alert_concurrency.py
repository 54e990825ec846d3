"""Two worker processes ingesting evidence for the same zones at the same moment produce exactly one alert each,
and neither misses the threshold that only their evidence together reaches."""

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.integration.engine_helpers import (
    ingest_process, outage_post_process, post_batch_process, report_process,
)

# Separate processes, each on its own connection.
pytestmark = [pytest.mark.integration, pytest.mark.committing, pytest.mark.heavy]

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
RULES = {"rules": [{"name": "flood_posts", "categories": ["flood"], "sources": ["post"], "layer": "district",
                    "window": "1h", "min_count": 2, "min_distinct_authors": 2}]}
ROUNDS = 12  # four per zone
# What the processes import, imported once in this test process's fork server: each process forks from it,
# fresh (one thread, no connection of ours), instead of importing it all again as a spawned one did (eight
# processes here, over a second of CPU each).
PRELOAD = ["tests.integration.engine_helpers", "accounts.keys", "alerts.rules", "db.session", "geo.gazetteer",
           "ingest.posts.classify", "ingest.posts.parse", "ingest.posts.pipeline", "ingest.posts.state",
           "ingest.reports.schemas", "ingest.reports.service", "tocsin.models_registry"]


def _run(target, database_url: str, rules: dict, plan: list, other=None) -> None:
    """Two processes run the plan in lockstep: `target` in both, or `target` and `other`."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=t, args=(database_url, rules, plan, name, barrier))
             for t, name in ((target, "w1"), (other or target, "w2"))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]


def test_two_processes_same_zone_one_alert(database_url, session_factory, districts):
    # Round r sends one post from each process, at the same instant, into zone A, B or C in turn.
    plan = [("ABC"[r % 3], T0 + timedelta(seconds=r)) for r in range(ROUNDS)]
    _run(ingest_process, database_url, RULES, plan)

    with session_factory() as s:
        rows = s.execute(text(
            "SELECT z.code, a.state, a.opened_at, a.evidence_count FROM alerts a JOIN zones z ON z.id = a.zone_id "
            "ORDER BY z.code")).all()
        # One alert per zone, opened by the very first pair: the second process to evaluate waited for the
        # first one's commit and counted its post, so the threshold of 2 was not missed.
        assert [(code, state, opened) for code, state, opened, _ in rows] == [
            ("A", "open", T0), ("B", "open", T0 + timedelta(seconds=1)), ("C", "open", T0 + timedelta(seconds=2))]
        assert [n for *_, n in rows] == [2 * ROUNDS // 3] * 3  # every post from both processes is evidence
        kinds = s.execute(text("SELECT kind, count(*) FROM outbox_events GROUP BY kind")).all()
        assert kinds == [("opened", 3)]


def test_two_api_workers_reporting_in_one_zone_open_one_alert(database_url, session_factory, districts):
    """Utility reports lock their zones inside the insert statement itself; the threshold (2 reports from
    2 utilities) is only reached by both processes' reports together, in every round's first pair."""
    rules = {"rules": [{"name": "outages", "categories": ["power_outage"], "sources": ["utility_report"],
                        "layer": "district", "window": "1h", "min_count": 2, "min_distinct_authors": 2}]}
    plan = [("ABC"[r % 3], T0 + timedelta(seconds=r)) for r in range(ROUNDS)]
    _run(report_process, database_url, rules, plan)
    with session_factory() as s:
        rows = s.execute(text(
            "SELECT z.code, a.opened_at, a.evidence_count, a.distinct_authors FROM alerts a "
            "JOIN zones z ON z.id = a.zone_id ORDER BY z.code")).all()
        assert rows == [("A", T0, 8, 2), ("B", T0 + timedelta(seconds=1), 8, 2),
                        ("C", T0 + timedelta(seconds=2), 8, 2)]
        kinds = s.execute(text("SELECT kind, count(*) FROM outbox_events GROUP BY kind")).all()
        assert kinds == [("opened", 3)]


def test_two_post_batches_in_one_zone_open_one_alert(database_url, session_factory, districts):
    """The batch path records its signals first and counts only after the zone locks: two concurrent
    batches whose posts reach the threshold only together still open the alert in the first round."""
    plan = [("ABC"[r % 3], T0 + timedelta(seconds=r)) for r in range(ROUNDS)]
    _run(post_batch_process, database_url, RULES, plan)
    with session_factory() as s:
        rows = s.execute(text(
            "SELECT z.code, a.opened_at, a.evidence_count FROM alerts a JOIN zones z ON z.id = a.zone_id "
            "ORDER BY z.code")).all()
        assert rows == [("A", T0, 8), ("B", T0 + timedelta(seconds=1), 8), ("C", T0 + timedelta(seconds=2), 8)]


def test_a_post_and_a_report_at_the_same_instant_make_one_alert_with_both_rules(database_url, session_factory,
                                                                                   districts):
    """One incident, one alert, under concurrency: a post worker and a utility's API worker feed two different
    rules of one category in one zone at the same instant, each firing on its own evidence. The zone lock makes
    the second wait and join the first one's alert; the unique index on unresolved (zone, category) backs it."""
    rules = {"rules": [
        {"name": "outage_posts", "categories": ["power_outage"], "sources": ["post"], "layer": "district",
         "window": "1h", "min_count": 1},
        {"name": "outage_reports", "categories": ["power_outage"], "sources": ["utility_report"],
         "layer": "district", "immediate": True}]}
    plan = [("ABC"[r % 3], T0 + timedelta(seconds=r)) for r in range(ROUNDS)]
    _run(outage_post_process, database_url, rules, plan, other=report_process)
    with session_factory() as s:
        rows = s.execute(text(
            "SELECT z.code, a.state, a.opened_at, a.evidence_count, "
            "       (SELECT array_agg(ar.rule ORDER BY ar.rule) FROM alert_rules ar WHERE ar.alert_id = a.id) "
            "FROM alerts a JOIN zones z ON z.id = a.zone_id ORDER BY z.code")).all()
        assert [tuple(r) for r in rows] == [
            (code, "open", T0 + timedelta(seconds=i), 2 * ROUNDS // 3, ["outage_posts", "outage_reports"])
            for i, code in enumerate("ABC")]
        kinds = s.execute(text("SELECT kind, count(*) FROM outbox_events GROUP BY kind")).all()
        assert kinds == [("opened", 3)]
