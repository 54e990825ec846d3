"""The alert engine against the real PostGIS: a scenario replay, then lifecycle, silences, spikes, audit.

Time is a parameter: every step passes its own `now`, and the sweeper is driven minute by minute.
"""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from alerts import service as alert_service
from alerts import sweeper
from alerts.errors import InvalidTransition, UnknownAlert, UnknownSilence
from alerts.rules import parse_rules
from db.errors import InvalidInput
from db.session import transaction
from tests.integration.engine_helpers import events, feed, zone_matches

pytestmark = [pytest.mark.integration, pytest.mark.pooled]

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
M = timedelta(minutes=1)
S = timedelta(seconds=1)

RULES = parse_rules({"rules": [
    {"name": "flood_posts", "categories": ["flood"], "sources": ["post"], "layer": "district", "window": "10m",
     "ladder": {"minor": 3, "major": 6, "critical": 10}, "min_distinct_authors": 2, "resolve_below": 2,
     "quiet_period": "10m", "cooldown": "30m", "repeat_interval": "2h", "escalate_after": "15m"},
    {"name": "fire_posts", "categories": ["fire"], "sources": ["post"], "layer": "district", "window": "10m",
     "ladder": {"minor": 3, "major": 5}, "quiet_period": "10m", "escalate_after": "15m"},
    {"name": "power_correlated", "categories": ["power_outage"], "sources": ["post", "utility_report"],
     "layer": "district", "window": "30m", "min_count": 3, "quiet_period": "5m", "repeat_interval": "20m"},
    {"name": "big_outage_report", "categories": ["power_outage"], "sources": ["utility_report"],
     "layer": "district", "immediate": True, "conditions": {"customers_affected": {"gte": 500}},
     "quiet_period": "5m", "expire_after": "12h"},
]})


def at(minutes: float) -> datetime:
    return T0 + timedelta(seconds=round(minutes * 60))


