"""bench.history: the day of history the latency benchmarks start from is whole, and out of the run's way."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

pytestmark = [pytest.mark.integration, pytest.mark.committing]


def test_history_is_resolved_alerts_with_all_they_leave_and_nothing_pending(clean_db, districts, database_url):
    from bench import history

    before = datetime.now(UTC)
    history.seed(database_url, rule="gas_leak_report", category="gas_leak", alerts=30)
    now = datetime.now(UTC)
    with clean_db.connect() as conn:
        def one(sql):
            return conn.execute(text(sql)).one()

        zones = one("SELECT count(*) FROM zones")[0]
        assert 1 < zones < 30
        assert one("SELECT count(*), count(*) FILTER (WHERE state = 'resolved'), count(DISTINCT zone_id) "
                   "FROM alerts") == (30, 30, zones)  # every zone in turn
        assert one("SELECT max(cooldown_until) FROM alerts")[0] < now - timedelta(hours=12)
        assert one("SELECT count(*), max(observed_at) < :t FROM signals".replace(":t", "now() - interval '12 hours'")
                   ) == (30, True)  # in no rule's window
        for table, per_alert in (("observations", 1), ("observation_zones", 1), ("alert_evidence", 1),
                                 ("alert_rules", 1), ("alert_history", 2), ("alert_notifications", 2)):
            assert one(f"SELECT count(*) FROM {table}")[0] == 30 * per_alert, table
        # Published, so the relay has nothing to send, and the triggers were off: nothing queued for SMS.
        assert one("SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM outbox_events") == (60, 0)
        assert one("SELECT count(*) FROM sms_fanout_queue")[0] == 0
        # The baselines are folded up to this hour: the sweeper has no day to catch up on.
        hours = {t.replace(minute=0, second=0, microsecond=0) for t in (before, now)}
        count, through = one("SELECT count(*), min(through_hour) FROM zone_baselines")
        assert count == zones and through in hours
