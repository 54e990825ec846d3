"""Rules that cover the taxonomy, against the real PostGIS and the shipped rules (data/rules.yaml, counted in
the hand-drawn `district` layer instead of `nta`): every post rule fires at its threshold and not below, a
large outage footprint alerts in every zone it covers, and one incident is one alert whatever rules see it."""

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from alerts import service as alert_service
from alerts import sweeper
from alerts.rules import Rule, load_rules, parse_rules
from db.session import transaction
from accounts import keys
from ingest.reports import service as reports
from ingest.reports.schemas import ReportCreate
from tests.integration.engine_helpers import INSIDE, events, feed, zone_matches

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
M = timedelta(minutes=1)
RULES_FILE = Path(__file__).resolve().parents[2] / "data" / "rules.yaml"


def default_rules() -> list[Rule]:
    """The shipped rules, counting in the test layer."""
    return [r.model_copy(update={"layer": "district"}) for r in load_rules(RULES_FILE)]


POST_RULES = [r.name for r in load_rules(RULES_FILE) if r.sources == ("post",)]


def unresolved(session) -> list[tuple[str, str, str, str]]:
    """(zone, category, leading rule, severity) of every unresolved alert."""
    return [tuple(r) for r in session.execute(text(
        "SELECT z.code, a.category, a.rule, a.severity FROM alerts a JOIN zones z ON z.id = a.zone_id "
        "WHERE a.state <> 'resolved' ORDER BY z.code, a.category")).all()]


def rules_on(session, alert_id: int) -> list[str]:
    return list(session.execute(text(
        "SELECT rule FROM alert_rules WHERE alert_id = :id ORDER BY first_fired_at, rule"), {"id": alert_id}
    ).scalars())


@pytest.mark.parametrize("name", POST_RULES)
def test_each_post_rule_fires_at_its_threshold_and_not_below(session_factory, districts, name):
    rules = default_rules()
    [rule] = [r for r in rules if r.name == name]
    category, n, authors = rule.categories[0], math.ceil(rule.min_count), rule.min_distinct_authors
    assert 2 <= authors <= n <= 10, "a post rule needs several people, and a test that can reach it"
    with transaction(session_factory) as s:
        zones = zone_matches(s)
    # Zone A: n posts from n people; nothing until the n-th (all inside the shortest window, 10 minutes).
    for k in range(n):
        with transaction(session_factory) as s:
            changes = feed(s, rules=rules, zones=zones, source="post", category=category, zone="A",
                           author=f"a{k}", at=T0 + k * 20 * timedelta(seconds=1))
            if k < n - 1:
                assert changes == [] and unresolved(s) == [], f"{name} fired at {k + 1} posts, below {n}"
    with session_factory() as s:
        [(zone, cat, lead, _)] = unresolved(s)
        assert (zone, cat, lead) == ("A", category, name)
    # Zone B: more than enough posts, but from one person fewer than the rule asks for.
    for k in range(n + 2):
        with transaction(session_factory) as s:
            feed(s, rules=rules, zones=zones, source="post", category=category, zone="B",
                 author=f"b{k % (authors - 1)}", at=T0 + k * 20 * timedelta(seconds=1))
    with session_factory() as s:
        assert [z for z, *_ in unresolved(s)] == ["A"]


def _utility(session_factory):
    with transaction(session_factory) as s:
        return keys.issue_key(s, role="utility", utility_id=keys.add_utility(s, name="Grid Co").id)


def _report(session_factory, key, *, rules, geometry, external_id, customers=None, category="power_outage",
            now=T0):
    body = ReportCreate.model_validate({"type": "Feature", "geometry": geometry, "properties": {
        "external_id": external_id, "category": category, "customers_affected": customers}})
    with transaction(session_factory) as s:
        return reports.create_report(s, caller=keys.authenticate(s, key=key), body=body, idempotency_key=None,
                                     rules=rules, jurisdiction_bbox=(-180, -90, 180, 90), now=now)


# Over A, B and C: no district holds half of it (A and B about 0.29 each, C 0.43).
FOOTPRINT = {"type": "Polygon", "coordinates": [[[-73.99, 40.71], [-73.91, 40.71], [-73.91, 40.78],
                                                 [-73.99, 40.78], [-73.99, 40.71]]]}


