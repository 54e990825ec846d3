"""The post pipeline's database work: a few statements per batch, never one round trip per post.

A chunk's observations and its counted posts' signals go in by one statement: INSERT ... SELECT FROM
unnest(...) ON CONFLICT DO NOTHING, and the signals of the rows it inserted, from the zone weights
computed in the process (ingest.posts.zones), all as packed binary arrays (db.pg_binary). Everything
runs in the caller's transaction, which commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from alerts import signals as alert_signals
from db import pg_binary, raw


SOURCE = "post"

# Their lists (10,000 strings for a full batch) go packed by db.pg_binary, not element by element.
_EXISTING = "SELECT external_id, id FROM observations WHERE source = 'post' AND external_id = ANY(:ids)"

_RECENT = """
    SELECT text_fingerprint, id, observed_at FROM observations
    WHERE text_fingerprint = ANY(:fps) AND observed_at >= :since AND observed_at <= :until
"""

# A chunk of posts and its signals go in one statement: the new observations (ON CONFLICT DO NOTHING),
# then the signals of those just inserted (alerts' own INSERT, alerts.signals.insert_sql), joined on
# external_id to their zone weights. A post keeps no observation_zones rows: nothing read them but the
# signals, and they were the same rows written twice.
# The arrays are packed whole by db.pg_binary; the caller may send several chunks before reading any
# result (db.raw.pipeline), so PostgreSQL writes one chunk while Python prepares the next.
_INSERT = """
    WITH ins AS (
        INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at,
                                  received_at, geom, uncertainty_m, geotag_method, raw, text_fingerprint,
                                  zone_weights)
        SELECT 'post', u.external_id, u.author_hash, u.text, u.category, u.confidence, u.observed_at, :now,
               ST_GeomFromWKB(u.wkb, 4326), u.uncertainty_m, u.geotag_method, CAST(u.raw AS jsonb),
               u.text_fingerprint, u.zone_weights
        FROM unnest(CAST(:external_id AS text[]), CAST(:author_hash AS text[]), CAST(:text AS text[]),
                    CAST(:category AS text[]), CAST(:confidence AS float8[]),
                    CAST(:observed_at AS timestamptz[]), CAST(:wkb AS bytea[]), CAST(:uncertainty_m AS float8[]),
                    CAST(:geotag_method AS text[]), CAST(:raw AS text[]), CAST(:text_fingerprint AS text[]),
                    CAST(:zone_weights AS bytea[]))
             AS u(external_id, author_hash, text, category, confidence, observed_at, wkb, uncertainty_m,
                  geotag_method, raw, text_fingerprint, zone_weights)
        ON CONFLICT (source, external_id) DO NOTHING
        RETURNING id, external_id, source, category, confidence, author_hash, observed_at
    ), signal_rows AS (
        """ + alert_signals.insert_sql("""
        SELECT ins.id, l.zone, ins.source, ins.category, ins.confidence, l.weight, ins.author_hash, ins.observed_at
        FROM unnest(CAST(:link_external_id AS text[]), CAST(:link_zone AS integer[]), CAST(:link_weight AS float8[]))
             AS l(external_id, zone, weight)
        JOIN ins ON ins.external_id = l.external_id""") + """
    )
    SELECT external_id, id FROM ins
"""

_PACK = {"external_id": pg_binary.text, "author_hash": pg_binary.text, "text": pg_binary.text,
         "category": pg_binary.text, "confidence": pg_binary.float8, "observed_at": pg_binary.timestamptz,
         "wkb": pg_binary.bytea, "uncertainty_m": pg_binary.float8, "geotag_method": pg_binary.text,
         "raw": pg_binary.text, "text_fingerprint": pg_binary.text, "zone_weights": pg_binary.bytea}


@dataclass(frozen=True)
class Links:
    """Zone weights to store as signals: (external id of the post, zone id, weight) per row."""

    external_id: list[str]
    zone: np.ndarray
    weight: np.ndarray


class Sent:
    """A chunk's statement, sent; `ids()` waits for it (inside db.raw.pipeline, for the pipeline's sync)."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def ids(self) -> dict[str, int]:
        """{external_id: id} of the rows this statement inserted (a row already stored, or stored by a
        concurrent batch first, is left out: a duplicate)."""
        return dict(self._cursor.fetchall()) if self._cursor is not None else {}


def existing_ids(session: Session, *, external_ids: Sequence[str]) -> dict[str, int]:
    """Observation ids of posts already stored under these (prefixed) external ids."""
    if not external_ids:
        return {}
    return dict(raw.execute(session, _EXISTING, {"ids": pg_binary.text(list(external_ids))}, tuples=True).fetchall())


def recent_fingerprints(session: Session, *, fingerprints: Sequence[str], since: datetime,
                        until: datetime) -> dict[str, list[tuple[int, datetime]]]:
    """Stored posts with these text fingerprints observed in [since, until]."""
    out: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
    if fingerprints:
        for fp, oid, at in raw.execute(session, _RECENT, {"fps": pg_binary.text(list(fingerprints)), "since": since,
                                                          "until": until}, tuples=True).fetchall():
            out[fp].append((oid, at))
    return out


def send_posts(session: Session, *, columns: dict[str, list], links: Links, now: datetime) -> Sent:
    """Insert new post observations, and the signals of those inserted here that `links` names.
    `columns` holds the observation rows as column lists (ingest.posts.chunks.rows). Returns at once
    inside db.raw.pipeline; read the inserted ids from the result."""
    if not columns["external_id"]:
        return Sent(None)
    params = {name: pack(columns[name]) for name, pack in _PACK.items()}
    params.update(now=now, link_external_id=pg_binary.text(links.external_id),
                  link_zone=pg_binary.int4(links.zone), link_weight=pg_binary.float8(links.weight))
    return Sent(raw.execute(session, _INSERT, params, tuples=True))
