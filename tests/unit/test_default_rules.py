"""The shipped rules cover the taxonomy: a post rule for every category the classifier gives, a report rule for
every category a utility report carries, and a reason beside each threshold."""

import re
from pathlib import Path

import pytest

from alerts.rules import load_rules
from ingest.posts.classify import CATEGORIES
from ingest.reports.schemas import REPORT_CATEGORIES

RULES_FILE = Path(__file__).resolve().parents[2] / "data" / "rules.yaml"


def _covering(source: str) -> dict[str, list[str]]:
    covered: dict[str, list[str]] = {}
    for rule in load_rules(RULES_FILE):
        if source in rule.sources:
            for category in rule.categories:
                covered.setdefault(category, []).append(rule.name)
    return covered


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_classifier_category_has_a_post_rule(category):
    assert _covering("post").get(category), f"no default rule counts {category} posts"


@pytest.mark.parametrize("category", REPORT_CATEGORIES)
def test_every_report_category_has_a_report_rule(category):
    assert _covering("utility_report").get(category), f"no default rule takes {category} utility reports"


def test_each_rule_has_a_comment_justifying_its_threshold():
    """The line above every `- name:` is a comment (the reason for the threshold), not YAML."""
    lines = RULES_FILE.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"^  - name: ", line)]
    assert len(starts) == len(load_rules(RULES_FILE))
    uncommented = [lines[i].split(":", 1)[1].strip() for i in starts if not lines[i - 1].lstrip().startswith("#")]
    assert uncommented == []


def test_rules_of_one_category_in_one_layer_share_the_incident():
    """One incident, one alert: the post and report rules of a category file their alerts under it."""
    for rule in load_rules(RULES_FILE):
        assert rule.incident_category in rule.categories