def test_a_large_outage_footprint_alerts_in_every_zone_it_covers(session_factory, districts):
    rules = default_rules()
    result = _report(session_factory, _utility(session_factory), rules=rules, geometry=FOOTPRINT,
                     external_id="OUT-4000", customers=4000)
    shares = {m.code: m.weight for m in result.zones if m.layer == "district"}
    assert sorted(shares) == ["A", "B", "C"] and max(shares.values()) < 0.5  # each under min_zone_weight
    assert sum(shares.values()) == pytest.approx(1.0)
    with session_factory() as s:
        assert unresolved(s) == [(code, "power_outage", "large_outage_report", "major") for code in "ABC"]
        # The report's zones keep their area shares for its API; the rules counted it whole in each zone.
        stored = dict(s.execute(text(
            "SELECT z.code, oz.weight FROM observation_zones oz JOIN zones z ON z.id = oz.zone_id "
            "JOIN zone_layers l ON l.id = z.layer_id WHERE l.name = 'district'")).all())
        assert stored == pytest.approx(shares)


def test_a_footprint_growing_by_patch_alerts_in_every_zone_it_covers(session_factory, districts):
    """A new version of the report (PATCH) counts its footprint whole too: it is still the utility's own."""
    from ingest.reports import updates as report_updates
    from ingest.reports.schemas import ReportUpdate

    rules = default_rules()
    key = _utility(session_factory)
    created = _report(session_factory, key, rules=rules, geometry=FOOTPRINT, external_id="OUT-GROWS", customers=300)
    with session_factory() as s:
        assert unresolved(s) == []
    with transaction(session_factory) as s:
        report_updates.update_report(
            s, caller=keys.authenticate(s, key=key), report_id=created.report.id, if_match=None, rules=rules,
            patch=ReportUpdate.model_validate({"properties": {"customers_affected": 4000}}),
            jurisdiction_bbox=(-180, -90, 180, 90), now=T0 + 10 * M)
    with session_factory() as s:
        assert unresolved(s) == [(code, "power_outage", "large_outage_report", "major") for code in "ABC"]


def test_customers_are_apportioned_by_area_for_per_zone_conditions(session_factory, districts):
    rules = parse_rules({"rules": [{
        "name": "heavy_zone_outage", "categories": ["power_outage"], "sources": ["utility_report"],
        "layer": "district", "immediate": True, "conditions": {"zone_customers_affected": {"gte": 1500}}}]})
    result = _report(session_factory, _utility(session_factory), rules=rules, geometry=FOOTPRINT,
                     external_id="OUT-4000", customers=4000)
    expected = sorted(m.code for m in result.zones if m.layer == "district" and round(4000 * m.weight) >= 1500)
    assert expected == ["C"]  # about 1,714 customers in C, 1,143 in each of A and B
    with session_factory() as s:
        assert [z for z, *_ in unresolved(s)] == expected


def test_outage_posts_then_a_report_make_one_alert_recording_both_rules(session_factory, districts):
    rules = default_rules()
    with transaction(session_factory) as s:
        zones = zone_matches(s)
    # Four outage posts from three people: power_outage_correlated opens a minor alert in A.
    for k, author in enumerate(("p1", "p2", "p3", "p1")):
        with transaction(session_factory) as s:
            feed(s, rules=rules, zones=zones, source="post", category="power_outage", zone="A", author=author,
                 at=T0 + k * M)
    with session_factory() as s:
        [(_, _, lead, severity)] = unresolved(s)
        assert (lead, severity) == ("power_outage_correlated", "minor")
    # The utility reports 800 customers there: large_outage_report fires and joins the same alert.
    lon, lat = INSIDE["A"]
    result = _report(session_factory, _utility(session_factory), rules=rules, now=T0 + 5 * M,
                     geometry={"type": "Point", "coordinates": [lon, lat]}, external_id="OUT-800", customers=800)
    with session_factory() as s:
        assert unresolved(s) == [("A", "power_outage", "large_outage_report", "major")]
        alert_id = s.execute(text("SELECT id FROM alerts")).scalar_one()
        assert result.alerts_changed == [alert_id]
        assert rules_on(s, alert_id) == ["power_outage_correlated", "large_outage_report"]
        assert [(e["kind"], e["severity"], e["rule"], [r["rule"] for r in e["rules"]])
                for e in events(s, alert_id)] == [
            ("opened", "minor", "power_outage_correlated", ["power_outage_correlated"]),
            ("updated", "major", "large_outage_report", ["power_outage_correlated", "large_outage_report"])]
        detail = alert_service.get_alert(s, alert_id=alert_id)
        assert detail.evidence_by_source == {"post": 4, "utility_report": 1}
        assert [r.rule for r in detail.rules] == ["power_outage_correlated", "large_outage_report"]
        assert [h.actor for h in detail.history] == ["rule:power_outage_correlated", "rule:large_outage_report",
                                                     "rule:large_outage_report"]  # opened, joined, raised
        [listed] = alert_service.list_alerts(s)
        assert [(r.rule, r.severity) for r in listed["rules"]] == [
            ("power_outage_correlated", "minor"), ("large_outage_report", "major")]


