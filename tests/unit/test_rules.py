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


def _write(path, names, *, bump_ns: int) -> None:
    import os

    body = "rules:\n" + "".join(f"  - {{name: {n}, categories: [flood], layer: nta}}\n" for n in names)
    path.write_text(body)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump_ns))  # coarse file-system clocks


def test_rules_provider_reloads_on_change_and_keeps_good_rules_on_error(tmp_path):
    from alerts.reload import RulesProvider

    path = tmp_path / "rules.yaml"
    _write(path, ["one"], bump_ns=0)
    provider = RulesProvider(path)
    assert [r.name for r in provider.current()] == ["one"]
    _write(path, ["one", "two"], bump_ns=1_000_000_000)
    assert [r.name for r in provider.current()] == ["one", "two"]
    path.write_text("rules:\n  - {name: broken, layer: nta}\n")
    assert [r.name for r in provider.current()] == ["one", "two"]  # the last good rules stay in force
    assert "rule 'broken': categories: Field required" in provider.last_error


def test_rules_provider_reloads_on_sighup(tmp_path):
    import os
    import signal

    from alerts.reload import RulesProvider

    path = tmp_path / "rules.yaml"
    _write(path, ["one"], bump_ns=0)
    provider = RulesProvider(path)
    stamp = provider._stamp
    _write(path, ["one", "three"], bump_ns=0)
    provider._stamp = provider._file_stamp()  # as if the change were invisible to the stat check
    previous = signal.getsignal(signal.SIGHUP)
    try:
        assert provider.install_sighup()
        assert [r.name for r in provider.current()] == ["one"]
        os.kill(os.getpid(), signal.SIGHUP)
        assert [r.name for r in provider.current()] == ["one", "three"]
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert stamp is not None


def test_incident_category_defaults_to_the_first_and_must_be_one_of_the_rules():
    assert rule(categories=["fire", "hazmat"]).incident_category == "fire"
    assert rule(categories=["fire", "hazmat"], incident="hazmat").incident_category == "hazmat"
    with pytest.raises(RuleError, match=r"rule 'x': .*incident 'flood' must be one of the rule's categories"):
        parse_rules({"rules": [{"name": "x", "categories": ["fire"], "layer": "nta", "incident": "flood"}]})