def scenario_items() -> list[dict]:
    """Background noise (one post every 7 minutes, never a cluster) plus three bursts in known zones."""
    items = [{"at": at(7 * i), "zone": "ABC"[i % 3], "category": ("flood", "fire", "collision")[(i // 3) % 3],
              "author": f"noise{i}", "source": "post"} for i in range(26)]
    # Burst 1: flood in A, 12 posts from 6 authors, one every 30 s from minute 20.
    items += [{"at": at(20 + k / 2), "zone": "A", "category": "flood", "author": f"a{k % 6}", "source": "post"}
              for k in range(12)]
    # Burst 2: fire in C, 5 posts from 5 authors from minute 40.
    items += [{"at": at(40 + k / 2), "zone": "C", "category": "fire", "author": f"f{k}", "source": "post"}
              for k in range(5)]
    # Burst 3: a power outage in B, seen by two posters and then reported by the utility.
    items += [{"at": at(60), "zone": "B", "category": "power_outage", "author": "p1", "source": "post"},
              {"at": at(62), "zone": "B", "category": "power_outage", "author": "p2", "source": "post"},
              {"at": at(64), "zone": "B", "category": "power_outage", "author": "utility:1",
               "source": "utility_report", "attributes": {"customers_affected": 800}}]
    # Flood again in A during the cooldown (no new alert), and after it (a new alert).
    items += [{"at": at(60 + k / 2), "zone": "A", "category": "flood", "author": f"x{k}", "source": "post"}
              for k in range(3)]
    items += [{"at": at(80 + k / 2), "zone": "A", "category": "flood", "author": f"y{k}", "source": "post"}
              for k in range(3)]
    return sorted(items, key=lambda i: i["at"])


def replay(session_factory, *, until_min: int = 180):
    with transaction(session_factory) as s:
        zones = zone_matches(s)
    items = scenario_items()
    utility_obs: list[int] = []
    for minute in range(until_min + 1):
        now = at(minute)
        while items and items[0]["at"] <= now:
            item = items.pop(0)
            with transaction(session_factory) as s:
                feed(s, rules=RULES, zones=zones, source=item["source"], category=item["category"],
                     zone=item["zone"], author=item["author"], at=item["at"], attributes=item.get("attributes"))
                if item["source"] == "utility_report":
                    utility_obs.append(s.execute(text("SELECT max(id) FROM observations")).scalar_one())
        if minute == 44:
            with transaction(session_factory) as s:
                fire = s.execute(text("SELECT id FROM alerts WHERE rule = 'fire_posts'")).scalar_one()
                alert_service.acknowledge(s, alert_id=fire, actor="operator:dana", note="crew 12 on scene",
                                          now=now, rules=RULES)
        if minute == 100:  # the utility marks its report restored
            with transaction(session_factory) as s:
                alert_service.retire_evidence(s, observation_ids=utility_obs, now=now)
        with transaction(session_factory) as s:
            sweeper.sweep(s, rules=RULES, now=now)


def alert_rows(session):
    return session.execute(text(
        "SELECT a.id, a.rule, z.code, l.name FROM alerts a JOIN zones z ON z.id = a.zone_id "
        "JOIN zone_layers l ON l.id = z.layer_id ORDER BY a.id")).all()


def timeline(session, alert_id: int) -> list[tuple[str, str, float]]:
    """(kind, severity, minutes after T0) of each outbox event of an alert, in write order."""
    return [(e["kind"], e["severity"], (e["_at"] - T0).total_seconds() / 60) for e in events(session, alert_id)]


def test_scenario_replay(session_factory, districts):
    replay(session_factory)
    with session_factory() as s:
        rows = alert_rows(s)
        assert [(r, z, layer) for _, r, z, layer in rows] == [
            ("flood_posts", "A", "district"), ("fire_posts", "C", "district"),
            ("power_correlated", "B", "district"), ("flood_posts", "A", "district"),
        ]
        flood1, fire, power, flood2 = (r[0] for r in rows)

        # Burst 1 climbs the ladder at posts 3, 6 and 10; the count falls below 2 at minute 35 and the
        # alert resolves exactly one quiet period (10 min) later; one escalation tick at 15 min unacknowledged
        # (by then the count has fallen back to the bottom rung, and the severity with it).
        assert timeline(s, flood1) == [("opened", "minor", 21), ("updated", "major", 22.5),
                                       ("updated", "critical", 24.5), ("escalation_tick", "minor", 36),
                                       ("resolved", "minor", 45)]
        # The noise post at minute 35 counts toward burst 2: open at 3 (40:30), major at 5 (41:30).
        # Acknowledged at 44: no escalation tick; resolves 10 min after the count drops below 3 (51).
        assert timeline(s, fire) == [("opened", "minor", 40.5), ("updated", "major", 41.5),
                                     ("acknowledged", "major", 44), ("resolved", "minor", 61)]
        # One incident, one alert: two posts and a utility report reach the correlation rule and the big-outage
        # rule at once, and both join one alert (led by the first, equally severe); it repeats every 20 min.
        # The correlation window empties at 90, but the big-outage rule holds the alert open until the report is
        # retired (100); it resolves once both have been quiet for 5 minutes.
        assert timeline(s, power) == [("opened", "major", 64), ("repeated", "major", 84), ("repeated", "major", 104),
                                      ("resolved", "major", 105)]
        assert [e["rules"] for e in events(s, power)][0] == [
            {"rule": "big_outage_report", "severity": "major"}, {"rule": "power_correlated", "severity": "major"}]
        assert all(e["rules"] == events(s, power)[0]["rules"] for e in events(s, power))
        # Flood again in A inside the cooldown (minutes 60-61) opens nothing; after it (81) a new alert.
        assert timeline(s, flood2) == [("opened", "minor", 81), ("escalation_tick", "minor", 96),
                                       ("resolved", "minor", 101)]

        opened_power = events(s, power)[0]
        assert opened_power["evidence_by_source"] == {"post": 2, "utility_report": 1}
        detail = alert_service.get_alert(s, alert_id=power)
        assert detail.evidence_by_source == {"post": 2, "utility_report": 1}
        assert sorted(e.source for e in detail.evidence) == ["post", "post", "utility_report"]

        # Burst 1's evidence is the 12 posts plus nothing from other zones; the noise post at 0 is out of window.
        flood_detail = alert_service.get_alert(s, alert_id=flood1)
        assert len(flood_detail.evidence) == 12 == flood_detail.alert.evidence_count
        assert {e.author for e in flood_detail.evidence} == {f"a{k}" for k in range(6)}
        assert [h.severity for h in flood_detail.history if h.actor == "rule:flood_posts"] == \
            ["minor", "major", "critical"]
        assert [(h.from_state, h.to_state) for h in flood_detail.history][-1] == ("open", "resolved")
        assert flood_detail.history[-1].actor == "sweeper" and "quiet" in flood_detail.history[-1].reason

        fire_detail = alert_service.get_alert(s, alert_id=fire)
        ack = [h for h in fire_detail.history if (h.from_state, h.to_state) == ("open", "acknowledged")]
        assert [(h.actor, h.reason) for h in ack] == [("operator:dana", "crew 12 on scene")]

        # Every notification shares its transaction with its outbox event.
        mismatched = s.execute(text(
            "SELECT count(*) FROM alert_notifications n LEFT JOIN outbox_events e "
            "ON e.event_id = n.event_id AND e.txid = n.txid WHERE e.id IS NULL")).scalar_one()
        assert mismatched == 0
        assert s.execute(text("SELECT count(*) FROM alerts WHERE state <> 'resolved'")).scalar_one() == 0


SIMPLE = parse_rules({"rules": [
    {"name": "flood_posts", "categories": ["flood"], "sources": ["post"], "layer": "district", "window": "10m",
     "min_count": 2, "quiet_period": "5m", "repeat_interval": "1h"},
]})


def _open_flood(session_factory, *, zone: str = "A", when: datetime = T0) -> int:
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        feed(s, rules=SIMPLE, zones=zones, source="post", category="flood", zone=zone, author="u1", at=when)
        [change] = feed(s, rules=SIMPLE, zones=zones, source="post", category="flood", zone=zone, author="u2",
                        at=when + S)
        return change.alert_id


def test_acknowledge_and_resolve_follow_the_table(session_factory, districts):
    alert_id = _open_flood(session_factory)
    with transaction(session_factory) as s:
        alert = alert_service.acknowledge(s, alert_id=alert_id, actor="operator:kim", note=None, now=T0 + M)
        assert (alert.state, alert.acknowledged_by, alert.acknowledged_at) == ("acknowledged", "operator:kim", T0 + M)
    with pytest.raises(InvalidTransition, match=f"alert {alert_id} is acknowledged; it cannot become acknowledged"):
        with transaction(session_factory) as s:
            alert_service.acknowledge(s, alert_id=alert_id, actor="operator:kim", note=None, now=T0 + 2 * M)
    with transaction(session_factory) as s:
        alert = alert_service.resolve(s, alert_id=alert_id, actor="operator:kim", note="false alarm", now=T0 + 3 * M)
        assert (alert.state, alert.resolved_by, alert.resolved_at) == ("resolved", "operator:kim", T0 + 3 * M)
    with pytest.raises(InvalidTransition, match="is resolved; it cannot become resolved"):
        with transaction(session_factory) as s:
            alert_service.resolve(s, alert_id=alert_id, actor="operator:kim", note=None, now=T0 + 4 * M)
    with pytest.raises(UnknownAlert, match="no alert with id 999999"):
        with transaction(session_factory) as s:
            alert_service.acknowledge(s, alert_id=999999, actor="operator:kim", note=None, now=T0)
    with session_factory() as s:
        assert [e["kind"] for e in events(s, alert_id)] == ["opened", "acknowledged", "resolved"]
        detail = alert_service.get_alert(s, alert_id=alert_id)
        assert [(h.from_state, h.to_state, h.actor, h.reason) for h in detail.history] == [
            (None, "open", "rule:flood_posts", detail.history[0].reason),
            ("open", "acknowledged", "operator:kim", "acknowledged"),
            ("acknowledged", "resolved", "operator:kim", "false alarm"),
        ]
        assert [n.reason for n in detail.notifications] == ["first_notification", "acknowledged", "resolved"]
        # Every state change committed with an outbox event of the same transaction.
        orphans = s.execute(text(
            "SELECT count(*) FROM alert_history h WHERE NOT EXISTS (SELECT 1 FROM outbox_events e "
            "WHERE e.alert_id = h.alert_id AND e.txid = h.txid)")).scalar_one()
        assert orphans == 0


def test_new_evidence_updates_the_one_open_alert(session_factory, districts):
    alert_id = _open_flood(session_factory)
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        changes = feed(s, rules=SIMPLE, zones=zones, source="post", category="flood", zone="A", author="u3",
                       at=T0 + 2 * S)
        assert changes == []  # no severity change: no event
    with session_factory() as s:
        assert s.execute(text("SELECT count(*), max(id), max(evidence_count) FROM alerts")).one() == (1, alert_id, 3)
        assert [e["kind"] for e in events(s)] == ["opened"]


def test_silenced_alert_is_tracked_then_announced_when_the_silence_ends(session_factory, districts):
    with transaction(session_factory) as s:
        silence = alert_service.create_silence(
            s, matchers={"zone": "A", "category": "flood"}, starts_at=T0 - M, ends_at=T0 + 30 * M,
            created_by="operator:kim", comment="burst main, crews on site", now=T0 - M)
    alert_id = _open_flood(session_factory)
    with session_factory() as s:
        assert events(s) == []  # silenced: no notification...
        [listed] = alert_service.list_alerts(s, state="open", zone="A", now=T0 + M)
        assert listed["id"] == alert_id and listed["silenced"] is True  # ...but tracked and shown
        assert alert_service.get_alert(s, alert_id=alert_id, now=T0 + M).silenced is True
    for minute in (10, 29):
        with transaction(session_factory) as s:
            feed(s, rules=SIMPLE, zones=zone_matches(s), source="post", category="flood", zone="A",
                 author=f"k{minute}", at=T0 + minute * M)
            feed(s, rules=SIMPLE, zones=zone_matches(s), source="post", category="flood", zone="A",
                 author=f"j{minute}", at=T0 + minute * M)
            sweeper.sweep(s, rules=SIMPLE, now=T0 + minute * M)
    with session_factory() as s:
        assert events(s) == []
    with transaction(session_factory) as s:
        result = sweeper.sweep(s, rules=SIMPLE, now=T0 + 30 * M)  # the silence ends at 30
        assert result.notified == [(alert_id, "first_notification")]
    with transaction(session_factory) as s:
        alert_service.expire_silence(s, silence_id=silence.id, actor="operator:kim", now=T0 + 31 * M)
    with session_factory() as s:
        assert [e["kind"] for e in events(s)] == ["opened"]
        [ended] = alert_service.list_silences(s, now=T0 + 31 * M, include_expired=True)
        assert ended.id == silence.id and alert_service.list_silences(s, now=T0 + 31 * M) == []


def test_silenced_alert_still_sends_resolved(session_factory, districts):
    alert_id = _open_flood(session_factory)
    with transaction(session_factory) as s:
        alert_service.create_silence(s, matchers={"rule": "flood_posts"}, starts_at=T0 + M, ends_at=T0 + 5 * 60 * M,
                                     created_by="operator:kim", comment="known", now=T0 + M)
    with transaction(session_factory) as s:
        sweeper.sweep(s, rules=SIMPLE, now=T0 + 11 * M)  # count fell below 2: quiet since 11
    with transaction(session_factory) as s:
        result = sweeper.sweep(s, rules=SIMPLE, now=T0 + 16 * M)
        assert result.resolved == [alert_id]
    with session_factory() as s:
        kinds = [(e["kind"], e["silenced"]) for e in events(s, alert_id)]
        assert kinds == [("opened", False), ("resolved", True)]


def test_silences_validate_input(session_factory):
    cases = [
        ({}, T0, T0 + M, "must name at least one of layer, zone, category, rule"),
        ({"colour": "red"}, T0, T0 + M, "silence matcher 'colour' is not one of"),
        ({"zone": ""}, T0, T0 + M, "silence matcher zone='' must be a non-empty string"),
        ({"zone": "A"}, T0 + M, T0, "ends_at 2026-11-25T08:00:00+00:00 must be after starts_at"),
        ({"zone": "A"}, T0, datetime(2026, 11, 25, 9), "ends_at 2026-11-25T09:00:00 has no time zone"),
        ({"zone": "A"}, T0 - 2 * M, T0 - M, "is already in the past"),
    ]
    for matchers, starts, ends, needle in cases:
        with pytest.raises(InvalidInput) as info:
            with transaction(session_factory) as s:
                alert_service.create_silence(s, matchers=matchers, starts_at=starts, ends_at=ends,
                                             created_by="operator:kim", comment=None, now=T0)
        assert needle in info.value.message
    with pytest.raises(UnknownSilence, match="no silence with id 42"):
        with transaction(session_factory) as s:
            alert_service.expire_silence(s, silence_id=42, actor="operator:kim", now=T0)


def test_immediate_rule_conditions_on_attributes(session_factory, districts):
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        small = feed(s, rules=RULES, zones=zones, source="utility_report", category="power_outage", zone="C",
                     author="utility:1", at=T0, attributes={"customers_affected": 499})
        unknown = feed(s, rules=RULES, zones=zones, source="utility_report", category="power_outage", zone="C",
                       author="utility:1", at=T0 + S)
        big = feed(s, rules=RULES, zones=zones, source="utility_report", category="power_outage", zone="B",
                   author="utility:1", at=T0 + 2 * S, attributes={"customers_affected": 500})
    assert small == [] and unknown == []
    assert [(c.rule, c.zone_code, c.kind) for c in big] == [("big_outage_report", "B", "opened")]


SPIKE = parse_rules({"rules": [
    {"name": "fire_spike", "categories": ["fire"], "sources": ["post"], "layer": "district", "window": "1h",
     "min_count": 3, "spike_factor": 3, "quiet_period": "10m"},
]})


def test_spike_rule_scales_with_the_zones_baseline(session_factory, districts):
    """Zone A usually has 2 fire posts an hour (a busy street); zone B has none."""
    start = T0 - timedelta(days=3)
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        for hour in range(72):
            for k in range(2):
                feed(s, rules=[], zones=zones, source="post", category="fire", zone="A", author=f"bg{hour}-{k}",
                     at=start + hour * timedelta(hours=1) + (10 + 20 * k) * M)
    with transaction(session_factory) as s:
        result = sweeper.sweep(s, rules=SPIKE, now=T0)
        assert result.baseline_hours == 72
        rate_a = s.execute(text("SELECT rate_per_h FROM zone_baselines b JOIN zones z ON z.id = b.zone_id "
                                "WHERE z.code = 'A' AND b.category = 'fire'")).scalar_one()
    # Three days of 2/h with a one-week half-life: the rate has climbed to 2 x (1 - 0.5 ** (72 / 168)).
    assert rate_a == pytest.approx(2 * (1 - 0.5 ** (72 / 168)), rel=1e-9)
    assert 3 * rate_a < 3  # after only three days the floor min_count = 3 still applies in A
    with transaction(session_factory) as s:  # as if weeks had been folded: A's baseline is its 2/h
        s.execute(text("UPDATE zone_baselines SET rate_per_h = 2.0"))
    changes = {}
    LATER = T0 + timedelta(hours=2)  # the background's last posts are out of the 1 h window by then
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        for zone in ("A", "B"):
            for k in range(4):
                changes[(zone, k)] = feed(s, rules=SPIKE, zones=zones, source="post", category="fire", zone=zone,
                                          author=f"{zone}{k}", at=LATER + (k + 1) * M)
    assert [k for (zone, k), c in changes.items() if zone == "B" and c] == [2]  # 3 posts in a quiet zone: spike
    assert not any(c for (zone, _), c in changes.items() if zone == "A")  # 4 posts where 2/h is normal: not yet
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        late = [feed(s, rules=SPIKE, zones=zones, source="post", category="fire", zone="A", author=f"A{k}",
                     at=LATER + (k + 1) * M) for k in range(4, 6)]
    assert late[0] == [] and [c.zone_code for c in late[1]] == ["A"]  # 6 >= 3 x 2/h x 1h
