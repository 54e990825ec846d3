"""Rule evaluation's writes (alerts.observe_write) against the real PostGIS: which statements a batch sends, that
the one-statement opening writes what the three-statement path does, and that an opening which loses writes
nothing of its own."""

import pytest
from sqlalchemy import text

from db.session import transaction
from tests.integration.engine_helpers import events, feed, zone_matches
from tests.integration.test_alerts_engine import RULES, M, S, T0

pytestmark = [pytest.mark.integration, pytest.mark.pooled]


def test_an_opening_that_loses_to_an_alert_its_read_missed_writes_nothing(session_factory, districts, monkeypatch):
    """Outside pipeline mode the insert's answer is read at once: an opening that lost to an unresolved alert
    (which READ, blinded here, did not see; every real opener holds the zone's lock) is evaluated once more
    and, still lost, dropped, with no evidence, event or history of its own."""
    from alerts import observe_sql

    big = {"customers_affected": 800}
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        [opened] = feed(s, rules=RULES, zones=zones, source="utility_report", category="power_outage", zone="A",
                        author="utility:1", at=T0, attributes=big)
    blind = observe_sql.READ.replace("AND al.state <> 'resolved'", "AND al.state <> 'resolved' AND false")
    assert blind != observe_sql.READ
    monkeypatch.setattr(observe_sql, "READ", blind)
    with transaction(session_factory) as s:
        assert feed(s, rules=RULES, zones=zones, source="utility_report", category="power_outage", zone="A",
                    author="utility:1", at=T0 + M, attributes=big) == []
    with session_factory() as s:
        assert s.execute(text("SELECT count(*), max(id) FROM alerts")).one() == (1, opened.alert_id)
        assert s.execute(text("SELECT count(*) FROM alert_evidence")).scalar_one() == 1
        assert s.execute(text("SELECT count(*) FROM alert_history")).scalar_one() == 1
        assert [e["kind"] for e in events(s)] == ["opened"]


def test_an_immediate_opening_in_one_statement_writes_what_three_statements_wrote(session_factory, districts,
                                                                                 monkeypatch):
    """OPEN_AND_WRITE against INSERT_ALERTS, EVIDENCE and WRITE (the path every other batch takes), for the same
    report in two zones: the same alert, evidence, rules, history, log and event, but for ids and zone."""
    from alerts import observe_write

    def opened_in(zone: str) -> int:
        with transaction(session_factory) as s:
            [change] = feed(s, rules=RULES, zones=zone_matches(s), source="utility_report", category="power_outage",
                            zone=zone, author="utility:1", at=T0, attributes={"customers_affected": 900})
        return change.alert_id

    def written(alert_id: int) -> dict:
        with session_factory() as s:
            one = {"alert": tuple(s.execute(text(
                "SELECT rule, category, severity, state, evidence_count, distinct_authors, opened_at, updated_at, "
                "last_evidence_at, expires_at, quiet_since, last_notified_at, escalation_ticks FROM alerts "
                "WHERE id = :a"), {"a": alert_id}).one())}
            for table, cols in (("alert_rules", "rule, severity, first_fired_at, last_fired_at, cooldown_s"),
                                ("alert_history", "at, from_state, to_state, severity, actor, reason"),
                                ("alert_notifications", "at, reason, kind, state, severity"),
                                ("alert_evidence", "added_at")):
                one[table] = [tuple(r) for r in s.execute(text(
                    f"SELECT {cols} FROM {table} WHERE alert_id = :a ORDER BY 1"), {"a": alert_id})]
            [event] = events(s, alert_id)
        drop = {"event_id", "alert_id", "zone", "ack_code", "_at"}
        one["event"] = {k: v for k, v in event.items() if k not in drop}
        return one

    fused = written(opened_in("B"))
    monkeypatch.setattr(observe_write, "only_immediate_openings", lambda active: False)
    apart = written(opened_in("C"))
    assert fused == apart
    assert fused["alert"][11] == T0 and len(fused["alert_evidence"]) == 1 and len(fused["alert_notifications"]) == 1


def test_an_immediate_opening_is_inserted_with_its_evidence_and_its_write(session_factory, districts, monkeypatch):
    # Its links' counts are known without asking (this batch's own signals): the alert, its links and its write
    # are one statement; a threshold rule's opening inserts, reads its window's links back and writes, as before.
    from alerts import observe_sql
    from db import raw

    sent: list[str] = []
    real = raw.execute
    monkeypatch.setattr(raw, "execute", lambda session, sql, params, **kw: sent.append(sql) or real(
        session, sql, params, **kw))
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        [opened] = feed(s, rules=RULES, zones=zones, source="utility_report", category="power_outage", zone="B",
                        author="utility:1", at=T0, attributes={"customers_affected": 900})
    assert observe_sql.OPEN_AND_WRITE in sent
    assert not {observe_sql.INSERT_ALERTS, observe_sql.EVIDENCE, observe_sql.WRITE} & set(sent)
    with session_factory() as s:
        linked = s.execute(text("SELECT count(*) FROM alert_evidence WHERE alert_id = :a"),
                           {"a": opened.alert_id}).scalar_one()
        count = s.execute(text("SELECT evidence_count FROM alerts WHERE id = :a"), {"a": opened.alert_id}).scalar_one()
        [event] = events(s, opened.alert_id)
    assert linked == count == 1
    assert event["kind"] == "opened" and event["evidence_by_source"] == {"utility_report": 1}

    sent.clear()
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        for i in range(3):  # power_correlated: min_count 3, a window to link
            changes = feed(s, rules=RULES, zones=zones, source="post", category="power_outage", zone="C",
                           author=f"p{i}", at=T0 + i * S)
    assert [c.kind for c in changes] == ["opened"]
    assert {observe_sql.INSERT_ALERTS, observe_sql.EVIDENCE, observe_sql.WRITE} <= set(sent)
    assert observe_sql.OPEN_AND_WRITE not in sent
