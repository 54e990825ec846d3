"""The zone layers public posts write signals in: always every layer a rule counts posts in.

A located post touches a zone in each zone layer (five in the demo), but signals are what the rules
count, and the rules count posts in one or two layers. Writing the rest was four signal rows in five
for nobody. So a post writes signals only in the layers of `signal_layers`, and keeps its zone weights
in every layer on its observation (`observations.zone_weights`, ingest.posts.zones.pack_weights).

When the rules start counting posts in a layer that is not in the table (a rule added or changed, any
process, any time), the batch that notices adds it and writes the signals its posts would have had:
those of the counted posts observed within the longest window of the layer's rules, from their stored
weights. So the new rule sees the evidence it would have seen had the layer been written all along.
What it does not get is history older than that window: a spike rule's baselines (alerts.baselines)
in a newly added layer start from zero then, as on a new install. A layer stays once added.

Locking, so that no post falls between the two: every batch takes a shared advisory lock before it
reads the table and holds it to its commit; adding a layer takes the exclusive lock. The adder waits
for batches in flight (their posts are committed when it reads them), and a batch that starts after
it waits for its commit, then reads the new layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts import signals as alert_signals
from db import locks
from ingest.posts import zones as post_zones

LOCK = (7_100_7, 0)  # advisory lock: post batches (shared) against adding a signal layer (exclusive)

_LAYERS = text(
    "SELECT l.name, s.layer_id IS NOT NULL FROM zone_layers l LEFT JOIN signal_layers s ON s.layer_id = l.id")

# A post's observed_at is never after its received_at (ingest.posts.pipeline clamps it to `now`), so the
# received_at condition only lets the index skip the older posts.
_COUNTED = text(
    """
    SELECT id, zone_weights FROM observations
    WHERE source = 'post' AND zone_weights IS NOT NULL AND observed_at > :since AND received_at > :since
    """
)

# The layer's zone ids come back with the new row (none when it was there already).
_ADD = text(
    """
    INSERT INTO signal_layers (layer_id, added_at) SELECT id, :now FROM zone_layers WHERE name = :layer
    ON CONFLICT DO NOTHING
    RETURNING (SELECT array_agg(z.id) FROM zones z WHERE z.layer_id = signal_layers.layer_id)
    """
)

# The signals these posts would have had in the new layer's zones (alerts' INSERT: a signal there already,
# written by a batch since, is skipped).
_BACKFILL = text(alert_signals.insert_sql(
    """
    SELECT o.id AS observation_id, u.zone AS zone_id, o.source, o.category, o.confidence, u.weight,
           o.author_hash AS author_key, o.observed_at
    FROM unnest(CAST(:obs AS bigint[]), CAST(:zone AS integer[]), CAST(:weight AS float8[])) AS u(obs, zone, weight)
    JOIN observations o ON o.id = u.obs
    """, new_only=True))


def _read(session: Session) -> tuple[set[str], set[str]]:
    """(the layers posts write signals in, every zone layer)."""
    rows = session.execute(_LAYERS).all()
    return {name for name, written in rows if written}, {name for name, _ in rows}


def layers_to_write(session: Session, *, wanted: Mapping[str, float], now: datetime) -> set[str]:
    """The layers this batch writes post signals in: those of the table, after adding any of `wanted`
    (layer -> the longest window, in seconds, of the rules counting posts there) that it lacks. Takes
    the lock this module describes, held to the caller's commit (so once per transaction: a second call
    that had to add a layer would upgrade the lock). Layers that do not exist are ignored."""
    have, known = _read(session)
    if not (set(wanted) & known) - have:
        locks.xact_lock(session, LOCK, shared=True)
        return _read(session)[0]  # read again under the lock: a layer added meanwhile is written too
    locks.xact_lock(session, LOCK)
    have, known = _read(session)
    for layer in sorted((set(wanted) & known) - have):
        add_layer(session, layer=layer, since=now - timedelta(seconds=wanted[layer]), now=now)
    return _read(session)[0]


def add_layer(session: Session, *, layer: str, since: datetime, now: datetime) -> int:
    """Write posts' signals in `layer` from now on, and now for the counted posts observed after
    `since`. The caller holds the exclusive lock. Returns how many signals it wrote."""
    zone_ids = session.execute(_ADD, {"layer": layer, "now": now}).scalar()
    if not zone_ids:
        return 0
    in_layer = np.array(sorted(zone_ids), dtype=np.int64)
    obs, zone, weight = [], [], []
    for oid, blob in session.execute(_COUNTED, {"since": since}):
        zones, weights = post_zones.unpack_weights(bytes(blob))
        keep = np.isin(zones, in_layer)
        obs += [oid] * int(keep.sum())
        zone += zones[keep].tolist()
        weight += weights[keep].tolist()
    if not obs:
        return 0
    return session.execute(_BACKFILL, {"obs": obs, "zone": zone, "weight": weight}).rowcount or 0
