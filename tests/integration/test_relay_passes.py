"""A relay pass: one claim that also marks what it claims, on the relay's own connection, and every way an event
that is not published comes out of it unmarked (no PUBACK, a payload it cannot send, a broker gone mid-batch).

The relay commits on a connection of its own, so these tests commit for real. No test here measures time.
"""

import pytest
from sqlalchemy import text

from db.session import transaction
from dispatch.relay import Relay
from dispatch.senders.base import DeliveryError
from dispatch.zone_state import zone_summary
from tests.integration.dispatch_support import T0, open_alert
from tests.integration.test_dispatch_set_based import Pipelined, grid, statements  # noqa: F401 (grid: a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.committing]


class PipelinedRelayPublisher(Pipelined):
    """Pipelined, for events too (not retained); `fail_topic` names one whose PUBACK never comes, `refuse_topic`
    one whose send fails at once as a lost broker's does."""

    def __init__(self, fail_topic: str | None = None, refuse_topic: str | None = None):
        super().__init__(fail_topic=fail_topic)
        self.refuse_topic = refuse_topic

    def publish_nowait(self, topic, payload, *, retain=False, expiry_s=None):
        if topic == self.refuse_topic:
            raise DeliveryError("MQTT broker not connected", retryable=True)
        self.calls.append(("send", topic))
        return topic


def outbox_rows(session_factory) -> dict[int, object]:
    with session_factory() as session:
        return {r.alert_id: r for r in session.execute(text(
            "SELECT alert_id, published_at, parked_at, attempts, last_error FROM outbox_events")).all()}


def test_the_relay_awaits_its_events_and_their_zone_states_together(session_factory, engine, grid):
    # One wait per batch: the events, then their zones' retained states, are sent before any PUBACK is awaited.
    alerts = [open_alert(session_factory, layer="grid", code=code, now=T0) for code in grid[:2]]
    events = [f"p/alerts/grid/{code}/gas_leak" for code in grid[:2]]
    states = [f"p/zones/grid/{code}/state" for code in grid[:2]]
    publisher = PipelinedRelayPublisher(fail_topic=events[1])
    with Relay(engine, publisher, topic_prefix="p", public_base_url="http://tocsin.test") as relay:
        assert relay.run_once(now=T0) == 2
    assert publisher.calls == [("send", t) for t in events + states] + [("ack", t) for t in events + states]
    rows = outbox_rows(session_factory)
    # The event without a PUBACK waits for the next pass, its attempt counted; its zone's state went out (it is
    # what the database holds).
    assert rows[alerts[0].id].published_at is not None and rows[alerts[0].id].attempts == 1
    assert rows[alerts[1].id].published_at is None and rows[alerts[1].id].attempts == 1
    assert rows[alerts[1].id].last_error == "no PUBACK"
    assert relay.zone_states.dirty == set()


def test_an_event_whose_payload_cannot_be_published_is_parked_and_the_rest_go_out(session_factory, engine, grid):
    # A row no writer of ours makes (here an empty payload) must not stop the relay for every event behind it.
    bad = open_alert(session_factory, layer="grid", code=grid[0], now=T0)
    with transaction(session_factory) as session:
        session.execute(text("UPDATE outbox_events SET payload = '{}' WHERE alert_id = :a"), {"a": bad.id})
    good = open_alert(session_factory, layer="grid", code=grid[1], now=T0)
    publisher = PipelinedRelayPublisher()
    with Relay(engine, publisher, topic_prefix="p", public_base_url="http://tocsin.test") as relay:
        assert relay.run_once(now=T0) == 2
    assert ("send", f"p/alerts/grid/{grid[1]}/gas_leak") in publisher.calls
    rows = outbox_rows(session_factory)
    assert rows[good.id].published_at is not None and rows[good.id].parked_at is None
    assert rows[bad.id].published_at is None and rows[bad.id].parked_at is not None
    assert rows[bad.id].last_error.startswith("event payload cannot be published (KeyError")


