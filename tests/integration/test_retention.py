"""Retention (`tocsin purge`, the worker's purge role) against the real PostGIS: hand-built rows of known ages go
or stay, and nothing an unresolved alert points to is deleted."""

import re
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from db.session import transaction
from tocsin import retention

pytestmark = pytest.mark.integration

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
# The shipped defaults: posts 30 days, reports and resolved alerts 365, deliveries 90, audit 365.
POLICY = retention.Policy(posts_days=30, reports_days=365, alerts_days=365, deliveries_days=90, audit_days=365)


def ago(days: float, now: datetime = NOW) -> datetime:
    return now - timedelta(days=days)


def zone_id(session, code: str = "A") -> int:
    return session.execute(text("SELECT z.id FROM zones z JOIN zone_layers l ON l.id = z.layer_id "
                                "WHERE l.name = 'district' AND z.code = :c"), {"c": code}).scalar_one()


def observation(session, *, source: str, at: datetime, category: str = "flood") -> int:
    """A located observation in district A with its zone link and signal, as the pipeline writes them."""
    oid = session.execute(text("""
        INSERT INTO observations (source, external_id, text, category, confidence, observed_at, received_at, geom,
                                  uncertainty_m, geotag_method)
        VALUES (:source, :ext, 'water in the street', :category, 0.9, :at, :at,
                ST_SetSRID(ST_MakePoint(-73.975, 40.725), 4326), 25, 'coordinates') RETURNING id"""),
        {"source": source, "ext": uuid.uuid4().hex, "category": category, "at": at}).scalar_one()
    zid = zone_id(session)
    session.execute(text("INSERT INTO observation_zones (observation_id, zone_id, weight) VALUES (:o, :z, 1)"),
                    {"o": oid, "z": zid})
    session.execute(text("""
        INSERT INTO signals (observation_id, zone_id, source, category, confidence, weight, observed_at)
        VALUES (:o, :z, :source, :category, 0.9, 1, :at)"""),
        {"o": oid, "z": zid, "source": source, "category": category, "at": at})
    return oid


def post(session, *, age_days: float, now: datetime = NOW) -> int:
    return observation(session, source="post", at=ago(age_days, now))


def report(session, *, age_days: float, versions: int = 1, history: bool = True) -> tuple[int, list[int]]:
    """A utility report last changed `age_days` ago, with one observation and history row per version (no
    history rows: as stored before the history table existed)."""
    at = ago(age_days)
    utility = session.execute(text("INSERT INTO utilities (name) VALUES (:n) RETURNING id"),
                              {"n": f"Utility {uuid.uuid4().hex[:8]}"}).scalar_one()
    obs = [observation(session, source="utility_report", at=at, category="power_outage") for _ in range(versions)]
    rid = session.execute(text("""
        INSERT INTO utility_reports (observation_id, utility_id, external_id, category, status, footprint, body_hash,
                                     version, created_at, updated_at)
        VALUES (:obs, :u, 'X1', 'power_outage', 'active', ST_SetSRID(ST_MakePoint(-73.975, 40.725), 4326), 'h',
                :v, :at, :at) RETURNING id"""), {"obs": obs[-1], "u": utility, "v": versions, "at": at}).scalar_one()
    for version, oid in enumerate(obs if history else [], start=1):
        session.execute(text("""
            INSERT INTO utility_report_history (report_id, version, observation_id, status, at)
            VALUES (:r, :v, :o, 'active', :at)"""), {"r": rid, "v": version, "o": oid, "at": at})
    return rid, obs


