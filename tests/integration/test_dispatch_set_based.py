"""The fan-out planner and the zone-state flush are set-based: statements do not grow with the batch.

Statements are counted with SQLAlchemy's `before_cursor_execute` event (SAVEPOINT and RELEASE
included); no test here measures time.
"""

import logging
from contextlib import contextmanager

import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import event, text

from alerts.rules import Rule
from db import raw as db_raw
from db.session import transaction
from dispatch import fanout, metrics
from dispatch import responders as responder_service
from dispatch.schemas import CoverageSpec
from dispatch.senders.base import DeliveryError
from dispatch.zone_state import ZoneStates, zone_summary
from tests.integration.dispatch_support import T0, deliveries, open_alert

pytestmark = pytest.mark.integration

RULE = Rule(name="gas_leak_report", categories=("gas_leak",), layer="district", immediate=True,
            severity="critical", escalate_after_s=300)
CONFIG = fanout.FanoutConfig(public_base_url="http://tocsin.test", mps=1000.0)
GRID = 20


@pytest.fixture
def grid(session_factory):
    """A `grid` layer of GRID small zones G00..G19, so every alert can have a zone of its own."""
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord

    with transaction(session_factory) as session:
        zone_service.upsert_zones(session, layer="grid", records=[
            ZoneRecord(code=f"G{i:02d}", name=f"Grid {i}", properties={},
                       geometry=MultiPolygon([box(-74 + i * 0.01, 40.6, -74 + (i + 1) * 0.01, 40.61)]))
            for i in range(GRID)
        ])
    return [f"G{i:02d}" for i in range(GRID)]


@contextmanager
def statements(engine, session):
    """Collect the SQL of every statement sent while the block runs: through the engine, and straight on the
    driver's connection by db.raw (the hot path's statements skip SQLAlchemy's execution layer).

    The session's transaction is begun first: the test's sessions share one rolled-back transaction, so it
    begins with a SAVEPOINT (where the product's sends a BEGIN, which is no statement)."""
    session.connection()
    seen: list[str] = []
    raw_execute = db_raw.execute_on

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    def record_raw(conn, sql, params, **kw):
        seen.append(" ".join(sql.split()))
        return raw_execute(conn, sql, params, **kw)

    event.listen(engine, "before_cursor_execute", record)
    db_raw.execute_on = record_raw  # db.raw.execute runs through it too
    try:
        yield seen
    finally:
        db_raw.execute_on = raw_execute
        event.remove(engine, "before_cursor_execute", record)


def plan(session_factory, engine, *, limit=500):
    with session_factory() as session, session.begin(), statements(engine, session) as seen:
        planned = fanout.plan_batch(session, rules=lambda: [RULE], config=CONFIG, now=T0, limit=limit)
    return planned, seen


def add(factory, name, phone, *coverage):
    with transaction(factory) as session:
        return responder_service.create_responder(session, name=name, phone=phone, coverage=list(coverage), now=T0).id


def queued(factory) -> int:
    with factory() as session:
        return session.execute(text("SELECT count(*) FROM sms_fanout_queue")).scalar_one()


def test_planning_alerts_nobody_covers_costs_the_same_statements_for_1_or_20_events(session_factory, engine,
                                                                                   grid):
    open_alert(session_factory, layer="grid", code=grid[0], now=T0)
    one, one_sql = plan(session_factory, engine)
    for code in grid:
        open_alert(session_factory, layer="grid", code=code, rule="other_rule", category="fire", now=T0)
    many, many_sql = plan(session_factory, engine)

    assert [p.recipients for p in one] == [0] and len(many) == GRID and not any(p.recipients for p in many)
    assert queued(session_factory) == 0 and deliveries(session_factory) == []
    # The claim, the alerts, their coverage and the queue delete; nobody is covered, so no
    # "already notified" read, and no event costs a statement (not even a savepoint) of its own.
    assert len(one_sql) == len(many_sql) == 4, many_sql
    assert not any(s.startswith(("SAVEPOINT", "RELEASE")) for s in many_sql)


def test_only_events_that_page_someone_cost_statements_of_their_own(session_factory, engine, grid):
    add(session_factory, "Ana", "+12125550101", CoverageSpec(layer="grid", zone=grid[0]))
    add(session_factory, "Ben", "+12125550102", CoverageSpec(layer="grid", zone=grid[1], tier=2),
              CoverageSpec(layer="grid", zone=grid[1], tier=1))
    alerts = [open_alert(session_factory, layer="grid", code=code, now=T0) for code in grid]

    planned, seen = plan(session_factory, engine)

    assert {p.alert_id: p.recipients for p in planned} == {a.id: (1 if i < 2 else 0) for i, a in enumerate(alerts)}
    got = {(d["alert_id"], d["name"], d["tier"]) for d in deliveries(session_factory)}
    assert got == {(alerts[0].id, "Ana", 1), (alerts[1].id, "Ben", 1)}
    # 4 + the "already notified" read + (SAVEPOINT, INSERT, backlog count, RELEASE) per paging event.
    assert len(seen) == 5 + 2 * 4, seen


