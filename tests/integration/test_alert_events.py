"""Every alert event has the same fields, whoever writes it: rule evaluation (opened, updated), the sweeper
(an escalation tick) and the alert service (resolved), published by the real relay to the real Mosquitto."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from alerts import service as alert_service
from alerts import sweeper
from alerts.rules import parse_rules
from db.session import transaction
from dispatch.relay import Relay
from dispatch.senders.mqtt import MqttConfig, MqttPublisher
from tests.integration.engine_helpers import feed, zone_matches

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
M = timedelta(minutes=1)
RULES = parse_rules({"rules": [
    {"name": "gas_posts", "categories": ["gas_leak"], "sources": ["post"], "layer": "district", "window": "10m",
     "min_count": 2, "min_distinct_authors": 2, "severity": "major"},
    {"name": "gas_report", "categories": ["gas_leak"], "sources": ["utility_report"], "layer": "district",
     "immediate": True, "severity": "critical", "escalate_after": "5m"},
]})
TICK_FIELDS = {"tick", "tier_due", "minutes_since_open", "escalate_after_s"}


def publish_all(engine, *, mqtt_url: str, topic_prefix: str, now: datetime) -> int:
    publisher = MqttPublisher(MqttConfig(url=mqtt_url, client_id=f"tocsin-test-{uuid.uuid4().hex[:8]}",
                                         topic_prefix=topic_prefix))
    assert publisher.start(), f"no MQTT broker at {mqtt_url}"
    try:
        with Relay(engine, publisher, topic_prefix=topic_prefix, public_base_url="http://tocsin.test") as relay:
            return relay.run_once(now=now)
    finally:
        publisher.stop()


@pytest.mark.committing  # the relay commits on a connection of its own
def test_an_escalation_tick_on_mqtt_carries_every_field_of_the_other_events(
        session_factory, engine, districts, subscriber_factory, topic_prefix, mqtt_url):
    sub = subscriber_factory(f"{topic_prefix}/alerts/#")
    with transaction(session_factory) as s:
        zones = zone_matches(s)
        for k, author in enumerate(("a", "b")):  # two people: the post rule opens the alert (major)
            feed(s, rules=RULES, zones=zones, source="post", category="gas_leak", zone="A", author=author,
                 at=T0 + k * 30 * timedelta(seconds=1))
    with transaction(session_factory) as s:  # the utility's report joins it and raises it (critical)
        feed(s, rules=RULES, zones=zones, source="utility_report", category="gas_leak", zone="A",
             author="utility:1", at=T0 + M)
    # Opened at T0 + 30 s (the second post): at T0 + 6 min one escalate_after has elapsed.
    result = sweeper.sweep_pass(session_factory, rules=RULES, now=T0 + 6 * M)
    [alert_id] = result.escalation_ticks
    with transaction(session_factory) as s:
        alert_service.resolve(s, alert_id=alert_id, actor="test", note=None, now=T0 + 7 * M, rules=RULES)

    assert publish_all(engine, mqtt_url=mqtt_url, topic_prefix=topic_prefix, now=T0 + 7 * M) == 4
    messages = [json.loads(payload) for _, payload in sub.take(4, timeout=10)]
    by_kind = {m["kind"]: m for m in messages}
    assert [m["kind"] for m in messages] == ["opened", "updated", "escalation_tick", "resolved"]
    opened, updated, tick, resolved = (by_kind[k] for k in ("opened", "updated", "escalation_tick", "resolved"))

    assert set(updated) == set(resolved) == set(opened)
    assert set(tick) == set(opened) | TICK_FIELDS
    # The same facts as the events around it, not just the same keys.
    both = [{"rule": "gas_posts", "severity": "major"}, {"rule": "gas_report", "severity": "critical"}]
    assert updated["rules"] == tick["rules"] == resolved["rules"] == both
    assert updated["evidence_by_source"] == tick["evidence_by_source"] == resolved["evidence_by_source"] == {
        "post": 2, "utility_report": 1}
    assert tick["silenced"] is False and tick["reason"] == "unacknowledged"
    assert (tick["alert_id"], tick["rule"], tick["severity"], tick["state"]) == (alert_id, "gas_report", "critical",
                                                                                "open")
    assert (tick["tick"], tick["tier_due"], tick["escalate_after_s"], tick["minutes_since_open"]) == (1, 2, 300.0, 5.5)
    assert tick["link"] == f"http://tocsin.test/a/{alert_id}"
