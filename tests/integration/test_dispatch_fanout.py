"""SMS fan-out against the real PostGIS and the real twilio client talking to the fake Twilio.

Time is driven with `now`: escalation ticks and retries happen when the test says so.
"""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import text

from alerts.events import EventKind
from alerts.rules import Rule
from db.session import transaction
from dispatch import metrics
from dispatch import responders as responder_service
from dispatch.fanout import FanoutConfig, queue_drain_s, segments
from dispatch.fanout_worker import FanoutWorker
from dispatch.schemas import CoverageSpec
from dispatch.senders.sms import TwilioSender
from tests.integration.dispatch_support import T0, deliveries, emit, open_alert

pytestmark = pytest.mark.integration

RULE = Rule(name="gas_leak_report", categories=("gas_leak",), layer="district", immediate=True,
            severity="critical", escalate_after_s=300)
ANA, BEN, CY, DEE, EVE = "+12125550101", "+12125550102", "+12125550103", "+12125550104", "+12125550105"


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock(T0)


def make_worker(factory, fake, clock, *, mps=1000.0, ceiling_s=4 * 3600, timeout_s=5.0, max_attempts=8):
    sender = TwilioSender(fake.account_sid, fake.auth_token, "+15005550006", base_url=fake.base_url,
                          timeout_s=timeout_s)
    config = FanoutConfig(public_base_url="http://tocsin.test", mps=mps, queue_ceiling_s=ceiling_s)
    return FanoutWorker(factory, sender, rules=lambda: [RULE], config=config, clock=clock,
                        max_attempts=max_attempts)


def add(factory, name, phone, *coverage, opted_out=False):
    with transaction(factory) as session:
        r = responder_service.create_responder(session, name=name, phone=phone, coverage=list(coverage), now=T0)
        if opted_out:
            responder_service.set_opt_out(session, phone=phone, opted_out=True, now=T0)
        return r.id


def zone(code=None, tier=1, on_call=None):
    return CoverageSpec(layer="district", zone=code, tier=tier, on_call=on_call)


def sent_to(fake) -> list[str]:
    return sorted(m["to"] for m in fake.messages)


def test_tier_one_first_then_tier_two_after_escalate_after(session_factory, districts, fake, clock):
    add(session_factory, "Ana", ANA, zone("A", tier=1))
    add(session_factory, "Ben", BEN, zone("A", tier=2))
    add(session_factory, "Cy", CY, zone("B", tier=1))  # another zone: never paged for A
    add(session_factory, "Dee", DEE, zone(None, tier=1))  # the whole district layer
    worker = make_worker(session_factory, fake, clock)
    alert = open_alert(session_factory, code="A", now=T0)

    assert worker.drain() == 2
    assert sent_to(fake) == [ANA, DEE]
    body = fake.messages[0]["body"]
    assert body.startswith("TOCSIN CRITICAL Gas leak, District A (A): 1 report in 10 min.")
    assert f"ACK {alert.ack_code}" in body and body.endswith(f"http://tocsin.test/a/{alert.id}")
    assert {m["status_callback"] for m in fake.messages} == {"http://tocsin.test/v1/twilio/status"}

    clock.now = T0 + timedelta(seconds=299)  # a tick just before escalate_after: nobody new
    emit(session_factory, alert.id, kind=EventKind.ESCALATION_TICK, now=clock.now)
    assert worker.drain() == 0

    clock.now = T0 + timedelta(seconds=300)
    emit(session_factory, alert.id, kind=EventKind.ESCALATION_TICK, now=clock.now)
    assert worker.drain() == 1
    assert sent_to(fake) == [ANA, BEN, DEE]
    assert [(d["name"], d["tier"], d["status"]) for d in deliveries(session_factory)] == [
        ("Ana", 1, "sent"), ("Dee", 1, "sent"), ("Ben", 2, "sent")]


