"""Helpers for the dispatch tests: alerts and outbox events written the way the alert service writes them."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from alerts import ackcodes, events, outbox
from alerts.events import EventKind, Tick
from alerts.models import Alert, AlertNotification
from db.session import transaction

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
REPO = Path(__file__).resolve().parents[2]


def zone_ref(session, layer: str, code: str) -> tuple[int, dict[str, str]]:
    zone_id, name = session.execute(
        text("SELECT z.id, z.name FROM zones z JOIN zone_layers l ON l.id = z.layer_id "
             "WHERE l.name = :l AND z.code = :c"), {"l": layer, "c": code}).one()
    return zone_id, {"layer": layer, "code": code, "name": name}


def open_alert(factory, *, code: str = "A", layer: str = "district", rule: str = "gas_leak_report",
               category: str = "gas_leak", severity: str = "critical", now: datetime = T0) -> Alert:
    """Open an alert and write its `opened` outbox event and notification-log row in one transaction, as
    alerts.service does. (Without the log row, a resolve before the live sweeper's first pass decided
    "never notified" and sent nothing, so the zone's retained state was never cleared: a flaky test.)"""
    with transaction(factory) as session:
        zone_id, zone = zone_ref(session, layer, code)
        seq = session.execute(text("SELECT nextval('ack_code_seq')")).scalar_one()
        alert = Alert(rule=rule, zone_id=zone_id, category=category, severity=severity, state="open",
                      ack_code=ackcodes.new_ack_code(seq), evidence_count=1, distinct_authors=1, opened_at=now,
                      updated_at=now, last_evidence_at=now, expires_at=now + timedelta(hours=6),
                      last_notified_at=now)
        session.add(alert)
        session.flush()
        event = outbox.emit(session, alert=alert, kind=EventKind.OPENED, reason="first_notification", zone=zone,
                            now=now, evidence_by_source={"utility_report": 1}, rules={}, silenced=False)
        session.add(AlertNotification(alert_id=alert.id, at=now, reason="first_notification", kind=event.kind,
                                      state=alert.state, severity=alert.severity, event_id=event.event_id))
    return alert


def emit(factory, alert_id: int, *, kind: EventKind, now: datetime) -> None:
    """Write one more outbox event (e.g. an escalation tick) for an existing alert."""
    with transaction(factory) as session:
        alert = session.get_one(Alert, alert_id)
        _, zone = zone_ref_by_id(session, alert.zone_id)
        _emit(session, alert, kind=kind, zone=zone, now=now)


def _emit(session, alert: Alert, *, kind: EventKind, zone: dict[str, str], now: datetime) -> None:
    """One event as the alert service writes it; an escalation tick as the sweeper does (escalate_after 5 min)."""
    tick = None
    if kind is EventKind.ESCALATION_TICK:
        minutes = (now - alert.opened_at).total_seconds() / 60
        tick = Tick(tick=int(minutes // 5), escalate_after_s=300, minutes_since_open=minutes)
    outbox.emit(session, alert=alert, kind=kind, reason=events.reasons_for(kind)[0], zone=zone, now=now,
                evidence_by_source={"utility_report": 1}, rules={}, silenced=False, tick=tick)


def zone_ref_by_id(session, zone_id: int) -> tuple[int, dict[str, str]]:
    layer, code, name = session.execute(
        text("SELECT l.name, z.code, z.name FROM zones z JOIN zone_layers l ON l.id = z.layer_id WHERE z.id = :i"),
        {"i": zone_id}).one()
    return zone_id, {"layer": layer, "code": code, "name": name}


def deliveries(factory) -> list[dict]:
    with factory() as session:
        rows = session.execute(text(
            "SELECT d.id, d.alert_id, r.name, d.tier, d.status, d.attempts, d.provider_sid, d.last_error, d.body "
            "FROM deliveries d LEFT JOIN responders r ON r.id = d.responder_id ORDER BY d.id")).mappings().all()
    return [dict(r) for r in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s")


def dedupe(messages: list[tuple[str, bytes]]) -> dict[str, dict]:
    """Alert events by event_id (QoS 1 may deliver twice)."""
    return {json.loads(p)["event_id"]: json.loads(p) for _, p in messages if p}


def run(cmd: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, **kw)


def emit_many(factory, alert_id: int, n: int, *, kind: EventKind = EventKind.UPDATED, now: datetime = T0) -> None:
    """`n` more outbox events for one alert, in one transaction (a burst)."""
    with transaction(factory) as session:
        alert = session.get_one(Alert, alert_id)
        _, zone = zone_ref_by_id(session, alert.zone_id)
        for _ in range(n):
            _emit(session, alert, kind=kind, zone=zone, now=now)


class PersistentSubscriber:
    """A real MQTT subscriber with a persistent session (clean_session=false) at QoS 1.

    It reconnects on its own, and the broker keeps its subscription and queues its messages while
    it is away. `delay_s` makes it slow: it sleeps that long in every message callback.
    """

    def __init__(self, url: str, topic: str, *, delay_s: float = 0.0) -> None:
        import queue
        import threading
        import uuid
        from urllib.parse import urlparse

        import paho.mqtt.client as mqtt

        u = urlparse(url)
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected = threading.Event()
        self.topic = topic
        self.delay_s = delay_s
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"psub-{uuid.uuid4().hex[:10]}",
                                  clean_session=False, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(u.hostname, u.port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(5), f"could not subscribe to {topic} on {url}"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(self.topic, qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        self.messages.put((msg.topic, msg.payload))

    def collect(self, event_ids: set[str], *, timeout: float) -> tuple[set[str], int]:
        """Wait until every id in `event_ids` arrived; returns (ids seen, messages received)."""
        import queue

        seen: set[str] = set()
        received = 0
        deadline = time.monotonic() + timeout
        while not event_ids <= seen and time.monotonic() < deadline:
            try:
                _, payload = self.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            received += 1
            seen.add(json.loads(payload)["event_id"])
        return seen, received

    def close(self) -> None:
        # Unsubscribe first so the persistent session left on a shared broker holds nothing.
        if self.connected.is_set():
            self.client.unsubscribe(self.topic)
        self.client.disconnect()
        self.client.loop_stop()


def event_ids(factory) -> set[str]:
    with factory() as session:
        return {str(e) for e in session.execute(text("SELECT event_id FROM outbox_events")).scalars()}
