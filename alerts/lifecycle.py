"""Alert states and the transitions allowed between them. Pure."""

from enum import StrEnum

from alerts.errors import InvalidTransition


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# Every state but resolved, by name: the sweeper's walk says `state IN UNRESOLVED`, which the partial index
# ix_alerts_unresolved (migration 0024) serves and the rules' `state <> 'resolved'` look-ups cannot take.
UNRESOLVED: tuple[AlertState, ...] = (AlertState.OPEN, AlertState.ACKNOWLEDGED)

# Resolved is final: new evidence after resolution opens a new alert (after any cooldown).
ALLOWED: frozenset[tuple[AlertState, AlertState]] = frozenset({
    (AlertState.OPEN, AlertState.ACKNOWLEDGED),
    (AlertState.OPEN, AlertState.RESOLVED),
    (AlertState.ACKNOWLEDGED, AlertState.RESOLVED),
})


def can_transition(current: str, wanted: str) -> bool:
    try:
        return (AlertState(current), AlertState(wanted)) in ALLOWED
    except ValueError:
        return False


def check_transition(alert_id: int, current: str, wanted: str) -> AlertState:
    """The wanted state, or InvalidTransition naming the alert and both states."""
    if not can_transition(current, wanted):
        raise InvalidTransition(alert_id, current, wanted)
    return AlertState(wanted)