def test_manual_escalation_pages_tier_two_before_escalate_after(session_factory, districts, fake, clock):
    from alerts import service as alert_service

    add(session_factory, "Ana", ANA, zone("A", tier=1))
    add(session_factory, "Ben", BEN, zone("A", tier=2))
    add(session_factory, "Cy", CY, zone("A", tier=3))
    worker = make_worker(session_factory, fake, clock)
    alert = open_alert(session_factory, code="A", now=T0)
    assert worker.drain() == 1

    clock.now = T0 + timedelta(seconds=60)  # long before escalate_after (300 s): an operator escalates
    with transaction(session_factory) as session:
        alert_service.escalate(session, alert_id=alert.id, actor="operator:olive", note=None, now=clock.now,
                               rules=[RULE])
    assert worker.drain() == 1
    assert sent_to(fake) == [ANA, BEN]
    assert [(d["name"], d["tier"]) for d in deliveries(session_factory)] == [("Ana", 1), ("Ben", 2)]

    # The sweeper's own tick at 300 s is then already counted: tier 3 waits for 600 s.
    clock.now = T0 + timedelta(seconds=300)
    emit(session_factory, alert.id, kind=EventKind.ESCALATION_TICK, now=clock.now)
    assert worker.drain() == 0


def test_acknowledged_alert_does_not_escalate(session_factory, districts, fake, clock):
    add(session_factory, "Ana", ANA, zone("A", tier=1))
    add(session_factory, "Ben", BEN, zone("A", tier=2))
    worker = make_worker(session_factory, fake, clock)
    alert = open_alert(session_factory, now=T0)
    worker.drain()
    with transaction(session_factory) as session:
        session.execute(text("UPDATE alerts SET state = 'acknowledged' WHERE id = :id"), {"id": alert.id})
    clock.now = T0 + timedelta(minutes=30)
    emit(session_factory, alert.id, kind=EventKind.ESCALATION_TICK, now=clock.now)
    assert worker.drain() == 0
    assert sent_to(fake) == [ANA]


def test_off_hours_responder_is_not_paged(session_factory, districts, fake, clock):
    add(session_factory, "Day", ANA, zone("A", on_call="mon-fri 08:00-18:00"))
    add(session_factory, "Night", BEN, zone("A", on_call="mon-sun 18:00-08:00"))
    worker = make_worker(session_factory, fake, clock)

    open_alert(session_factory, code="A", now=T0)  # Wednesday 10:00 New York
    worker.drain()
    assert sent_to(fake) == [ANA]

    clock.now = T0 + timedelta(hours=13)  # Wednesday 23:00 New York
    open_alert(session_factory, code="A", rule="other_rule", category="fire", now=clock.now)  # another incident
    worker.drain()
    assert sent_to(fake) == [ANA, BEN]


def test_opted_out_responder_is_never_messaged(session_factory, districts, fake, clock):
    add(session_factory, "Ana", ANA, zone("A"))
    add(session_factory, "Out", BEN, zone("A"), opted_out=True)
    add(session_factory, "Late", CY, zone("A"))
    worker = make_worker(session_factory, fake, clock)
    open_alert(session_factory, now=T0)
    worker.plan_once()
    # Late opts out after the plan and before the send: still never messaged.
    with transaction(session_factory) as session:
        responder_service.set_opt_out(session, phone=CY, opted_out=True, now=T0)
    worker.drain()
    assert sent_to(fake) == [ANA]
    assert {d["name"]: d["status"] for d in deliveries(session_factory)} == {"Ana": "sent", "Late": "cancelled"}