def alert(session, *, category: str, opened_days: float, resolved_days: float | None = None,
          state: str | None = None, evidence: tuple[int, ...] = (), event_published: bool = True,
          fanout_planned: bool = True, delivery_status: str = "delivered") -> int:
    """An alert with what the engine and dispatch write for it: history, rule, evidence, one outbox event
    (published, planned for SMS), its notification-log row and one SMS delivery, all as old as it opened."""
    opened = ago(opened_days)
    resolved = ago(resolved_days) if resolved_days is not None else None
    state = state or ("resolved" if resolved else "open")
    seq = session.execute(text("SELECT nextval('ack_code_seq')")).scalar_one()
    aid = session.execute(text("""
        INSERT INTO alerts (rule, zone_id, category, severity, state, ack_code, evidence_count, distinct_authors,
                            opened_at, updated_at, last_evidence_at, resolved_at)
        VALUES ('r', :z, :c, 'major', :state, :ack, :n, :n, :opened, :updated, :opened, :resolved) RETURNING id"""),
        {"z": zone_id(session), "c": category, "state": state, "ack": f"T{seq}", "n": len(evidence),
         "opened": opened, "updated": resolved or opened, "resolved": resolved}).scalar_one()
    params = {"a": aid, "z": zone_id(session), "at": opened, "resolved": resolved, "e": uuid.uuid4()}
    session.execute(text("""
        INSERT INTO alert_history (alert_id, at, from_state, to_state, severity, actor, reason)
        VALUES (:a, :at, NULL, 'open', 'major', 'rules', 'opened')"""), params)
    if resolved:
        session.execute(text("""
            INSERT INTO alert_history (alert_id, at, from_state, to_state, severity, actor, reason)
            VALUES (:a, :resolved, 'open', 'resolved', 'major', 'sweeper', 'quiet')"""), params)
    session.execute(text("""
        INSERT INTO alert_rules (alert_id, rule, zone_id, severity, first_fired_at, last_fired_at)
        VALUES (:a, 'r', :z, 'major', :at, :at)"""), params)
    for oid in evidence:
        session.execute(text("INSERT INTO alert_evidence (alert_id, observation_id, added_at) VALUES (:a, :o, :at)"),
                        {**params, "o": oid})
    outbox_id = session.execute(text("""
        INSERT INTO outbox_events (event_id, alert_id, kind, payload, created_at, next_attempt_at, published_at)
        VALUES (:e, :a, 'opened', '{}', :at, :at, :published) RETURNING id"""),
        {**params, "published": opened if event_published else None}).scalar_one()
    if fanout_planned:  # the SMS planner deletes an event's queue row (written by a trigger) once planned
        session.execute(text("DELETE FROM sms_fanout_queue WHERE outbox_id = :id"), {"id": outbox_id})
    session.execute(text("""
        INSERT INTO alert_notifications (alert_id, at, reason, kind, state, severity, event_id)
        VALUES (:a, :at, 'first_notification', 'opened', 'open', 'major', :e)"""), params)
    session.execute(text("""
        INSERT INTO deliveries (event_id, alert_id, body, status, next_attempt_at, created_at, updated_at)
        VALUES (:e, :a, 'Tocsin: flood in District A', :status, :at, :at, :at)"""),
        {**params, "status": delivery_status})
    return aid


def ids(session, sql: str, **params) -> list:
    return sorted(session.execute(text(sql), params).scalars())


def count(session, table: str, where: str = "TRUE", **params) -> int:
    return session.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one()


def purge(session_factory, **kwargs) -> retention.PurgeCounts:
    return retention.purge(session_factory, policy=POLICY, now=NOW, **kwargs)


def test_old_posts_go_with_their_links_signals_and_feedback_young_ones_stay(session_factory, districts):
    with transaction(session_factory) as session:
        old, young = post(session, age_days=31), post(session, age_days=29)
        session.execute(text("""
            INSERT INTO observation_feedback (observation_id, kind, actor, created_at)
            VALUES (:o, 'not_incident', 'op', :at)"""), {"o": old, "at": ago(20)})
    counts = purge(session_factory)
    assert counts.rows[("posts", "observations")] == 1
    assert counts.rows[("posts", "observation_feedback")] == 1
    with session_factory() as session:
        assert ids(session, "SELECT id FROM observations") == [young]
        assert ids(session, "SELECT observation_id FROM observation_zones") == [young]
        assert ids(session, "SELECT observation_id FROM signals") == [young]
        assert count(session, "observation_feedback") == 0


