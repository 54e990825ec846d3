"""A second demo run within an hour shows its alerts again (scripts/demo_feed.py --end-cooldowns),
against the real PostGIS: the first run's alert, resolved, holds its rule's cooldown in the zone (the shipped rules, in the test layer)."""

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from alerts import service as alert_service
from db.session import transaction
from tests.integration.engine_helpers import feed, zone_matches
from tests.integration.test_incidents import default_rules

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def _demo_feed():
    path = Path(__file__).resolve().parents[2] / "scripts" / "demo_feed.py"
    spec = importlib.util.spec_from_file_location("demo_feed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(session_factory, zones, rules, start, tag) -> list:
    """A demo run: five flood posts in zone A from five people; returns the alerts it left open."""
    for k in range(5):
        with transaction(session_factory) as s:
            feed(s, rules=rules, zones=zones, source="post", category="flood", zone="A", author=f"{tag}{k}",
                 at=start + k * M)
    with session_factory() as s:
        return s.execute(text("SELECT id FROM alerts WHERE state <> 'resolved'")).scalars().all()


@pytest.mark.parametrize("end_cooldowns", [False, True])
def test_a_second_run_within_the_cooldown(session_factory, districts, end_cooldowns):
    rules = default_rules()  # the shipped rules: flood posts cool down for 30 minutes
    with transaction(session_factory) as s:
        zones = zone_matches(s)
    [first] = _run(session_factory, zones, rules, T0, "a")
    with transaction(session_factory) as s:
        alert_service.resolve(s, alert_id=first, actor="operator:demo", note=None, now=T0 + 20 * M, rules=rules)
    if end_cooldowns:
        with transaction(session_factory) as s:
            assert _demo_feed().end_cooldowns(s, T0 + 30 * M) >= 1
    again = _run(session_factory, zones, rules, T0 + 30 * M, "b")
    assert (len(again) == 1) is end_cooldowns
