"""Notify decisions as a table: first, raise, lower, repeat exactly at the interval, ack, resolve, silences."""

from datetime import UTC, datetime, timedelta

import pytest

from alerts.notify import AlertView, Decision, Sent, SilenceView, decide
from alerts.rules import Rule

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def rule(**kw) -> Rule:
    return Rule.model_validate({"name": "floods", "categories": ["flood"], "layer": "district",
                                "repeat_interval": "1h", **kw})


def alert(state="open", severity="minor") -> AlertView:
    return AlertView(id=1, rule="floods", layer="district", zone="A", category="flood", state=state,
                     severity=severity)


def sent(at, reason="first_notification", state="open", severity="minor") -> Sent:
    return Sent(at=at, reason=reason, state=state, severity=severity)


def silence(**matchers) -> SilenceView:
    return SilenceView(matchers=matchers, starts_at=T0 - H, ends_at=T0 + 10 * H)


FIRST = [sent(T0)]
ONE_S = timedelta(seconds=1)


@pytest.mark.parametrize("name, view, log, silences, r, now, expected", [
    ("first", alert(), [], [], rule(), T0, Decision(True, "first_notification")),
    ("nothing new", alert(), FIRST, [], rule(), T0 + 10 * ONE_S, Decision(False, "up_to_date")),
    ("raised", alert(severity="major"), FIRST, [], rule(), T0 + ONE_S, Decision(True, "severity_raised")),
    ("raised twice", alert(severity="critical"), FIRST + [sent(T0 + ONE_S, "severity_raised", severity="major")],
     [], rule(), T0 + 2 * ONE_S, Decision(True, "severity_raised")),
    ("lowered, not configured", alert(severity="minor"), [sent(T0, severity="major")], [], rule(), T0 + ONE_S,
     Decision(False, "up_to_date")),
    ("lowered, configured", alert(severity="minor"), [sent(T0, severity="major")], [],
     rule(notify_on_lower=True), T0 + ONE_S, Decision(True, "severity_lowered")),
    ("repeat 1 s early", alert(), FIRST, [], rule(), T0 + H - ONE_S, Decision(False, "up_to_date")),
    ("repeat exactly at the interval", alert(), FIRST, [], rule(), T0 + H,
     Decision(True, "repeat_interval_elapsed")),
    ("repeat counts from the last notification", alert(severity="major"),
     FIRST + [sent(T0 + 30 * 60 * ONE_S, "severity_raised", severity="major")], [], rule(), T0 + H,
     Decision(False, "up_to_date")),
    ("repeat not rounded (7 min interval)", alert(), FIRST, [], rule(repeat_interval="7m"),
     T0 + 7 * 60 * ONE_S, Decision(True, "repeat_interval_elapsed")),
    ("no repeats configured", alert(), FIRST, [], rule(repeat_interval=None), T0 + 100 * H,
     Decision(False, "up_to_date")),
    ("acknowledged", alert("acknowledged"), FIRST, [], rule(), T0 + ONE_S, Decision(True, "acknowledged")),
    ("acknowledged once", alert("acknowledged"), FIRST + [sent(T0 + ONE_S, "acknowledged", "acknowledged")], [],
     rule(), T0 + 2 * H, Decision(False, "up_to_date")),  # no repeats after an acknowledgement
    ("resolved", alert("resolved"), FIRST, [], rule(), T0 + H, Decision(True, "resolved")),
    ("resolved once", alert("resolved"), FIRST + [sent(T0 + H, "resolved", "resolved")], [], rule(), T0 + 2 * H,
     Decision(False, "already_sent")),
    ("resolved, never announced", alert("resolved"), [], [silence(zone="A")], rule(), T0,
     Decision(False, "never_notified", True)),
    ("silenced: first", alert(), [], [silence(zone="A")], rule(), T0, Decision(False, "silenced", True)),
    ("silenced: raise", alert(severity="critical"), FIRST, [silence(category="flood", layer="district")], rule(),
     T0 + ONE_S, Decision(False, "silenced", True)),
    ("silenced: repeat", alert(), FIRST, [silence(rule="floods")], rule(), T0 + 2 * H,
     Decision(False, "silenced", True)),
    ("silenced: resolved still sent by default", alert("resolved"), FIRST, [silence(zone="A")], rule(), T0 + H,
     Decision(True, "resolved", True)),
    ("silenced: resolved muted when configured", alert("resolved"), FIRST, [silence(zone="A")],
     rule(send_resolved_when_silenced=False), T0 + H, Decision(False, "silenced", True)),
    ("silence for another zone", alert(), [], [silence(zone="B")], rule(), T0, Decision(True, "first_notification")),
    ("silence needs every matcher", alert(), [], [silence(zone="A", category="fire")], rule(), T0,
     Decision(True, "first_notification")),
    ("silence ended: first notification now", alert(), [],
     [SilenceView({"zone": "A"}, T0 - 2 * H, T0)], rule(), T0, Decision(True, "first_notification")),
    ("silence not yet started", alert(), [], [SilenceView({"zone": "A"}, T0 + ONE_S, T0 + H)], rule(), T0,
     Decision(True, "first_notification")),
    ("rule removed from the file: still resolves", alert("resolved"), FIRST, [], None, T0 + H,
     Decision(True, "resolved")),
])
def test_decide_table(name, view, log, silences, r, now, expected):
    assert decide(view, log, silences, r, now) == expected, name


@pytest.mark.parametrize("reason, kind", [
    ("first_notification", "opened"), ("severity_raised", "updated"), ("severity_lowered", "updated"),
    ("repeat_interval_elapsed", "repeated"), ("acknowledged", "acknowledged"), ("resolved", "resolved"),
])
def test_event_kind_per_reason(reason, kind):
    assert Decision(True, reason).kind == kind
    assert Decision(False, reason).kind is None


def test_empty_matchers_match_nothing():
    assert not SilenceView({}, T0 - H, T0 + H).matches(alert().labels)