def test_a_report_then_posts_stay_one_alert_until_no_rule_holds_it(session_factory, districts):
    rules = default_rules()
    key = _utility(session_factory)
    lon, lat = INSIDE["B"]
    point = {"type": "Point", "coordinates": [lon, lat]}
    _report(session_factory, key, rules=rules, geometry=point, external_id="OUT-900", customers=900)
    with transaction(session_factory) as s:
        zones = zone_matches(s)
    for k, author in enumerate(("q1", "q2", "q3", "q4")):
        with transaction(session_factory) as s:
            feed(s, rules=rules, zones=zones, source="post", category="power_outage", zone="B", author=author,
                 at=T0 + (k + 1) * M)
    with session_factory() as s:
        assert unresolved(s) == [("B", "power_outage", "large_outage_report", "major")]
        alert_id = s.execute(text("SELECT id FROM alerts")).scalar_one()
        assert rules_on(s, alert_id) == ["large_outage_report", "power_outage_correlated"]
        assert [e["kind"] for e in events(s)] == ["opened"]  # joining at a lower severity notifies nobody

    def sweep(minutes: int) -> None:
        with transaction(session_factory) as s:
            sweeper.sweep(s, rules=rules, now=T0 + minutes * M)

    # The posts leave their 30-minute window, but the report still holds the alert open.
    for minute in (36, 50):
        sweep(minute)
    with session_factory() as s:
        assert [z for z, *_ in unresolved(s)] == ["B"]
    # The report is restored (its evidence retired): quiet from 51, resolved after the longer quiet period
    # of the two rules (20 minutes), not the report rule's 10.
    with transaction(session_factory) as s:
        obs = s.execute(text("SELECT observation_id FROM utility_reports")).scalar_one()
        alert_service.retire_evidence(s, observation_ids=[obs], now=T0 + 51 * M)
    for minute in (51, 61, 70):
        sweep(minute)
    with session_factory() as s:
        assert [z for z, *_ in unresolved(s)] == ["B"]
    sweep(71)
    with session_factory() as s:
        assert unresolved(s) == []
        assert [e["kind"] for e in events(s) if e["kind"] != "escalation_tick"] == ["opened", "resolved"]
        reason = s.execute(text("SELECT reason FROM alert_history WHERE to_state = 'resolved'")).scalar_one()
        assert "(large_outage_report)" in reason and "(power_outage_correlated)" in reason
    # Each rule keeps its own cooldown: the correlation rule's 30 minutes do not hold back a new big report.
    _report(session_factory, key, rules=rules, geometry=point, external_id="OUT-901", customers=901,
            now=T0 + 72 * M)
    with session_factory() as s:
        assert unresolved(s) == [("B", "power_outage", "large_outage_report", "major")]
        cooldowns = dict(s.execute(text("SELECT rule, cooldown_until FROM alert_rules WHERE cooldown_until "
                                        "IS NOT NULL")).all())
        assert cooldowns == {"large_outage_report": T0 + 71 * M, "power_outage_correlated": T0 + 101 * M}


