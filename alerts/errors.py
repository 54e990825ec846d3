"""Alert-domain errors."""

from db.errors import Conflict, DomainError, NotFound


class RuleError(DomainError):
    """A rules file that does not validate; the message names the rule and the field."""


class UnknownAlert(NotFound):
    """No alert with that id."""


class InvalidTransition(Conflict):
    """An alert cannot move from its current state to the wanted one."""

    def __init__(self, alert_id: int, current: str, wanted: str) -> None:
        super().__init__(f"alert {alert_id} is {current}; it cannot become {wanted}",
                         alert_id=alert_id, current=current, wanted=wanted)


class UnknownSilence(NotFound):
    """No silence with that id."""
