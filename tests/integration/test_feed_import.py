"""Outage-feed imports against the real PostGIS: create, update, unchanged, and restored when an outage vanishes."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

pytestmark = pytest.mark.integration

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"
CALIFORNIA = (-125.0, 32.0, -114.0, 42.0)
ARIZONA = (-115.0, 31.0, -109.0, 37.5)
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def parsed(fmt, name):
    from ingest.reports.feeds import parse_feed

    return parse_feed(fmt, json.loads((FEEDS / f"{name}.json").read_text()))


@pytest.fixture
def run(session_factory, settings):
    """Import a fixture snapshot for a utility in one transaction, as the CLI does; returns the result."""
    from alerts.rules import load_rules
    from db.session import transaction
    from accounts import keys
    from ingest.reports import feed_import

    rules = load_rules(settings.rules_file)

    def do(fmt, snapshot, *, utility="PG&E", bbox=CALIFORNIA, now=T0):
        feed = snapshot if not isinstance(snapshot, str) else parsed(fmt, snapshot)
        with transaction(session_factory) as session:
            if keys.get_utility(session, name=utility) is None:
                keys.add_utility(session, name=utility)
            caller = feed_import.feed_caller(session, utility_name=utility)
            return feed_import.import_feed(session, caller=caller, feed=fmt, parsed=feed, rules=rules,
                                           jurisdiction_bbox=bbox, now=now, source="test")
    return do


def stored(session_factory, utility="PG&E"):
    from ingest.models import UtilityReport
    from accounts.models import Utility

    with session_factory() as session:
        rows = session.scalars(select(UtilityReport).join(Utility, Utility.id == UtilityReport.utility_id)
                               .where(Utility.name == utility)).all()
        return {r.external_id: r for r in rows}


def test_pge_snapshot_one_then_two_restores_the_vanished_outage(run, session_factory):
    first = run("pge", "pge_1")
    assert first.counts() == {"created": 3, "unchanged": 0, "updated": 0, "restored": 0, "skipped": 0, "rejected": 2}
    assert [(r.index, r.external_id) for r in first.rejected] == [(3, "900104"), (4, None)]
    reports = stored(session_factory)
    assert sorted(reports) == ["900101", "900102", "900103"]
    a = reports["900101"]
    assert (a.category, a.status, a.customers_affected, a.cause) == ("power_outage", "reported", 3, "STORM")
    assert a.started_at == datetime(2024, 2, 4, 3, 40, 51, tzinfo=UTC)
    assert reports["900102"].status == "restoring"

    second = run("pge", "pge_2", now=T0 + timedelta(minutes=15))
    assert second.counts() == {"created": 1, "unchanged": 1, "updated": 1, "restored": 1, "skipped": 0, "rejected": 1}
    reports = stored(session_factory)
    assert reports["900102"].status == "restored"  # gone from snapshot 2
    assert reports["900102"].updated_at == T0 + timedelta(minutes=15)
    a = reports["900101"]
    assert (a.status, a.customers_affected, a.version) == ("investigating", 5, 2)
    assert a.estimated_restore_at == datetime(2024, 2, 4, 17, 0, tzinfo=UTC)
    assert reports["900103"].version == 1 and reports["900105"].status == "reported"

    again = run("pge", "pge_2", now=T0 + timedelta(minutes=30))
    assert again.counts() == {"created": 0, "unchanged": 3, "updated": 0, "restored": 0, "skipped": 0, "rejected": 1}


def test_statuses_only_move_forward_and_restored_outages_do_not_reopen(run, session_factory):
    run("pge", "pge_1")
    run("pge", "pge_2", now=T0 + timedelta(minutes=15))
    back = run("pge", "pge_1", now=T0 + timedelta(minutes=30))  # the older snapshot again
    [refused] = [r for r in back.rejected if r.external_id == "900102"]
    assert "is restored; a closed report cannot reopen" in refused.reason
    reports = stored(session_factory)
    # 900101 goes back to 3 customers, but not back from investigating to reported.
    assert (reports["900101"].customers_affected, reports["900101"].status) == (3, "investigating")
    assert reports["900105"].status == "restored" and back.restored == 1


def test_restored_outage_is_a_history_version(run, session_factory):
    from ingest.models import UtilityReportHistory

    run("pge", "pge_1")
    run("pge", "pge_2", now=T0 + timedelta(minutes=15))
    report = stored(session_factory)["900102"]
    with session_factory() as session:
        history = session.scalars(select(UtilityReportHistory).where(UtilityReportHistory.report_id == report.id)
                                  .order_by(UtilityReportHistory.version)).all()
    assert [(h.version, h.status) for h in history] == [(1, "restoring"), (2, "restored")]


def test_az_derived_ids_update_and_restore(run, session_factory):
    assert run("az", "az_srp_1", utility="SRP", bbox=ARIZONA).counts()["created"] == 2
    second = run("az", "az_srp_2", utility="SRP", bbox=ARIZONA, now=T0 + timedelta(hours=1))
    assert (second.updated, second.restored, second.created) == (1, 1, 0)
    reports = stored(session_factory, "SRP")
    statuses = sorted((r.customers_affected, r.status) for r in reports.values())
    assert statuses == [(8, "restored"), (60, "reported")]


def test_az_outage_already_restored_when_first_seen_is_skipped(run, session_factory):
    result = run("az", "az_tep", utility="TEP", bbox=ARIZONA)
    assert (result.created, result.skipped) == (1, 1)
    [report] = stored(session_factory, "TEP").values()
    assert report.customers_affected == 181
    from ingest.reports.queries import footprint_geojson

    with session_factory() as session:
        assert footprint_geojson(session, report.id)["type"] == "Polygon"


def test_outages_outside_the_jurisdiction_are_rejected_with_the_reason(run, session_factory, settings):
    result = run("pge", "pge_1", bbox=settings.jurisdiction_bbox)  # the New York default
    assert result.created == 0 and len(result.rejected) == 5
    assert all("outside the jurisdiction" in r.reason for r in result.rejected if r.index in (0, 1, 2))
    assert stored(session_factory) == {}


def test_one_refused_outage_does_not_sink_the_others(run, session_factory):
    south_of_sacramento = (-125.0, 32.0, -114.0, 38.0)
    result = run("pge", "pge_1", bbox=south_of_sacramento)
    assert (result.created, len(result.rejected)) == (2, 3)
    [refused] = [r for r in result.rejected if r.index == 1]
    assert refused.external_id == "900102" and "lat 38.58000) is outside the jurisdiction" in refused.reason
    assert sorted(stored(session_factory)) == ["900101", "900103"]


def test_chunks_larger_than_one_savepoint_all_land(run, session_factory, monkeypatch):
    from ingest.reports import feed_import

    monkeypatch.setattr(feed_import, "CHUNK", 2)  # 3 outages: a full chunk and a partial one
    result = run("pge", "pge_1", bbox=(-125.0, 32.0, -114.0, 38.0))
    assert (result.created, len(result.rejected)) == (2, 3)
    result = run("pge", "pge_2", now=T0 + timedelta(minutes=15))
    # 900102 was refused, so it has no report to restore now that it is gone.
    assert (result.created, result.updated, result.unchanged, result.restored) == (1, 1, 1, 0)


def test_a_cut_off_snapshot_restores_nothing_until_a_complete_one(run, session_factory):
    run("pge", "pge_1")
    cut = parsed("pge", "pge_2")
    cut.complete = False  # as when PG&E's 2,000-outage page cap is hit
    result = run("pge", cut, now=T0 + timedelta(minutes=15))
    assert result.restored == 0 and not result.restore_checked
    assert stored(session_factory)["900102"].status == "restoring"
    # The next complete snapshot still remembers 900102 from before the cut-off one.
    result = run("pge", "pge_2", now=T0 + timedelta(minutes=30))
    assert result.restored == 1 and stored(session_factory)["900102"].status == "restored"


def test_feeds_of_different_utilities_do_not_restore_each_other(run, session_factory):
    run("pge", "pge_1", utility="PG&E")
    result = run("pge", "pge_2", utility="Other Power")
    assert result.restored == 0 and result.created == 3
    assert stored(session_factory)["900102"].status == "restoring"


@pytest.mark.committing  # the CLI opens its own engine
def test_cli_import_feed_prints_counts_and_rejections(session_factory, database_url, settings):
    from typer.testing import CliRunner

    from db.session import transaction
    from accounts import keys
    from tocsin.cli import app

    with transaction(session_factory) as session:
        keys.add_utility(session, name="PG&E")
    env = {"TOCSIN_DATABASE_URL": database_url, "TOCSIN_RULES_FILE": str(settings.rules_file)}
    runner = CliRunner()
    refused = runner.invoke(app, ["reports", "import-feed", "--format", "pge", str(FEEDS / "pge_1.json"),
                                  "--utility", "PG&E", "--bbox", "feed"], env=env)
    assert refused.exit_code == 2
    assert "3 of 3 outages in pge_1.json lie outside this Tocsin's jurisdiction" in refused.output
    assert "--outside-jurisdiction" in refused.output
    result = runner.invoke(app, ["reports", "import-feed", "--format", "pge", str(FEEDS / "pge_1.json"),
                                 "--utility", "PG&E", "--bbox", "feed", "--outside-jurisdiction"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == (
        "created 3, unchanged 0, updated 0, restored 0, skipped 0, rejected 2")
    assert "rejected index 3 (900104): " in result.output and "rejected index 4 (no id): F_OUTAGE_ID" in result.output

    result = runner.invoke(app, ["reports", "import-feed", "--format", "pge", str(FEEDS / "pge_2.json"),
                                 "--utility", "PG&E", "--bbox", "-125,32,-114,42"], env=env)
    assert result.exit_code == 0, result.output
    assert "restored 1" in result.output.strip().splitlines()[-1]


@pytest.mark.parametrize("args, needle", [
    (["--format", "csv", str(FEEDS / "pge_1.json"), "--utility", "PG&E"], "'csv' is not one of"),
    (["--format", "pge", str(FEEDS / "pge_1.json"), "--utility", "Nobody"], "utility 'Nobody' does not exist"),
    (["--format", "pge", str(FEEDS / "pge_1.json"), "--utility", "PG&E", "--bbox", "1,2,3"], "--bbox '1,2,3'"),
    (["--format", "az", str(FEEDS / "pge_1.json"), "--utility", "PG&E"], "'outages' array"),
    (["--format", "pge", str(FEEDS / "missing.json"), "--utility", "PG&E"], "missing.json"),
])
@pytest.mark.committing  # the CLI opens its own engine
def test_cli_errors_name_the_problem(session_factory, database_url, settings, args, needle):
    from typer.testing import CliRunner

    from db.session import transaction
    from accounts import keys
    from tocsin.cli import app

    with transaction(session_factory) as session:
        keys.add_utility(session, name="PG&E")
    env = {"TOCSIN_DATABASE_URL": database_url, "TOCSIN_RULES_FILE": str(settings.rules_file)}
    result = CliRunner().invoke(app, ["reports", "import-feed", *args], env=env)
    assert result.exit_code == 2 and needle in result.output, result.output


@pytest.mark.committing  # the CLI opens its own engine
def test_cli_import_feed_shows_progress_on_stderr_and_its_summary_once(session_factory, database_url, settings,
                                                                       tmp_path):
    """In a process of its own, as run from a shell or CI: its logging configured as deployed, stderr a pipe."""
    import os
    import subprocess
    import sys

    from accounts import keys
    from db.session import transaction
    from tests.integration.progress_support import progress_lines

    with transaction(session_factory) as session:
        keys.add_utility(session, name="PG&E")
    template = json.loads((FEEDS / "pge_1.json").read_text())[0]
    snapshot = tmp_path / "storm.json"
    snapshot.write_text(json.dumps([
        {**template, "F_OUTAGE_ID": 700000 + i, "OUTAGE_LATITUDE": 37.5 + i * 0.001, "OUTAGE_LONGITUDE": -122.0}
        for i in range(250)]))
    env = {**os.environ, "TOCSIN_DATABASE_URL": database_url, "TOCSIN_RULES_FILE": str(settings.rules_file),
           "TOCSIN_LOG_LEVEL": "INFO"}
    done = subprocess.run([sys.executable, "-m", "tocsin.cli", "reports", "import-feed", "--format", "pge",
                           str(snapshot), "--utility", "PG&E", "--bbox", "-125,32,-114,42"],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    # Outages are applied 100 at a time: a line at the start, one per chunk, and the final one; nothing else
    # on stderr (the counts once logged there too, and read as a second summary).
    assert [line for line in done.stderr.splitlines() if not line.startswith("outages: ")] == []
    assert progress_lines(done.stderr, "outages") == [
        "outages: 0/250 (0%)", "outages: 100/250 (40%)", "outages: 200/250 (80%)", "outages: 250/250 (100%) in …"]
    assert done.stdout == "created 250, unchanged 0, updated 0, restored 0, skipped 0, rejected 0\n"