def test_a_broker_lost_mid_batch_leaves_the_rest_of_the_batch_as_it_was(session_factory, engine, grid):
    # The claim marks its whole batch published; when the broker goes away after the first event, the events
    # after the failed one were never tried: they go back unmarked, with the attempts and the last error they
    # had before, and the next pass publishes them.
    alerts = [open_alert(session_factory, layer="grid", code=code, now=T0) for code in grid[:3]]
    with transaction(session_factory) as session:  # the third failed twice before, on an earlier pass
        session.execute(text("UPDATE outbox_events SET attempts = 2, last_error = 'timed out' WHERE alert_id = :a"),
                        {"a": alerts[2].id})
    events = [f"p/alerts/grid/{code}/gas_leak" for code in grid[:3]]
    publisher = PipelinedRelayPublisher(refuse_topic=events[1])
    with Relay(engine, publisher, topic_prefix="p", public_base_url="http://tocsin.test") as relay:
        assert relay.run_once(now=T0) == 3
        assert ("send", events[2]) not in publisher.calls
        rows = outbox_rows(session_factory)
        assert rows[alerts[0].id].published_at is not None
        assert (rows[alerts[1].id].published_at, rows[alerts[1].id].attempts) == (None, 1)  # its attempt failed
        assert rows[alerts[1].id].last_error == "MQTT broker not connected"
        untried = rows[alerts[2].id]
        assert (untried.published_at, untried.attempts, untried.last_error) == (None, 2, "timed out")

        publisher.refuse_topic = None  # the broker is back: the untried event goes out (the failed one backs off)
        assert relay.run_once(now=T0) == 1
        assert ("send", events[2]) in publisher.calls
    rows = outbox_rows(session_factory)
    assert rows[alerts[2].id].published_at is not None and rows[alerts[2].id].attempts == 3
    assert rows[alerts[2].id].last_error is None


def test_a_relay_pass_is_one_statement_that_claims_marks_and_reads_the_zone_states(session_factory, engine, grid):
    # The zones of the claimed events and those left dirty before: read by the claim, which also marks the
    # events published (committed only with the pass, after the acks): one statement a pass.
    open_alert(session_factory, layer="grid", code=grid[0], severity="minor", now=T0)
    open_alert(session_factory, layer="grid", code=grid[0], rule="other_rule", category="fire", severity="major",
               now=T0)
    open_alert(session_factory, layer="grid", code=grid[1], now=T0)
    publisher = PayloadRecorder()
    with Relay(engine, publisher, topic_prefix="p", public_base_url="http://tocsin.test") as relay:
        relay.zone_states.dirty = {("grid", grid[2]), ("grid", "NOPE")}  # left over: no alert in either
        with session_factory() as session, statements(engine, session) as seen:
            assert relay.run_once(now=T0) == 3
        assert [s.split()[0:2] for s in seen] == [["WITH", "plans"]], seen
        assert relay.zone_states.dirty == set()
        assert all(r.published_at is not None for r in outbox_rows(session_factory).values())
        with session_factory() as session:  # the same payloads as the zone's own read
            expected = {f"p/zones/grid/{code}/state": zone_summary(session, layer="grid", code=code, now=T0) or b""
                        for code in (grid[0], grid[1], grid[2], "NOPE")}
        assert publisher.retained == expected
        assert expected[f"p/zones/grid/{grid[0]}/state"]["alert_count"] == 2
        assert expected[f"p/zones/grid/{grid[2]}/state"] == b""

        # Nothing left to claim: a zone marked dirty again still gets its state, from the claim alone.
        publisher.retained.clear()
        relay.zone_states.dirty = {("grid", grid[1])}
        with session_factory() as session, statements(engine, session) as seen:
            assert relay.run_once(now=T0) == 0
        assert len(seen) == 1 and seen[0].startswith("WITH plans"), seen
        assert publisher.retained == {f"p/zones/grid/{grid[1]}/state": expected[f"p/zones/grid/{grid[1]}/state"]}
        assert relay.zone_states.dirty == set()


class PayloadRecorder(PipelinedRelayPublisher):
    """PipelinedRelayPublisher keeping each retained payload by topic."""

    def __init__(self):
        super().__init__()
        self.retained: dict[str, object] = {}

    def publish_nowait(self, topic, payload, *, retain=False, expiry_s=None):
        if retain:
            self.retained[topic] = payload
        return super().publish_nowait(topic, payload, retain=retain, expiry_s=expiry_s)
