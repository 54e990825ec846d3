"""What the live map receives: observation and alert-event messages read by id or after a cursor.

Every message has an `id` ("obs:<observation id>" or "evt:<outbox event id>"); ids of one kind
increase, so a client that remembers the highest of each resumes with `since_obs` / `since_evt`.

Each message also carries, unsent, its category and zones, so the hub can give every socket only what its
operator's agencies cover (`visible`); an observation's zones are read only while some agency exists.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from accounts import agencies
from accounts.agencies import Coverage
from ingest import observations as obs_service

# Ids are assigned at insert but become visible at commit, so a row with a lower id can commit after
# one with a higher id. Backfill re-reads this many ids below the cursor; clients dedupe by id.
OVERLAP_IDS = 200
BACKFILL_LIMIT = 5_000


@dataclass(frozen=True)
class Message:
    kind: str  # obs | evt
    row_id: int
    text: str  # serialised once, sent to every client as is
    category: str | None = None  # None: unknown, shown only to callers who see everything
    zones: frozenset[tuple[str, str]] = frozenset()  # (layer, code) it lies in, of the layers agencies name

    @property
    def key(self) -> tuple[str, int]:
        return self.kind, self.row_id


def parse_payload(payload: str) -> tuple[str, list[int]] | None:
    """'obs:12' -> ('obs', [12]); 'obs:12,13' (one NOTIFY per insert statement, migration 0010) ->
    ('obs', [12, 13]); anything else -> None (ignored, never fatal)."""
    kind, _, raw = payload.partition(":")
    ids = raw.split(",")
    if kind in ("obs", "evt") and all(i.isdigit() for i in ids):
        return kind, [int(i) for i in ids]
    return None


def visible(message: Message, coverage: Coverage) -> bool:
    """Whether a socket whose operator has `coverage` gets this message."""
    return coverage.covers(message.category, message.zones)


def obs_message(obs_id: int, feature_json: str,
                scope: tuple[str | None, frozenset[tuple[str, str]]] = (None, frozenset())) -> Message:
    """Wrap a serialised feature (from PostgreSQL) without parsing it again."""
    return Message("obs", obs_id, f'{{"id":"obs:{obs_id}","type":"observation","feature":{feature_json}}}',
                   scope[0], scope[1])


def evt_message(row_id: int, payload: dict[str, Any]) -> Message:
    body = {"id": f"evt:{row_id}", "type": "alert_event", "event": payload}
    zone = payload.get("zone") or {}
    zones = frozenset({(zone["layer"], zone["code"])}) if "layer" in zone and "code" in zone else frozenset()
    return Message("evt", row_id, json.dumps(body, separators=(",", ":"), default=str), payload.get("category"),
                   zones)


def _obs_messages(session: Session, features: Sequence[tuple[int, str]]) -> list[Message]:
    """Observation messages, oldest first, with their category and zones while any agency exists."""
    scopes: dict[int, tuple[str, frozenset]] = {}
    if features and agencies.any_agency(session):
        scopes = obs_service.scopes(session, ids=[i for i, _ in features],
                                    layers=agencies.zone_layers_in_use(session))
    return [obs_message(i, f, scopes.get(i, (None, frozenset()))) for i, f in reversed(features)]


def _events(session: Session, where: str, params: dict[str, Any]) -> list[Message]:
    rows = session.execute(
        text(f"SELECT id, payload FROM outbox_events WHERE {where} ORDER BY id LIMIT :limit"),
        {"limit": BACKFILL_LIMIT, **params},
    ).all()
    return [evt_message(row_id, payload) for row_id, payload in rows]


def read_by_ids(session: Session, *, obs_ids: Sequence[int], evt_ids: Sequence[int], now: datetime,
                page_size: int = obs_service.MAX_LIMIT) -> list[Message]:
    """Messages for rows named by NOTIFY, read `page_size` observations at a time (a burst of bulk inserts
    can name more than one read may return); observations without a location are skipped."""
    out: list[Message] = []
    ids = sorted(set(obs_ids))
    for start in range(0, len(ids), page_size):
        page = ids[start:start + page_size]
        features = obs_service.observation_features_json(session, now=now, ids=page, limit=len(page))
        out.extend(_obs_messages(session, features))
    if evt_ids:
        out.extend(_events(session, "id = ANY(:ids)", {"ids": list(evt_ids)}))
    return out


def backfill(session: Session, *, since_obs: int | None, since_evt: int | None, now: datetime) -> list[Message]:
    """What a reconnecting client missed after its cursors (with a small overlap), oldest first."""
    out: list[Message] = []
    if since_obs is not None:
        features = obs_service.observation_features_json(
            session, now=now, after_id=max(0, since_obs - OVERLAP_IDS), limit=BACKFILL_LIMIT)
        out.extend(_obs_messages(session, features))
    if since_evt is not None:
        out.extend(_events(session, "id > :after", {"after": max(0, since_evt - OVERLAP_IDS)}))
    return out


def cursors(session: Session) -> dict[str, int]:
    """The highest ids now: where a client without a cursor starts."""
    obs, evt = session.execute(
        text("SELECT (SELECT coalesce(max(id), 0) FROM observations), (SELECT coalesce(max(id), 0) FROM outbox_events)")
    ).one()
    return {"obs": int(obs), "evt": int(evt)}
