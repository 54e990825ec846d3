"""A sweeper pass reaches every unresolved alert, a chunk per transaction: the oldest ones staying open
must not hide the rest (a single LIMIT-ed pass never reached alert number limit + 1)."""

from datetime import UTC, datetime, timedelta

import pytest

from alerts import sweeper
from alerts.rules import parse_rules
from db.session import transaction
from tests.integration.engine_helpers import events, feed, zone_matches

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
RULES = parse_rules({"rules": [
    {"name": "gas", "categories": ["gas_leak"], "sources": ["utility_report"], "layer": "district",
     "immediate": True, "severity": "critical", "escalate_after": "5m"},
    {"name": "gas_precinct", "categories": ["gas_leak"], "sources": ["utility_report"], "layer": "precinct",
     "immediate": True, "severity": "critical", "escalate_after": "5m"},
]})


def open_alerts(session_factory) -> list[int]:
    """Unacknowledged alerts in districts A, B and C and precinct P1, opened at T0."""
    opened = []
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        for zone in "ABC":
            opened += [c.alert_id for c in feed(s, rules=RULES, zones=zones, source="utility_report",
                                                 category="gas_leak", zone=zone, author="utility:1", at=T0)
                       if c.kind == "opened"]
    return sorted(set(opened))


def test_one_pass_in_chunks_ticks_every_alert(session_factory, districts):
    alerts = open_alerts(session_factory)
    assert len(alerts) == 4  # A, B, C and P1
    result = sweeper.sweep_pass(session_factory, rules=RULES, now=T0 + timedelta(minutes=6), chunk=2)
    assert sorted(result.escalation_ticks) == alerts
    assert result.swept == 4
    with session_factory() as s:
        ticked = sorted({e["alert_id"] for e in events(s) if e["kind"] == "escalation_tick"})
    assert ticked == alerts


def test_a_single_limited_sweep_stops_at_its_limit(session_factory, districts):
    """What a pass was before: the same oldest alerts each time, the rest never reached."""
    alerts = open_alerts(session_factory)
    for minutes in (6, 11):
        with transaction(session_factory) as s:
            sweeper.sweep(s, rules=RULES, now=T0 + timedelta(minutes=minutes), limit=2)
    with session_factory() as s:
        ticked = sorted({e["alert_id"] for e in events(s) if e["kind"] == "escalation_tick"})
    assert ticked == alerts[:2]
    with transaction(session_factory) as s:  # the cursor takes the next ones
        result = sweeper.sweep(s, rules=RULES, now=T0 + timedelta(minutes=11), limit=2, after_id=alerts[1])
    assert sorted(result.escalation_ticks) == alerts[2:] and result.last_id == alerts[-1]