def test_reports_unchanged_for_the_period_go_with_every_version(session_factory, districts):
    with transaction(session_factory) as session:
        old, old_obs = report(session, age_days=366, versions=2)
        young, young_obs = report(session, age_days=200)
    counts = purge(session_factory)
    assert counts.rows[("reports", "utility_reports")] == 1
    assert counts.rows[("reports", "utility_report_history")] == 2
    assert counts.rows[("reports", "observations")] == 2
    with session_factory() as session:
        assert ids(session, "SELECT id FROM utility_reports") == [young]
        assert ids(session, "SELECT report_id FROM utility_report_history") == [young]
        assert ids(session, "SELECT id FROM observations") == young_obs  # both old versions' are gone
        assert count(session, "signals", "observation_id = ANY(:o)", o=old_obs) == 0


def test_a_resolved_alert_past_the_period_goes_with_its_history_evidence_and_deliveries(session_factory, districts):
    with transaction(session_factory) as session:
        evidence = post(session, age_days=5)
        old = alert(session, category="flood", opened_days=367, resolved_days=366, evidence=(evidence,))
        young = alert(session, category="gas_leak", opened_days=101, resolved_days=100, evidence=(evidence,))
    counts = purge(session_factory)
    with session_factory() as session:
        assert ids(session, "SELECT id FROM alerts") == [young]
        for table in ("alert_history", "alert_evidence", "alert_rules", "alert_notifications", "deliveries",
                      "outbox_events"):
            assert count(session, table, "alert_id = :a", a=old) == 0, table
        # The young alert keeps its history, evidence and log, but its 101-day-old SMS and event are past the
        # 90 days deliveries are kept.
        assert count(session, "alert_history", "alert_id = :a", a=young) == 2
        assert count(session, "alert_evidence", "alert_id = :a", a=young) == 1
        assert count(session, "alert_notifications", "alert_id = :a", a=young) == 1
        assert count(session, "deliveries", "alert_id = :a", a=young) == 0
        assert count(session, "outbox_events", "alert_id = :a", a=young) == 0
        assert ids(session, "SELECT id FROM observations") == [evidence]  # a 5-day-old post: the posts' period
    assert counts.rows[("alerts", "alerts")] == 1
    assert counts.rows[("alerts", "alert_history")] == 2
    assert counts.table("deliveries") == 2 and counts.table("outbox_events") == 2


@pytest.mark.parametrize("state", ["open", "acknowledged"])
def test_nothing_an_unresolved_alert_points_to_goes(session_factory, districts, state):
    with transaction(session_factory) as session:
        held_post, stray_post = post(session, age_days=400), post(session, age_days=400)
        held_report, versions = report(session, age_days=400, versions=2)
        bare_report, [bare] = report(session, age_days=400, history=False)
        stray_report, _ = report(session, age_days=400)
        # Its evidence: an old post, the first version of an old report (the report has moved on since) and
        # the observation of a report without history.
        held = alert(session, category="flood", opened_days=400, state=state,
                     evidence=(held_post, versions[0], bare))
    counts = purge(session_factory)
    with session_factory() as session:
        assert ids(session, "SELECT id FROM alerts") == [held]
        assert ids(session, "SELECT id FROM utility_reports") == sorted([held_report, bare_report])
        assert ids(session, "SELECT id FROM observations") == sorted([held_post, *versions, bare])
        assert count(session, "utility_report_history", "report_id = :r", r=held_report) == 2
        for table, n in (("alert_history", 1), ("alert_evidence", 3), ("alert_rules", 1), ("alert_notifications", 1),
                         ("deliveries", 1), ("outbox_events", 1)):
            assert count(session, table, "alert_id = :a", a=held) == n, table
        assert count(session, "signals", "observation_id = :o", o=held_post) == 1
        # What the alert does not point to went in the same purge.
        assert stray_post not in ids(session, "SELECT id FROM observations")
        assert stray_report not in ids(session, "SELECT id FROM utility_reports")
    assert counts.rows[("posts", "observations")] == 1 and counts.rows[("reports", "utility_reports")] == 1


