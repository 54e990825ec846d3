"""Event time against the real PostGIS: late or old evidence never joins an alert outside its window and
never moves an alert's times backwards (the hand-drawn districts, the shipped rules in that layer)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from alerts import service as alert_service
from db.session import transaction
from tests.integration.engine_helpers import add_observation, feed, zone_matches
from tests.integration.test_incidents import default_rules

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def _alert(session):
    return session.execute(text(
        "SELECT id, opened_at, updated_at, last_evidence_at, expires_at, evidence_count FROM alerts")).one()


def _late(session_factory, rules, zones, *, at, now):
    """A flood post in zone A observed at `at`, arriving at `now`, evaluated at its own time (the post path)."""
    with transaction(session_factory) as s:
        oid = add_observation(s, source="post", category="flood", zone="A", author="dee", observed_at=at)
        signal = alert_service.SignalIn(observation_id=oid, source="post", category="flood", confidence=0.9,
                                        author_key="dee", observed_at=at, zones=[zones["A"], zones["P1"]])
        alert_service.observe_many(s, signals=[signal], rules=rules, now=now, event_time=True)


def _open_flood(session_factory, rules):
    with transaction(session_factory) as s:
        zones = zone_matches(s)
    for k, author in enumerate(("ann", "bob", "cy", "dan", "eve")):
        with transaction(session_factory) as s:
            feed(s, rules=rules, zones=zones, source="post", category="flood", zone="A", author=author, at=T0 + k * M)
    with session_factory() as s:
        return zones, _alert(s)


def test_old_evidence_neither_joins_nor_moves_times_back(session_factory, districts):
    rules = default_rules()
    zones, before = _open_flood(session_factory, rules)
    # Half an hour before the alert opened: outside flood_posts' 10-minute window of its opening.
    _late(session_factory, rules, zones, at=T0 - 30 * M, now=T0 + 20 * M)
    with session_factory() as s:
        after = _alert(s)
        linked = s.execute(text("SELECT count(*) FROM alert_evidence WHERE alert_id = :id"),
                           {"id": before.id}).scalar_one()
    assert after == before
    assert linked == 5


def test_late_evidence_inside_the_window_joins_without_moving_times_back(session_factory, districts):
    rules = default_rules()
    zones, before = _open_flood(session_factory, rules)
    # Observed five minutes before the opening, evaluated at its own time: it belongs to the incident.
    _late(session_factory, rules, zones, at=T0 - 5 * M, now=T0 + 20 * M)
    with session_factory() as s:
        after = _alert(s)
    assert after.evidence_count == before.evidence_count + 1
    assert after.updated_at == before.updated_at and after.last_evidence_at == before.last_evidence_at
    assert after.expires_at == before.expires_at
