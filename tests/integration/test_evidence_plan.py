"""The rules' statements (alerts/observe_sql.py) probe by index whatever the plan cache does. A generic plan
is made once per connection, from the statistics of that moment, and kept: the evidence statement's once
hashed every signal up to now for each batch, and READ's once scanned every unresolved alert for each batch
once statistics taken in a quiet hour said there were none, and later walked them all through the one index
that fits, testing each against the batch's pairs."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.integration


def scans_of(plan: dict, table: str) -> list[dict]:
    found = [plan] if plan.get("Relation Name") == table else []
    for child in plan.get("Plans", []):
        found += scans_of(child, table)
    return found


def test_window_evidence_uses_the_zone_index_under_a_generic_plan(session_factory, districts):
    from alerts import observe_sql

    now = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    with session_factory.begin() as s:
        zones = s.execute(text("SELECT id FROM zones ORDER BY id")).scalars().all()
        s.execute(text(
            "INSERT INTO signals (observation_id, zone_id, source, category, confidence, weight, author_key, "
            "observed_at) SELECT g, (:zones)[1 + g % cardinality(:zones)], 'post', 'flood', 0.9, 1.0, 'a' || g, "
            ":now - make_interval(secs => g) FROM generate_series(1, 20000) g"), {"zones": zones, "now": now})
        s.execute(text("ANALYZE signals"))
    names = ["window", "now", "alert_id", "observation_id", "old_of"]
    sql = re.sub(r"(?<![:\w]):(\w+)", lambda m: f"${names.index(m[1]) + 1}", observe_sql.EVIDENCE)
    window = json.dumps([{"alert_id": 1, "zone_id": zones[0], "categories": ["flood"], "sources": ["post"],
                          "min_confidence": 0.5, "min_weight": 0.5,
                          "since": (now - timedelta(minutes=10)).isoformat()}])
    with session_factory() as s:
        s.execute(text("SET plan_cache_mode = force_generic_plan"))
        s.execute(text(f"PREPARE evidence(text, text, text, text, text) AS {sql}"))
        plan = s.execute(text(f"EXPLAIN (FORMAT JSON) EXECUTE evidence('{window}', '{now.isoformat()}', "
                              "'{}', '{}', '{}')")).scalar_one()[0]["Plan"]
        s.rollback()
    [scan] = scans_of(plan, "signals")
    # An index scan's condition, or a bitmap heap scan's and its bitmap index scan's.
    conds = [scan.get("Index Cond", ""), scan.get("Recheck Cond", "")] + [
        child.get("Index Cond", "") for child in scan.get("Plans", [])]
    assert any("zone_id" in c for c in conds), conds  # the opening's zone, not every signal up to now


def test_read_finds_a_pairs_alert_by_its_zone_under_a_generic_plan_made_in_a_quiet_hour(session_factory, districts):
    """Statistics say no alert is unresolved (ANALYZE after a day of resolved ones); then hundreds open, as in
    a storm, before autovacuum looks again. READ must still find each pair's unresolved alert through the
    (zone, category) index, not scan every unresolved alert."""
    from alerts import observe_sql

    now = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    with session_factory.begin() as s:
        zone = s.execute(text("SELECT id FROM zones ORDER BY id LIMIT 1")).scalar_one()
        insert = ("INSERT INTO alerts (rule, zone_id, category, severity, state, ack_code, evidence_count, "
                  "distinct_authors, opened_at, updated_at, last_evidence_at, resolved_at) "
                  "SELECT 'r', :zone, 'c' || g, 'minor', CAST(:state AS text), :prefix || g, 1, 1, :now, :now, :now, "
                  "CASE WHEN CAST(:state AS text) = 'resolved' THEN CAST(:now AS timestamptz) END FROM generate_series(1, :n) g")
        s.execute(text(insert), {"zone": zone, "state": "resolved", "prefix": "R", "now": now, "n": 5000})
        s.execute(text("ANALYZE alerts"))
        s.execute(text(insert), {"zone": zone, "state": "open", "prefix": "O", "now": now, "n": 500})
    names = ["rules", "pi", "pri", "pzone", "now"]
    sql = re.sub(r"(?<![:\w]):(\w+)", lambda m: f"${names.index(m[1]) + 1}", observe_sql.READ)
    rules = json.dumps([{"ri": 0, "name": "r", "incident": "c1", "categories": ["c1"], "sources": ["post"],
                         "min_confidence": 0.5, "min_weight": 0.5, "since": now.isoformat(), "open_count": 1,
                         "open_authors": 1}])
    with session_factory() as s:
        s.execute(text("SET plan_cache_mode = force_generic_plan"))
        s.execute(text(f"PREPARE read_pairs(text, text, text, text, timestamptz) AS {sql}"))
        plan = s.execute(text(f"EXPLAIN (FORMAT JSON) EXECUTE read_pairs('{rules}', '{{0}}', '{{0}}', '{{{zone}}}', "
                              f"'{now.isoformat()}')")).scalar_one()[0]["Plan"]
        s.rollback()
    [scan] = [p for p in scans_of(plan, "alerts") if p.get("Alias") == "al"]
    assert scan.get("Index Name") == "uq_alerts_open_zone_category", scan
    # Probed with the pair's zone and category: the index's predicate alone is every unresolved alert.
    assert "zone_id" in scan.get("Index Cond", "") and "category" in scan["Index Cond"], scan


def test_the_sweepers_index_names_every_state_but_resolved(session_factory):
    """alerts.lifecycle.UNRESOLVED and the predicate of ix_alerts_unresolved (migration 0024) list the same
    states, and they are every state but resolved: a new state must join both."""
    from alerts.lifecycle import UNRESOLVED, AlertState

    assert set(UNRESOLVED) == set(AlertState) - {AlertState.RESOLVED}
    with session_factory() as s:
        definition = s.execute(text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_alerts_unresolved'")).scalar_one()
    assert sorted(re.findall(r"'(\w+)'", definition)) == sorted(UNRESOLVED), definition
