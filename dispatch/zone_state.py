"""The retained per-zone state topic: `{prefix}/zones/{layer}/{code}/state`.

It holds the zone's unresolved alerts (schema `tocsin.zone_state/1`, docs/mqtt.md), and an empty
retained payload clears it once none remain, so a consumer that connects at any time learns what
is going on everywhere from the retained messages alone. The relay marks a zone dirty when it
sends an event for it and sends the dirty zones' states right behind its batch's events, awaiting
both together; a zone whose state could not be published stays dirty and is tried again on the
next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db import raw as db_raw
from dispatch.senders.base import DeliveryError

log = logging.getLogger(__name__)

SCHEMA = "tocsin.zone_state/1"
_SEVERITY_RANK = {"minor": 1, "major": 2, "critical": 3}

# A zone state's columns, in the order every read of them returns (`_summary` reads them by name).
STATE_COLUMNS = ("layer", "code", "alert_id", "rule", "category", "severity", "state", "opened_at", "updated_at",
                 "evidence_count", "ack_code", "zone_name")
_SELECT = """
    SELECT l.name AS layer, z.code, a.id AS alert_id, a.rule, a.category, a.severity, a.state, a.opened_at,
           a.updated_at, a.evidence_count, a.ack_code, z.name AS zone_name
"""
_COLUMNS = _SELECT + "FROM alerts a JOIN zones z ON z.id = a.zone_id JOIN zone_layers l ON l.id = z.layer_id\n"

_UNRESOLVED = text(_COLUMNS + "WHERE l.name = :layer AND z.code = :code AND a.state <> 'resolved' ORDER BY a.id")

# Every dirty zone's unresolved alerts in one statement (zones without any return no rows), for `flush` and for
# `send` when its caller has not read them (the relay's claim does, with DIRTY_ALERTS).
_UNRESOLVED_MANY = (
    _COLUMNS + "WHERE (l.name, z.code) IN (SELECT * FROM unnest(CAST(:layers AS text[]), CAST(:codes AS text[]))) "
    "AND a.state <> 'resolved' ORDER BY a.id"
)


# The same columns for the zones of a `dirty (layer, code)` relation of the caller's statement: the relay's claim
# (dispatch.relay) reads the zones of the events it claims, and of those left dirty, in the claim itself. Driven
# from `dirty` (a handful of zones), each zone's unresolved alerts through uq_alerts_open_zone_category.
DIRTY_ALERTS = _SELECT + """
    FROM (SELECT DISTINCT layer, code FROM dirty) d
    JOIN zone_layers l ON l.name = d.layer
    JOIN zones z ON z.layer_id = l.id AND z.code = d.code
    JOIN alerts a ON a.zone_id = z.id AND a.state <> 'resolved'
"""


def zone_state_topic(prefix: str, layer: str, code: str) -> str:
    return f"{prefix}/zones/{layer}/{code}/state"


def zone_summary(session: Session, *, layer: str, code: str, now: datetime) -> dict[str, Any] | None:
    """The zone's unresolved alerts as the retained payload; None when there are none."""
    rows = session.execute(_UNRESOLVED, {"layer": layer, "code": code}).all()
    return _summary(rows, layer=layer, code=code, now=now)


def zone_summaries(session: Session, zones: Iterable[tuple[str, str]], *,
                   now: datetime) -> dict[tuple[str, str], dict[str, Any] | None]:
    """`zone_summary` for many (layer, code) zones in one statement; None for a zone with no alerts."""
    wanted = sorted(set(zones))
    if not wanted:
        return {}
    rows = db_raw.execute(session, _UNRESOLVED_MANY, {"layers": [layer for layer, _ in wanted],
                                                      "codes": [code for _, code in wanted]}).fetchall()
    return summarize(rows, wanted, now=now)


def summarize(rows: Iterable[Any], zones: Iterable[tuple[str, str]], *,
              now: datetime) -> dict[tuple[str, str], dict[str, Any] | None]:
    """Each of `zones`' retained payload (None: no unresolved alert) from rows of `_COLUMNS` or `DIRTY_ALERTS`
    (in alert id order; rows of other zones are ignored)."""
    by_zone: dict[tuple[str, str], list[Any]] = {zone: [] for zone in zones}
    for r in rows:
        found = by_zone.get((r.layer, r.code))
        if found is not None:
            found.append(r)
    return {zone: _summary(found, layer=zone[0], code=zone[1], now=now) for zone, found in by_zone.items()}


