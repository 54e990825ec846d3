"""evaluate.sweep_due: the earliest moment a sweep of an alert can do anything, from hand-worked cases."""

from datetime import UTC, datetime, timedelta

from alerts.evaluate import WindowStats, sweep_due
from alerts.rules import parse_rules

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
M = timedelta(minutes=1)
FLOOD, GAS = parse_rules({"rules": [
    {"name": "flood", "categories": ["flood"], "layer": "nta", "window": "10m", "min_count": 3,
     "quiet_period": "5m", "repeat_interval": "30m", "escalate_after": "15m", "expire_after": "6h"},
    {"name": "gas", "categories": ["gas_leak"], "layer": "nta", "immediate": True, "expire_after": "45m",
     "quiet_period": "20m", "repeat_interval": None},
]})


def due(**kw):
    args = {"expires_at": None, "live": [], "quiet_since": None, "state": "open", "rule": None,
            "last_notified": None, "opened_at": T0, "escalation_ticks": 0}
    return sweep_due(**{**args, **kw})


def test_nothing_but_a_change_can_make_a_bare_alert_due():
    assert due() is None
    assert due(rule=GAS, state="acknowledged", last_notified=T0) is None  # no repeat, no escalation, no window


def test_the_earliest_of_expiry_window_quiet_repeat_and_escalation():
    live = [(FLOOD, WindowStats(4.0, 3, 4, oldest=T0 + 2 * M))]
    # expiry 6h, oldest leaves the 10m window at 12m, repeat at 30m, escalation tick 1 at 15m
    assert due(expires_at=T0 + 360 * M, live=live, rule=FLOOD, last_notified=T0) == T0 + 12 * M
    # quiet since 1m: resolvable at 6m, before the oldest signal leaves
    assert due(expires_at=T0 + 360 * M, live=live, quiet_since=T0 + M, rule=FLOOD, last_notified=T0) == T0 + 6 * M
    # an empty window: the escalation tick (two sent already: the third at 45m) or the repeat (30m)
    empty = [(FLOOD, WindowStats(0.0, 0, 0))]
    assert due(live=empty, rule=FLOOD, last_notified=T0 + 20 * M, escalation_ticks=2) == T0 + 45 * M
    assert due(live=empty, rule=FLOOD, last_notified=T0, escalation_ticks=2) == T0 + 30 * M


def test_an_immediate_rules_evidence_lives_until_its_expiry_and_acknowledgement_stops_repeats_and_ticks():
    live = [(GAS, WindowStats(1.0, 1, 1, oldest=T0))]
    assert due(live=live, rule=GAS, last_notified=T0) == T0 + 45 * M  # hysteresis window = expire_after
    both = [(GAS, WindowStats(1.0, 1, 1, oldest=T0)), (FLOOD, WindowStats(0.0, 0, 0))]
    # several rules on one alert: the longest quiet period (20m) counts
    assert due(live=both, quiet_since=T0 + M, state="acknowledged", rule=FLOOD, last_notified=T0) == T0 + 21 * M
