"""Evaluation tables: thresholds, ladders, immediate conditions, spikes, hysteresis, cooldown, escalation."""

from datetime import UTC, datetime, timedelta

import pytest

from alerts.errors import RuleError
from alerts.evaluate import (
    QuietStep, WindowStats, escalation_ticks_due, evaluate, hysteresis, in_cooldown, ladder_severity, threshold,
)
from alerts.rules import Rule, parse_rules

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def rule(**kw) -> Rule:
    return Rule.model_validate({"name": "r", "categories": ["flood"], "layer": "district", **kw})


LADDER = {"ladder": {"minor": 3, "major": 7, "critical": 15}}


@pytest.mark.parametrize("kw, stats, expected", [
    (LADDER, WindowStats(2.9, 3, 3), None),          # weights: 2.9 does not reach the first rung
    (LADDER, WindowStats(3, 3, 3), "minor"),
    (LADDER, WindowStats(6.99, 5, 8), "minor"),
    (LADDER, WindowStats(7, 5, 7), "major"),
    (LADDER, WindowStats(15, 9, 15), "critical"),
    (LADDER, WindowStats(40, 9, 40), "critical"),
    ({**LADDER, "min_distinct_authors": 3}, WindowStats(15, 2, 15), None),  # one loud author is not a crowd
    ({"ladder": {"major": 4, "critical": 10}}, WindowStats(4, 1, 4), "major"),  # ladder may skip a rung
    ({"min_count": 1}, WindowStats(0.1 * 10, 1, 10), "major"),  # float sums reach their threshold
])
def test_ladder_table(kw, stats, expected):
    assert evaluate(rule(**kw), stats) == expected


def test_ladder_sets_min_count_to_its_lowest_rung():
    assert rule(**LADDER).min_count == 3
    assert ladder_severity(rule(**LADDER), 8) == "major"


POWER = {"categories": ["power_outage"], "sources": ["utility_report"], "immediate": True, "severity": "major",
         "conditions": {"customers_affected": {"gte": 500}}}


@pytest.mark.parametrize("attributes, expected", [
    ({"customers_affected": 500}, "major"),
    ({"customers_affected": 12000}, "major"),
    ({"customers_affected": 499}, None),
    ({"customers_affected": None}, None),      # unknown is not "at least 500"
    ({}, None),
    ({"customers_affected": "900"}, None),     # a string is not a number
    ({"customers_affected": True}, None),      # nor is a bool
])
def test_immediate_conditions(attributes, expected):
    assert evaluate(rule(**POWER), WindowStats(1, 1, 1), attributes=attributes) == expected


def test_immediate_without_conditions_fires_on_one_signal():
    assert evaluate(rule(immediate=True, severity="critical"), WindowStats(1, 1, 1)) == "critical"
    assert evaluate(rule(immediate=True, severity="critical"), WindowStats(0, 0, 0)) is None


@pytest.mark.parametrize("baseline, count, expected", [
    (0.0, 5, "major"),       # no history: the floor min_count applies
    (0.0, 4.9, None),
    (2.0, 5, None),          # 3 x 2 = 6 > 5
    (2.0, 6, "major"),
    (10.0, 29, None),
    (10.0, 30, "major"),
])
def test_spike_threshold_is_max_of_floor_and_factor_times_baseline(baseline, count, expected):
    r = rule(min_count=5, spike_factor=3)
    assert threshold(r, baseline=baseline) == max(5, 3 * baseline)
    assert evaluate(r, WindowStats(count, 5, int(count)), baseline=baseline) == expected


@pytest.mark.parametrize("count, quiet_since, now, resolve, new_quiet_since", [
    (3, None, T0, False, None),                                            # still busy
    (1, None, T0, False, T0),                                              # quiet starts now
    (1, T0, T0 + timedelta(seconds=599), False, T0),                       # 1 s before the quiet period ends
    (1, T0, T0 + timedelta(seconds=600), True, T0),                        # exactly at the quiet period
    (2, T0, T0 + timedelta(seconds=900), False, None),                     # back at resolve_below: starts over
])
def test_resolve_below_only_after_the_quiet_period(count, quiet_since, now, resolve, new_quiet_since):
    r = rule(min_count=5, resolve_below=2, quiet_period="10m")
    step = hysteresis(r, weighted_count=count, quiet_since=quiet_since, now=now)
    assert (step.resolve, step.quiet_since) == (resolve, new_quiet_since)


def test_resolve_threshold_defaults():
    assert rule(min_count=5).resolve_threshold == 5
    # One counted signal holds an immediate rule's alert, however little of it lies in the zone.
    assert rule(immediate=True).resolve_threshold == 0.5
    assert rule(immediate=True, min_zone_weight=0.3).resolve_threshold == 0.3
    assert rule(immediate=True, min_zone_weight=0).resolve_threshold > 0  # an empty window still resolves
    assert rule(immediate=True).hysteresis_window_s == rule(immediate=True).expire_after_s