def _summary(rows: Sequence[Any], *, layer: str, code: str, now: datetime) -> dict[str, Any] | None:
    if not rows:
        return None
    return {
        "schema": SCHEMA,
        "zone": {"layer": layer, "code": code, "name": rows[0].zone_name},
        "as_of": now.isoformat(),
        "alert_count": len(rows),
        "max_severity": max((r.severity for r in rows), key=lambda s: _SEVERITY_RANK.get(s, 0)),
        "alerts": [
            {"alert_id": r.alert_id, "rule": r.rule, "category": r.category, "severity": r.severity, "state": r.state,
             "opened_at": r.opened_at.isoformat(), "updated_at": r.updated_at.isoformat(),
             "evidence_count": r.evidence_count, "ack_code": r.ack_code}
            for r in rows
        ],
    }


class ZoneStates:
    """Zones whose retained state needs republishing."""

    def __init__(self, publisher: Any, *, topic_prefix: str) -> None:
        self.publisher = publisher
        self.topic_prefix = topic_prefix
        self.dirty: set[tuple[str, str]] = set()

    def mark(self, payload: dict[str, Any]) -> None:
        zone = payload.get("zone") or {}
        if zone.get("layer") and zone.get("code"):
            self.dirty.add((zone["layer"], zone["code"]))

    def flush(self, session: Session, *, now: datetime) -> int:
        """Publish every dirty zone's state (retained) and await the broker; returns how many were published.
        `send` then `confirm`, for a caller with nothing else in flight."""
        return self.confirm(self.send(session, now=now))

    def params(self) -> dict[str, list[str]]:
        """The dirty zones, for a statement that reads them with `DIRTY_ALERTS` (`layers`, `codes`)."""
        return {"layers": [layer for layer, _ in self.dirty], "codes": [code for _, code in self.dirty]}

    def send(self, session: Session, *, now: datetime) -> list[tuple[tuple[str, str], Any]]:
        """Send every dirty zone's state back to back, without waiting for the broker; `confirm` awaits their
        PUBACKs. One statement reads them. A send that fails leaves its zone, and the zones after it (the broker
        is likely down), dirty for the next pass; republishing a retained state is harmless."""
        return self._send(zone_summaries(session, self.dirty, now=now))

    def send_read(self, alerts: Sequence[Any], *, now: datetime) -> list[tuple[tuple[str, str], Any]]:
        """`send`, from the dirty zones' unresolved alerts read already (`DIRTY_ALERTS`): the relay reads them
        in its claim and sends them behind its batch's events, so that one wait covers both."""
        return self._send(summarize(alerts, self.dirty, now=now))

    def _send(self, summaries: dict[tuple[str, str], dict[str, Any] | None]) -> list[tuple[tuple[str, str], Any]]:
        send = getattr(self.publisher, "publish_nowait", None)
        sent: list[tuple[tuple[str, str], Any]] = []
        for layer, code in sorted(self.dirty):
            summary = summaries[(layer, code)]
            topic = zone_state_topic(self.topic_prefix, layer, code)
            payload = summary if summary is not None else b""
            try:
                if send is None:
                    self.publisher.publish(topic, payload, retain=True)
                    sent.append(((layer, code), None))
                else:
                    sent.append(((layer, code), send(topic, payload, retain=True)))
            except DeliveryError as exc:
                log.warning("zone state %s/%s not published (%s); will retry", layer, code, exc)
                break
        return sent

    def confirm(self, sent: Sequence[tuple[tuple[str, str], Any]]) -> int:
        """Await the PUBACKs of what `send` sent; a zone is clean once its state is acknowledged. Returns how
        many were; the first that is not (and those after it) stay dirty."""
        done = 0
        for (layer, code), ticket in sent:
            if ticket is not None:
                try:
                    self.publisher.confirm(ticket)
                except DeliveryError as exc:
                    log.warning("zone state %s/%s not acknowledged (%s); will retry", layer, code, exc)
                    break
            self.dirty.discard((layer, code))
            done += 1
        return done