def test_an_alert_whose_event_or_sms_is_not_sent_yet_stays(session_factory, districts):
    with transaction(session_factory) as session:
        kept = [alert(session, category="a", opened_days=401, resolved_days=400, event_published=False),
                alert(session, category="b", opened_days=401, resolved_days=400, fanout_planned=False),
                alert(session, category="c", opened_days=401, resolved_days=400, delivery_status="pending"),
                alert(session, category="d", opened_days=401, resolved_days=400, delivery_status="sending")]
        gone = alert(session, category="e", opened_days=401, resolved_days=400, delivery_status="failed")
    purge(session_factory)
    with session_factory() as session:
        assert ids(session, "SELECT id FROM alerts") == kept
        assert count(session, "alerts", "id = :a", a=gone) == 0
        # An event not yet sent is never deleted, nor an SMS still to send; sent ones of the same alerts go.
        assert ids(session, "SELECT alert_id FROM outbox_events") == kept[:2]
        assert ids(session, "SELECT alert_id FROM deliveries") == kept[2:]
        assert ids(session, "SELECT o.alert_id FROM sms_fanout_queue q JOIN outbox_events o ON o.id = q.outbox_id"
                   ) == [kept[1]]


def test_ended_silences_and_superseded_feed_imports_go(session_factory):
    with transaction(session_factory) as session:
        silence = text("""
            INSERT INTO silences (matchers, starts_at, ends_at, created_by, created_at, expired_at)
            VALUES ('{"category": "flood"}', :starts, :ends, 'op', :starts, :expired) RETURNING id""")
        ended_long_ago = session.execute(silence, {"starts": ago(400), "ends": ago(380), "expired": None}).scalar_one()
        expired_long_ago = session.execute(silence, {"starts": ago(400), "ends": ago(-30), "expired": ago(370)}
                                           ).scalar_one()
        ended_lately = session.execute(silence, {"starts": ago(300), "ends": ago(200), "expired": None}).scalar_one()
        utility = session.execute(text("INSERT INTO utilities (name) VALUES ('Feeds Co') RETURNING id")).scalar_one()
        feed = text("""
            INSERT INTO feed_imports (utility_id, feed, imported_at, external_ids)
            VALUES (:u, :feed, :at, '{}') RETURNING id""")
        imports = {(f, d): session.execute(feed, {"u": utility, "feed": f, "at": ago(d)}).scalar_one()
                   for f, d in (("pge", 500), ("pge", 450), ("pge", 400), ("az", 10))}
    counts = purge(session_factory)
    with session_factory() as session:
        assert ids(session, "SELECT id FROM silences") == [ended_lately]
        # The latest import of a feed stays however old: the next import restores what it saw and is gone.
        assert ids(session, "SELECT id FROM feed_imports") == sorted([imports["pge", 400], imports["az", 10]])
        assert {ended_long_ago, expired_long_ago}.isdisjoint(ids(session, "SELECT id FROM silences"))
    assert counts.rows[("audit", "silences")] == 2 and counts.rows[("audit", "feed_imports")] == 2


def test_batches_delete_everything_and_a_dry_run_deletes_nothing(session_factory, districts):
    with transaction(session_factory) as session:
        old = [post(session, age_days=40) for _ in range(7)]
        young = post(session, age_days=1)
    batches = []
    dry = purge(session_factory, dry_run=True, limit=3, progress=lambda: batches.append(1))
    assert dry.rows[("posts", "observations")] == 7
    with session_factory() as session:
        assert count(session, "observations") == 8 and count(session, "signals") == 8
    real = purge(session_factory, limit=3)
    assert real.rows == dry.rows and real.complete
    with session_factory() as session:
        assert ids(session, "SELECT id FROM observations") == [young]
        assert set(old).isdisjoint(ids(session, "SELECT id FROM observations"))
    # 7 posts in batches of 3 are three batches; every other step is one.
    assert len(batches) == len(retention.STEPS) - 1 + 3