@pytest.mark.parametrize("until, now, expected", [
    (None, T0, False),
    (T0 + timedelta(minutes=30), T0, True),
    (T0 + timedelta(minutes=30), T0 + timedelta(minutes=29, seconds=59), True),
    (T0 + timedelta(minutes=30), T0 + timedelta(minutes=30), False),
])
def test_cooldown(until, now, expected):
    assert in_cooldown(until, now) is expected


@pytest.mark.parametrize("elapsed_s, expected", [(0, 0), (899, 0), (900, 1), (1799, 1), (1800, 2)])
def test_escalation_ticks_due(elapsed_s, expected):
    r = rule(escalate_after="15m")
    assert escalation_ticks_due(r, opened_at=T0, now=T0 + timedelta(seconds=elapsed_s)) == expected
    assert escalation_ticks_due(rule(), opened_at=T0, now=T0 + timedelta(days=1)) == 0


@pytest.mark.parametrize("item, needle", [
    ({"ladder": {"minor": 7, "major": 3}}, "must rise strictly"),
    ({"ladder": {}}, "at least one rung"),
    ({"conditions": {"customers_affected": {"gte": 500}}}, "only to immediate rules"),
    ({"immediate": True, "conditions": {"customers_affected": {}}}, "needs at least one of"),
    ({"immediate": True, "ladder": {"minor": 1}}, "takes no ladder"),
    ({"min_count": 3, "resolve_below": 5}, "resolve_below 5.0 must not exceed min_count 3.0"),
    ({"spike_factor": 0.5}, "spike_factor"),
    ({"cooldown": "soon"}, "cooldown_s"),
])
def test_invalid_lifecycle_fields_name_the_rule(item, needle):
    with pytest.raises(RuleError) as info:
        parse_rules({"rules": [{"name": "bad_rule", "categories": ["flood"], "layer": "nta", **item}]})
    assert "rule 'bad_rule'" in info.value.message and needle in info.value.message


def test_durations_parse_for_every_lifecycle_field():
    r = rule(quiet_period="5m", cooldown="1h", repeat_interval="2h", escalate_after="15m", expire_after="1d")
    assert (r.quiet_period_s, r.cooldown_s, r.repeat_interval_s, r.escalate_after_s, r.expire_after_s) == \
        (300, 3600, 7200, 900, 86400)
    assert rule(repeat_interval=None).repeat_interval_s is None


# ---- one incident, one alert: several rules hold one alert

def test_incident_hysteresis_waits_for_every_rule_and_the_longest_quiet_period():
    from alerts.evaluate import incident_hysteresis

    posts = rule(name="posts", min_count=4, resolve_below=2, quiet_period="20m")
    report = rule(name="report", immediate=True, quiet_period="10m")
    # The report still counts: not quiet, whatever the posts do.
    assert incident_hysteresis([(posts, 0), (report, 1)], quiet_since=T0, now=T0 + timedelta(hours=1)) == \
        QuietStep(False, None)
    # Both below: quiet from now, resolved only after the longer (20 min) period.
    step = incident_hysteresis([(posts, 1.5), (report, 0)], quiet_since=None, now=T0)
    assert step == QuietStep(False, T0)
    assert not incident_hysteresis([(posts, 1.5), (report, 0)], quiet_since=T0, now=T0 + timedelta(minutes=19)).resolve
    assert incident_hysteresis([(posts, 1.5), (report, 0)], quiet_since=T0, now=T0 + timedelta(minutes=20)).resolve


@pytest.mark.parametrize("count, quiet_since, now", [
    (1.0, None, T0), (3.0, T0, T0 + timedelta(minutes=30)), (1.0, T0, T0 + timedelta(minutes=9)),
    (1.0, T0, T0 + timedelta(minutes=10)),
])
def test_incident_hysteresis_of_one_rule_is_hysteresis(count, quiet_since, now):
    from alerts.evaluate import incident_hysteresis

    r = rule(min_count=3, resolve_below=2, quiet_period="10m")
    assert incident_hysteresis([(r, count)], quiet_since=quiet_since, now=now) == \
        hysteresis(r, weighted_count=count, quiet_since=quiet_since, now=now)


def test_incident_severity_follows_ladders_down_but_a_fixed_rule_holds_its_own():
    from alerts.evaluate import incident_severity

    ladder = rule(name="posts", **LADDER)
    fixed = rule(name="report", immediate=True, severity="major")
    assert incident_severity([(ladder, 16)]) == "critical"
    assert incident_severity([(ladder, 4)]) == "minor"
    assert incident_severity([(ladder, 4), (fixed, 1)]) == "major"
    assert incident_severity([(ladder, 16), (fixed, 1)]) == "critical"
