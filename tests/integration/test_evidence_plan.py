"""The evidence statement reads an opening's window through the signals index, whatever the plan cache
does: a generic plan once hashed every signal up to now for each batch (alerts/observe_sql.py)."""

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
