"""The alert state machine is an explicit table."""

import pytest

from alerts.errors import InvalidTransition
from alerts.lifecycle import ALLOWED, AlertState, can_transition, check_transition

STATES = [s.value for s in AlertState]


@pytest.mark.parametrize("current, wanted, allowed", [
    ("open", "acknowledged", True),
    ("open", "resolved", True),
    ("acknowledged", "resolved", True),
    ("acknowledged", "open", False),     # no un-acknowledging
    ("acknowledged", "acknowledged", False),
    ("resolved", "open", False),         # resolved is final: new evidence opens a new alert
    ("resolved", "acknowledged", False),
    ("resolved", "resolved", False),
    ("open", "open", False),
    ("open", "escalated", False),        # not a state
])
def test_transition_table(current, wanted, allowed):
    assert can_transition(current, wanted) is allowed


def test_allowed_is_exactly_three_edges():
    assert {(a.value, b.value) for a, b in ALLOWED} == {
        ("open", "acknowledged"), ("open", "resolved"), ("acknowledged", "resolved")}


@pytest.mark.parametrize("current", STATES)
def test_check_transition_names_alert_and_states(current):
    if can_transition(current, "resolved"):
        assert check_transition(7, current, "resolved") is AlertState.RESOLVED
    else:
        with pytest.raises(InvalidTransition) as info:
            check_transition(7, current, "resolved")
        assert info.value.message == "alert 7 is resolved; it cannot become resolved"
        assert info.value.details == {"alert_id": 7, "current": "resolved", "wanted": "resolved"}