@pytest.mark.committing
def test_the_api_lists_the_rules_of_each_alert(client, session_factory, utility_key):
    """GET /v1/alerts and GET /v1/alerts/{id} carry `rules` (tests/data/rules.yaml: gas_leak_report)."""
    from accounts import operators

    with transaction(session_factory) as s:
        _, token = operators.add_operator(s, name="vera", role="viewer", now=datetime.now(UTC))
    lon, lat = INSIDE["A"]
    r = client.post("/v1/reports", headers={"Authorization": f"Bearer {utility_key}"}, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"external_id": "G1", "category": "gas_leak"}})
    assert r.status_code == 201, r.text
    [alert_id] = r.json()["alerts_changed"]
    viewer = {"Authorization": f"Bearer {token}"}
    [listed] = client.get("/v1/alerts", headers=viewer).json()
    detail = client.get(f"/v1/alerts/{alert_id}", headers=viewer).json()
    for body in (listed, detail):
        assert [(x["rule"], x["severity"]) for x in body["rules"]] == [("gas_leak_report", "critical")]
        assert body["rules"][0]["first_fired_at"] == body["opened_at"]


def test_a_report_counted_partly_in_a_zone_holds_its_immediate_alert_until_retired(session_factory, districts):
    """A footprint we derived (a ZIP's polygon) counts by area: 0.6 of it in A. The gas-leak alert stays open
    while the report is live, however long, and resolves one quiet period after the report is retired."""
    from alerts.signals import SignalIn
    from tests.integration.engine_helpers import add_observation

    rules = [r for r in default_rules() if r.name == "gas_leak_report"]
    with transaction(session_factory) as s:
        zone = zone_matches(s)["A"]
        oid = add_observation(s, source="utility_report", category="gas_leak", zone="A", author="utility:1",
                              observed_at=T0)
        alert_service.observe(s, rules=rules, now=T0, signal=SignalIn(
            observation_id=oid, source="utility_report", category="gas_leak", confidence=1.0,
            author_key="utility:1", observed_at=T0, zones=[replace(zone, weight=0.6)]))
    for minute in (1, 30, 90):
        with transaction(session_factory) as s:
            sweeper.sweep(s, rules=rules, now=T0 + minute * M)
    with session_factory() as s:
        assert unresolved(s) == [("A", "gas_leak", "gas_leak_report", "critical")]
    with transaction(session_factory) as s:
        alert_service.retire_evidence(s, observation_ids=[oid], now=T0 + 91 * M)
    for minute in (91, 101):
        with transaction(session_factory) as s:
            sweeper.sweep(s, rules=rules, now=T0 + minute * M)
    with session_factory() as s:
        assert unresolved(s) == []


# Mostly in A, with a 0.002-degree sliver over the A/B boundary at -73.95 (about 5% of its area in B).
BOUNDARY_SLIVER = {"type": "Polygon", "coordinates": [[[-73.99, 40.71], [-73.948, 40.71], [-73.948, 40.74],
                                                       [-73.99, 40.74], [-73.99, 40.71]]]}


def test_a_boundary_sliver_of_a_footprint_does_not_alert_the_neighbouring_zone(session_factory, districts):
    """Footprints and zone outlines both follow streets; where they disagree along a boundary, the sliver
    in the next zone keeps its area weight (under min_zone_weight) instead of counting the report whole."""
    rules = default_rules()
    result = _report(session_factory, _utility(session_factory), rules=rules, geometry=BOUNDARY_SLIVER,
                     external_id="OUT-SLIVER", customers=4000)
    shares = {m.code: m.weight for m in result.zones if m.layer == "district"}
    assert sorted(shares) == ["A", "B"] and shares["B"] < reports.FULL_SHARE
    with session_factory() as s:
        assert unresolved(s) == [("A", "power_outage", "large_outage_report", "major")]
        weights = dict(s.execute(text(
            "SELECT z.code, sg.weight FROM signals sg JOIN zones z ON z.id = sg.zone_id "
            "JOIN zone_layers l ON l.id = z.layer_id WHERE l.name = 'district'")).all())
    assert weights["A"] == 1.0 and weights["B"] == pytest.approx(shares["B"])


def test_counts_whole_spreads_the_floor_over_many_zones():
    """A footprint over many zones, each holding its equal part, counts whole in each of them."""
    assert reports.counts_whole(0.1, 3) and not reports.counts_whole(0.04, 3)
    assert reports.counts_whole(1 / 40, 40) and not reports.counts_whole(0.005, 40)
