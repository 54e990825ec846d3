"""Rules load from YAML with errors that name the rule and the field; evaluation is a pure table."""

import pytest

from alerts.errors import RuleError
from alerts.evaluate import WindowStats, evaluate
from alerts.rules import Rule, load_rules, parse_duration_s, parse_rules


def rule(**kw) -> Rule:
    return Rule.model_validate({"name": "r", "categories": ["flood"], "layer": "nta", **kw})


@pytest.mark.parametrize("value, seconds", [(600, 600), ("600", 600), ("45s", 45), ("10m", 600), ("2h", 7200),
                                            ("1d", 86400), ("1.5h", 5400)])
def test_durations(value, seconds):
    assert parse_duration_s(value) == seconds


def test_bad_duration_names_rule_and_field():
    with pytest.raises(RuleError, match=r"rule 'floods': window_s: .*'ten minutes' is not like 30s"):
        parse_rules({"rules": [{"name": "floods", "categories": ["flood"], "layer": "nta", "window": "ten minutes"}]})


@pytest.mark.parametrize("item, needle", [
    ({"name": "x", "layer": "nta"}, "rule 'x': categories: Field required"),
    ({"name": "x", "categories": ["flood"], "layer": "nta", "sources": ["tweet"]}, "rule 'x': sources.0"),
    ({"name": "x", "categories": ["flood"], "layer": "nta", "severity": "apocalyptic"}, "rule 'x': severity"),
    ({"name": "x", "categories": ["flood"], "layer": "nta", "min_count": 0}, "rule 'x': min_count"),
    ({"name": "x", "categories": ["flood"], "layer": "nta", "colour": "red"}, "rule 'x': colour: Extra inputs"),
])
def test_invalid_rules_name_the_field(item, needle):
    with pytest.raises(RuleError) as info:
        parse_rules({"rules": [item]}, origin="rules.yaml")
    assert needle in info.value.message


def test_duplicate_names_are_refused():
    item = {"name": "x", "categories": ["flood"], "layer": "nta"}
    with pytest.raises(RuleError, match="defined twice"):
        parse_rules({"rules": [item, item]})


def test_shipped_rules_validate():
    from tocsin.settings import Settings

    names = {r.name for r in load_rules(Settings().rules_file)}
    assert "gas_leak_report" in names


@pytest.mark.parametrize("kw, stats, expected", [
    ({"immediate": True, "severity": "critical"}, WindowStats(1, 1, 1), "critical"),
    ({"min_count": 5, "min_distinct_authors": 3}, WindowStats(5, 3, 5), "major"),
    ({"min_count": 5, "min_distinct_authors": 3}, WindowStats(4.9, 3, 7), None),  # weights, not raw count
    ({"min_count": 5, "min_distinct_authors": 3}, WindowStats(9, 2, 9), None),  # too few authors
    ({"min_count": 2, "severity": "minor"}, WindowStats(2, 1, 2), "minor"),
])
def test_evaluate_table(kw, stats, expected):
    assert evaluate(rule(**kw), stats) == expected


def test_rule_matches_category_source_and_confidence():
    r = rule(sources=["post"], min_confidence=0.6)
    assert r.matches(category="flood", source="post", confidence=0.7)
    assert not r.matches(category="flood", source="utility_report", confidence=0.9)
    assert not r.matches(category="fire", source="post", confidence=0.9)
    assert not r.matches(category="flood", source="post", confidence=0.5)
