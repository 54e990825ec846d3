"""alerts.rule_check: the names a rules file uses, checked by line with a "did you mean"."""

from alerts.rule_check import check_names

CATEGORIES = {"fire", "flood", "gas_leak", "power_outage"}
FIELDS = ("customers_affected", "status")
GOOD = """\
rules:
  - name: fire_posts
    categories: [fire]
    sources: [post]
    layer: nta
    window: 10m
    min_count: 3
  - name: big_outage
    categories: [power_outage]
    sources: [utility_report]
    layer: nta
    immediate: true
    conditions:
      customers_affected: {gte: 500}
"""


def test_a_file_naming_only_known_things_has_no_problem():
    assert check_names(GOOD, categories=CATEGORIES, layers={"nta"}, condition_fields=FIELDS) == []


def test_each_unknown_name_is_reported_at_its_line_with_a_suggestion():
    bad = (GOOD.replace("[fire]", "[firee]").replace("sources: [post]", "sources: [posts]")
           .replace("window: 10m", "windw: 10m").replace("customers_affected:", "customer_affected:"))
    problems = check_names(bad, categories=CATEGORIES, layers={"nta"}, condition_fields=FIELDS)
    assert [(p.line, p.rule) for p in problems] == [(3, "fire_posts"), (4, "fire_posts"), (6, "fire_posts"),
                                                   (14, "big_outage")]
    assert "category 'firee'" in problems[0].message and "did you mean 'fire'?" in problems[0].message
    assert "did you mean 'post'?" in problems[1].message
    assert "unknown field 'windw'; did you mean 'window'?" in problems[2].message
    assert "did you mean 'customers_affected'?" in problems[3].message
    assert problems[0].render("rules.yaml").startswith("rules.yaml:3: rule 'fire_posts': ")


def test_a_layer_that_is_not_loaded_is_named_and_unknowable_layers_are_not_checked():
    bad = GOOD.replace("layer: nta", "layer: ntaa", 1)
    [p] = check_names(bad, categories=CATEGORIES, layers={"nta", "borough"}, condition_fields=FIELDS)
    assert p.line == 5 and "layer 'ntaa' is not loaded; did you mean 'nta'?" in p.message
    assert check_names(bad, categories=CATEGORIES, layers=None, condition_fields=FIELDS) == []
    [p] = check_names(bad, categories=CATEGORIES, layers=set(), condition_fields=FIELDS)[:1]
    assert "no zone layer is loaded" in p.message


def test_nothing_close_lists_what_is_known():
    [p] = check_names(GOOD.replace("[fire]", "[earthquake]"), categories=CATEGORIES, layers={"nta"},
                      condition_fields=FIELDS)
    assert "known: fire, flood, gas_leak, power_outage" in p.message