def test_replanning_an_event_pages_nobody_twice(session_factory, districts, fake, clock):
    add(session_factory, "Ana", ANA, zone("A"))
    worker = make_worker(session_factory, fake, clock)
    open_alert(session_factory, now=T0)
    worker.drain()
    with transaction(session_factory) as session:  # as if a crashed planner left the queue row behind
        session.execute(text("INSERT INTO sms_fanout_queue (outbox_id) SELECT id FROM outbox_events"))
    assert worker.drain() == 0
    assert len(fake.messages) == 1 and len(deliveries(session_factory)) == 1


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retryable_twilio_errors_are_retried_with_backoff(session_factory, districts, fake, clock, status):
    add(session_factory, "Ana", ANA, zone("A"))
    worker = make_worker(session_factory, fake, clock)
    open_alert(session_factory, now=T0)
    fake.fail_next(1, status=status)
    worker.drain()
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"]) == ("pending", 1)
    assert f"HTTP {status}" in d["last_error"]
    assert worker.drain() == 0  # backing off: not due yet at the same `now`
    clock.now = T0 + timedelta(minutes=5)
    worker.drain()
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"]) == ("sent", 2) and d["provider_sid"].startswith("SM")
    assert fake.attempts == 2 and len(fake.messages) == 1


def test_permanent_twilio_error_fails_and_is_never_retried(session_factory, districts, fake, clock):
    add(session_factory, "Ana", ANA, zone("A"))
    worker = make_worker(session_factory, fake, clock)
    fake.numbers_opted_out.add(ANA)  # Twilio 21610: unsubscribed recipient
    open_alert(session_factory, now=T0)
    worker.drain()
    clock.now = T0 + timedelta(hours=1)
    worker.drain()
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"]) == ("failed", 1) and "code 21610" in d["last_error"]
    assert fake.attempts == 1


def test_timeout_is_retried(session_factory, districts, fake, clock):
    add(session_factory, "Ana", ANA, zone("A"))
    worker = make_worker(session_factory, fake, clock, timeout_s=0.3)
    fake.delay_next(1.0)
    open_alert(session_factory, now=T0)
    worker.drain()
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"]) == ("pending", 1) and "timed out" in d["last_error"]
    clock.now = T0 + timedelta(minutes=5)
    worker.drain()
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"]) == ("sent", 2)


def test_retries_stop_after_max_attempts(session_factory, districts, fake, clock):
    add(session_factory, "Ana", ANA, zone("A"))
    worker = make_worker(session_factory, fake, clock, max_attempts=3)
    fake.fail_next(10, status=500)
    open_alert(session_factory, now=T0)
    for minutes in range(0, 60, 10):
        clock.now = T0 + timedelta(minutes=minutes)
        worker.drain()
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"]) == ("failed", 3)
    assert fake.attempts == 3


def test_queue_ceiling_warning_is_logged_and_counted(session_factory, districts, fake, clock, caplog):
    for i, phone in enumerate((ANA, BEN, CY)):
        add(session_factory, f"R{i}", phone, zone("A"))
    worker = make_worker(session_factory, fake, clock, mps=1.0, ceiling_s=2.0)  # 3 messages need 3 s > 2 s
    open_alert(session_factory, now=T0)
    with caplog.at_level(logging.WARNING, logger="dispatch.fanout"):
        worker.plan_once()
    assert "beyond Twilio's queue ceiling" in caplog.text
    with session_factory() as session:
        assert metrics.counters(session)[metrics.QUEUE_CEILING_WARNINGS] == 1
    # Once the backlog has drained, one more message is within the ceiling: no warning.
    worker.drain()
    add(session_factory, "Eve", EVE, zone("B"))
    open_alert(session_factory, code="B", now=T0)
    worker.drain()
    with session_factory() as session:
        assert metrics.counters(session)[metrics.QUEUE_CEILING_WARNINGS] == 1


@pytest.mark.parametrize("messages, segs, mps, expected_s", [
    (14_400, 1, 1.0, 14_400.0), (1000, 2, 10.0, 200.0), (0, 1, 5.0, 0.0),
])
def test_queue_drain_time(messages, segs, mps, expected_s):
    assert queue_drain_s(messages=messages, segments_each=segs, mps=mps) == expected_s


def test_segments_counts_gsm7_septets():
    assert segments("x" * 160) == 1 and segments("x" * 161) == 2 and segments("€" * 80) == 1
    assert segments("x" * 307) == 3