def test_layer_wide_coverage_and_already_notified_are_applied_per_alert(session_factory, engine, grid):
    add(session_factory, "Lay", "+12125550101", CoverageSpec(layer="grid", zone=None))
    add(session_factory, "Zed", "+12125550102", CoverageSpec(layer="grid", zone=grid[3]))
    first = open_alert(session_factory, layer="grid", code=grid[3], now=T0)
    plan(session_factory, engine)
    assert sorted(d["name"] for d in deliveries(session_factory)) == ["Lay", "Zed"]

    # A second alert elsewhere, and the first alert's event replanned: only the new alert pages,
    # and only the layer-wide responder (Zed covers G03 only).
    second = open_alert(session_factory, layer="grid", code=grid[4], now=T0)
    with transaction(session_factory) as session:
        session.execute(text("INSERT INTO sms_fanout_queue (outbox_id) SELECT id FROM outbox_events "
                             "WHERE alert_id = :a"), {"a": first.id})
    planned, _ = plan(session_factory, engine)
    assert {p.alert_id: p.recipients for p in planned} == {first.id: 0, second.id: 1}
    assert [(d["alert_id"], d["name"]) for d in deliveries(session_factory)][2:] == [(second.id, "Lay")]


def test_one_unplannable_event_does_not_block_the_others(session_factory, engine, grid, monkeypatch, caplog):
    add(session_factory, "Ana", "+12125550101", CoverageSpec(layer="grid", zone=None))
    alerts = [open_alert(session_factory, layer="grid", code=code, now=T0) for code in grid[:3]]
    bad = alerts[1].id
    write = fanout._write

    def failing_write(session, decision, **kw):
        if decision.alert.id == bad:
            session.execute(text("SELECT 1 / 0"))  # a database error inside the event's savepoint
        return write(session, decision, **kw)

    monkeypatch.setattr(fanout, "_write", failing_write)
    with caplog.at_level(logging.ERROR, logger="dispatch.fanout"):
        planned, _ = plan(session_factory, engine)

    assert {p.alert_id: p.recipients for p in planned} == {alerts[0].id: 1, bad: 0, alerts[2].id: 1}
    assert sorted(d["alert_id"] for d in deliveries(session_factory)) == [alerts[0].id, alerts[2].id]
    assert f"alert {bad}" in caplog.text and queued(session_factory) == 0
    with session_factory() as session:
        assert metrics.counters(session)[metrics.FANOUT_ERRORS] == 1


def test_a_bad_schedule_fails_only_the_events_it_covers(session_factory, engine, grid):
    ana = add(session_factory, "Ana", "+12125550101", CoverageSpec(layer="grid", zone=grid[0]))
    add(session_factory, "Ben", "+12125550102", CoverageSpec(layer="grid", zone=grid[1]))
    with transaction(session_factory) as session:  # written past the API's validation
        session.execute(text("UPDATE coverage SET on_call = 'someday 99:99' WHERE responder_id = :r"), {"r": ana})
    alerts = [open_alert(session_factory, layer="grid", code=code, now=T0) for code in grid[:3]]
    planned, _ = plan(session_factory, engine)
    assert {p.alert_id: p.recipients for p in planned} == {a.id: n for a, n in zip(alerts, (0, 1, 0), strict=True)}
    assert [d["name"] for d in deliveries(session_factory)] == ["Ben"]
    with session_factory() as session:
        assert metrics.counters(session)[metrics.FANOUT_ERRORS] == 1


def test_plan_event_still_plans_one_event_on_its_own(session_factory, grid):
    add(session_factory, "Ana", "+12125550101", CoverageSpec(layer="grid", zone=grid[0]))
    alert = open_alert(session_factory, layer="grid", code=grid[0], now=T0)
    with session_factory() as session:
        event_id, outbox_id = session.execute(text("SELECT event_id, id FROM outbox_events")).one()
    for expected in (1, 0):  # planned once; a second plan pages nobody twice
        with transaction(session_factory) as session:
            p = fanout.plan_event(session, outbox_id=outbox_id, event_id=event_id, alert_id=alert.id,
                                  kind="opened", rules=lambda: [RULE], config=CONFIG, now=T0)
        assert (p.alert_id, p.recipients) == (alert.id, expected)
    [d] = deliveries(session_factory)
    assert d["name"] == "Ana" and d["body"].endswith(f"http://tocsin.test/a/{alert.id}")