def test_a_purge_told_to_stop_ends_between_batches(session_factory, districts):
    with transaction(session_factory) as session:
        for _ in range(5):
            post(session, age_days=40)
    stop = threading.Event()

    def progress() -> None:  # stop once the first batch of posts is gone
        with session_factory() as session:
            if count(session, "observations") < 5:
                stop.set()

    counts = purge(session_factory, limit=2, stop=stop, progress=progress)
    assert not counts.complete
    assert counts.rows[("posts", "observations")] == 2
    with session_factory() as session:
        assert count(session, "observations") == 3


def test_the_worker_loop_purges_when_due(session_factory, districts):
    day = 86400.0
    with transaction(session_factory) as session:
        first = post(session, age_days=40)
    done = retention.purge_if_due(session_factory, policy=POLICY, now=NOW, last_run=None, interval_s=day)
    assert done is not None and done.rows[("posts", "observations")] == 1  # first as it starts
    with transaction(session_factory) as session:
        second = post(session, age_days=40)
    for last_run, interval in ((NOW - timedelta(hours=23), day), (None, 0.0)):  # not yet; disabled
        assert retention.purge_if_due(session_factory, policy=POLICY, now=NOW, last_run=last_run,
                                      interval_s=interval) is None
        with session_factory() as session:
            assert ids(session, "SELECT id FROM observations") == [second]
    done = retention.purge_if_due(session_factory, policy=POLICY, now=NOW, last_run=NOW - timedelta(hours=24),
                                  interval_s=day)
    assert done is not None and done.rows[("posts", "observations")] == 1
    with session_factory() as session:
        assert count(session, "observations", "id IN (:a, :b)", a=first, b=second) == 0


def test_the_purge_role_purges_as_it_starts_then_waits_for_the_interval(session_factory, districts):
    with transaction(session_factory) as session:
        first = post(session, age_days=40)
    stop, beats, later = threading.Event(), [], []

    def clock() -> datetime:
        if beats:  # the second pass: a post that went old since, which must wait for the next day
            with transaction(session_factory) as session:
                later.append(post(session, age_days=40))
            stop.set()
        return NOW

    retention.run_forever(session_factory, policy=POLICY, clock=clock, stop=stop, interval_s=86400,
                          heartbeat=lambda *a, **k: beats.append(a), check_s=0)
    with session_factory() as session:
        assert ids(session, "SELECT id FROM observations") == later
        assert first not in later
    assert beats and all(b == ("ok",) for b in beats)


@pytest.mark.committing
def test_cli_dry_run_changes_nothing_and_prints_counts(session_factory, districts, settings):
    from typer.testing import CliRunner

    from tocsin.cli import app

    env = {"TOCSIN_DATABASE_URL": settings.database_url, "TOCSIN_LOG_LEVEL": "WARNING"}

    def cli(*args: str):
        return CliRunner().invoke(app, ["purge", *args], env=env)

    now = datetime.now(UTC)
    with transaction(session_factory) as session:
        post(session, age_days=40, now=now)
        young = post(session, age_days=1, now=now)
    r = cli("--dry-run")
    assert r.exit_code == 0, r.output
    assert re.search(r"^posts\s+observations\s+1$", r.output, re.M), r.output
    assert re.search(r"^alerts\s+alerts\s+0$", r.output, re.M), r.output
    assert "would delete 1 row (dry run: nothing was deleted)" in r.output
    with session_factory() as session:
        assert count(session, "observations") == 2 and count(session, "signals") == 2
    r = cli("--posts-days", "41")  # an override: the 40-day-old post is young enough
    assert r.exit_code == 0, r.output
    assert re.search(r"^posts\s+observations\s+0$", r.output, re.M), r.output
    r = cli()
    assert r.exit_code == 0, r.output
    assert re.search(r"^posts\s+observations\s+1$", r.output, re.M) and "deleted 1 row\n" in r.output, r.output
    with session_factory() as session:
        assert ids(session, "SELECT id FROM observations") == [young]
    r = cli("--posts-days", "0")
    assert r.exit_code == 2 and "--posts-days 0 must be a positive number of days" in r.output
