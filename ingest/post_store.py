"""The post pipeline's database work: a few statements per batch, never one round trip per post.

Observations go in by one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING (binary array
parameters); zone weights are computed in the process (ingest.post_zones); the counted posts' signals
go in by one INSERT ... SELECT. Everything runs in the caller's transaction, which commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from db import raw


SOURCE = "post"

_EXISTING = text("SELECT external_id, id FROM observations WHERE source = 'post' AND external_id = ANY(:ids)")

_RECENT = text(
    """
    SELECT text_fingerprint, id, observed_at FROM observations
    WHERE text_fingerprint = ANY(:fps) AND observed_at >= :since AND observed_at <= :until
    """
)

# Column arrays go through db.raw: a chunk's thousands of elements in binary, a connector's few posts as
# array literals.
_INSERT = """
    INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at,
                              received_at, geom, uncertainty_m, geotag_method, raw, text_fingerprint)
    SELECT 'post', u.external_id, u.author_hash, u.text, u.category, u.confidence, u.observed_at, :now,
           ST_GeomFromWKB(u.wkb, 4326), u.uncertainty_m, u.geotag_method, CAST(u.raw AS jsonb), u.text_fingerprint
    FROM unnest(CAST(:external_id AS text[]), CAST(:author_hash AS text[]), CAST(:text AS text[]),
                CAST(:category AS text[]), CAST(:confidence AS float8[]),
                CAST(:observed_at AS timestamptz[]), CAST(:wkb AS bytea[]), CAST(:uncertainty_m AS float8[]),
                CAST(:geotag_method AS text[]), CAST(:raw AS text[]), CAST(:text_fingerprint AS text[]))
         AS u(external_id, author_hash, text, category, confidence, observed_at, wkb, uncertainty_m,
              geotag_method, raw, text_fingerprint)
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING external_id, id
"""

# A counted post's signals are its zone weights with the observation's own fields. Posts keep no
# observation_zones rows: nothing but this statement read them, and they were the same rows written twice.
_INSERT_SIGNALS = """
    INSERT INTO signals (observation_id, zone_id, source, category, confidence, weight, author_key, observed_at)
    SELECT l.obs, l.zone, o.source, o.category, o.confidence, l.weight, o.author_hash, o.observed_at
    FROM unnest(CAST(:obs AS bigint[]), CAST(:zone AS integer[]), CAST(:weight AS float8[]))
         AS l(obs, zone, weight)
    JOIN observations o ON o.id = l.obs
"""


def existing_ids(session: Session, *, external_ids: Sequence[str]) -> dict[str, int]:
    """Observation ids of posts already stored under these (prefixed) external ids."""
    if not external_ids:
        return {}
    return dict(session.execute(_EXISTING, {"ids": list(external_ids)}).all())


def recent_fingerprints(session: Session, *, fingerprints: Sequence[str], since: datetime,
                        until: datetime) -> dict[str, list[tuple[int, datetime]]]:
    """Stored posts with these text fingerprints observed in [since, until]."""
    out: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
    if fingerprints:
        for fp, oid, at in session.execute(_RECENT, {"fps": list(fingerprints), "since": since, "until": until}):
            out[fp].append((oid, at))
    return out


def insert_observations(session: Session, *, columns: dict[str, list], now: datetime) -> dict[str, int]:
    """Insert new post observations; returns {external_id: id} for the rows this call inserted
    (a row already stored, or stored by a concurrent batch first, is left out: a duplicate)."""
    if not columns["external_id"]:
        return {}
    return dict(raw.execute(session, _INSERT, {**columns, "now": now}).fetchall())


def write_signals(session: Session, *, obs: np.ndarray, zone: np.ndarray, weight: np.ndarray) -> None:
    """Write the signals of counted posts: one row per (observation, zone, weight), with the
    observation's category, confidence, author and time."""
    if len(obs):
        raw.execute(session, _INSERT_SIGNALS, {"obs": obs.tolist(), "zone": zone.tolist(), "weight": weight.tolist()})


def purge_posts(session: Session, *, received_before: datetime) -> int:
    """Delete posts received before the cutoff (their zone links, signals and alert evidence cascade)."""
    return session.execute(
        text("DELETE FROM observations WHERE source = :source AND received_at < :before"),
        {"source": SOURCE, "before": received_before},
    ).rowcount