# --- zone state ------------------------------------------------------------------------------


class Recorder:
    def __init__(self, fail_topic: str | None = None):
        self.published: list[tuple[str, object, bool]] = []
        self.fail_topic = fail_topic

    def publish(self, topic, payload, *, retain=False, expiry_s=None):
        if topic == self.fail_topic:
            raise DeliveryError("broker away", retryable=True)
        self.published.append((topic, payload, retain))


def test_flushing_n_dirty_zones_is_one_query_with_the_same_payloads(session_factory, engine, grid):
    with_alerts = grid[:12]
    for i, code in enumerate(with_alerts):
        open_alert(session_factory, layer="grid", code=code, severity="minor", now=T0)
        if i % 3 == 0:
            open_alert(session_factory, layer="grid", code=code, rule="other_rule", category="fire", severity="major",
                       now=T0)  # another incident in the zone
    zones = ZoneStates(Recorder(), topic_prefix="p")
    zones.dirty = {("grid", code) for code in grid} | {("grid", "NOPE"), ("nolayer", "G00")}

    with session_factory() as session, statements(engine, session) as seen:
        assert zones.flush(session, now=T0) == GRID + 2
    assert len(seen) == 1, seen
    assert zones.dirty == set()

    with session_factory() as session:  # the per-zone reads give the very same payloads
        expected = {f"p/zones/{layer}/{code}/state": zone_summary(session, layer=layer, code=code, now=T0) or b""
                    for layer, code in {("grid", c) for c in grid} | {("grid", "NOPE"), ("nolayer", "G00")}}
    assert {t: p for t, p, _ in zones.publisher.published} == expected
    assert all(retain for _, _, retain in zones.publisher.published)
    assert [t for t, _, _ in zones.publisher.published] == sorted(expected)  # zone order, as before
    two = expected[f"p/zones/grid/{grid[0]}/state"]
    assert two["alert_count"] == 2 and two["max_severity"] == "major"
    assert expected[f"p/zones/grid/{grid[12]}/state"] == b""


def test_a_zone_whose_publish_failed_stays_dirty(session_factory, grid):
    for code in grid[:3]:
        open_alert(session_factory, layer="grid", code=code, now=T0)
    zones = ZoneStates(Recorder(fail_topic=f"p/zones/grid/{grid[1]}/state"), topic_prefix="p")
    zones.dirty = {("grid", code) for code in grid[:3]}
    with session_factory() as session:
        assert zones.flush(session, now=T0) == 1
    assert zones.dirty == {("grid", grid[1]), ("grid", grid[2])}
    zones.publisher.fail_topic = None
    with session_factory() as session:
        assert zones.flush(session, now=T0) == 2
    assert zones.dirty == set() and len(zones.publisher.published) == 3


class Pipelined:
    """A publisher with the MQTT sender's publish_nowait/confirm; records the order of the calls."""

    def __init__(self, fail_topic: str | None = None):
        self.calls: list[tuple[str, str]] = []
        self.fail_topic = fail_topic

    def publish_nowait(self, topic, payload, *, retain=False, expiry_s=None):
        assert retain
        self.calls.append(("send", topic))
        return topic

    def confirm(self, ticket, *, timeout_s=None):
        self.calls.append(("ack", ticket))
        if ticket == self.fail_topic:
            raise DeliveryError("no PUBACK", retryable=True)


def test_zone_states_are_sent_back_to_back_then_acknowledged(session_factory, grid):
    for code in grid[:3]:
        open_alert(session_factory, layer="grid", code=code, now=T0)
    topics = [f"p/zones/grid/{code}/state" for code in sorted(grid[:3])]
    zones = ZoneStates(Pipelined(fail_topic=topics[1]), topic_prefix="p")
    zones.dirty = {("grid", code) for code in grid[:3]}
    with session_factory() as session:
        assert zones.flush(session, now=T0) == 1
    assert zones.publisher.calls == [("send", t) for t in topics] + [("ack", topics[0]), ("ack", topics[1])]
    assert zones.dirty == {("grid", c) for c in sorted(grid[:3])[1:]}  # the unacknowledged one and after
    zones.publisher.fail_topic = None
    with session_factory() as session:
        assert zones.flush(session, now=T0) == 2
    assert zones.dirty == set()


def test_flushing_nothing_runs_no_query(session_factory, engine):
    zones = ZoneStates(Recorder(), topic_prefix="p")
    with session_factory() as session, statements(engine, session) as seen:
        assert zones.flush(session, now=T0) == 0
    assert seen == []
