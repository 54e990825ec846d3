"""The post pipeline, batched: classify and geotag in Python, then a handful of set-based statements.

Interface (the HTTP batch endpoint, `tocsin replay` and the Jetstream connector all call this):

    from ingest.posts import pipeline, parse as posts
    items = posts.parse_items(list_of_dicts)              # -> list[PostIn | posts.Rejected]
    valid = [p for p in items if isinstance(p, posts.PostIn)]
    results = pipeline.ingest_posts(
        session, posts=valid, index=gazetteer_index,       # geo.gazetteer.GazetteerIndex
        lexicon=lexicon,                                   # ingest.posts.classify.Lexicon
        rules=rules,                                       # list[alerts.rules.Rule]
        config=pipeline.PipelineConfig.from_settings(settings), now=datetime.now(UTC))
    # -> list[ItemResult], one per post, ItemResult.index = position in `posts`; status is created,
    #    duplicate (id = the stored row, duplicate_of = the earlier one) or rejected (error says why:
    #    coordinates that only make sense swapped, [lat, lon])

`PipelineConfig.from_settings` reads `author_hash_key`, `jurisdiction_bbox` and `post_dedup_window_s`
from any settings-like object. `ingest_posts` never commits: the caller's boundary does.

Per batch, in chunks of `config.chunk` posts and stages that overlap: a worker process classifies and geotags
each chunk and matches its incident posts to zones (ingest.posts.chunks, against a cached copy of
`zone_pieces`, geo.match_memory; ingest.posts.workers forks it with the server's caches), every chunk
sent to it at once, while this thread (1) works out which posts are new: author keys (once per
distinct author) and repost fingerprints, one query for (source, external_id) already stored and one
for recent reposts; then (2) sends each chunk as the worker hands it over, in one statement: the new
observations (INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING), each counted one keeping its
zone weights in every layer, and the signals of the counted ones among those it inserted, in the layers
the rules count posts in (ingest.posts.signal_layers; no observation_zones rows), in psycopg's pipeline
mode, so PostgreSQL writes one chunk while Python prepares the next; and (3) reads the ids and has
the rules evaluate every (rule, zone) the batch touched in four statements (`alerts.service.evaluate`),
counting after one more has taken the zones' locks (`alerts.signals.lock`). The worker, this thread
and PostgreSQL each keep a core busy in turn. With `worker_process=False` (or no fork) the stage runs
in a thread one chunk ahead; batches under `config.thread_min` posts run it inline.

Dedup. The same (source, external_id) is stored once; a repeat answers `duplicate` with the stored id.
The same normalised text from the same author within `dedup_window_s` (default 1 h) of another stored
post is stored (operators may want to see it) but feeds no rule: it answers `duplicate` with its own id
and `duplicate_of` the earlier post. Within a batch the earliest post (by created_at) counts. Two
concurrent batches carrying the same repost can each count it once; the window check is not a lock.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from alerts import service as alert_service
from alerts import signals as alert_signals
from alerts.rules import Rule
from db import raw
from geo import match_memory as zone_match
from geo.gazetteer import GazetteerIndex
from ingest.posts import chunks as post_chunks, store as post_store, workers as post_workers, zones as post_zones, signal_layers
from ingest.posts.classify import Lexicon
from ingest.posts.chunks import Head
from ingest.posts.parse import PostIn, author_keys, text_fingerprint
from ingest.posts.state import PostState

log = logging.getLogger(__name__)

SOURCE = "post"  # observations.source and signals.source for every public post


@dataclass(frozen=True)
class PipelineConfig:
    author_hash_key: str
    jurisdiction_bbox: tuple[float, float, float, float]
    dedup_window_s: float = 3600.0
    min_geotag_confidence: float = 0.5
    worker_process: bool = True  # the Python stage in a process of its own (ingest.posts.workers)
    # Evidence observed longer ago than this (against the caller's `now`) is stored but feeds no rule: the
    # windows it belonged to were evaluated long ago, and it must not reopen or extend today's alerts.
    max_lateness_s: float = 3600.0
    chunk: int = 2_000  # posts per chunk: small enough to overlap the stages, large enough to keep statements few
    thread_min: int = 64  # smaller batches (a connector's few posts) run the Python stage inline

    @classmethod
    def from_settings(cls, settings: object) -> PipelineConfig:
        key = getattr(settings, "author_hash_key")
        key = key.get_secret_value() if hasattr(key, "get_secret_value") else str(key)
        return cls(author_hash_key=key, jurisdiction_bbox=tuple(getattr(settings, "jurisdiction_bbox")),
                   dedup_window_s=float(getattr(settings, "post_dedup_window_s", 3600.0)),
                   min_geotag_confidence=float(getattr(settings, "geotag_min_confidence", 0.5)),
                   worker_process=bool(getattr(settings, "post_worker_process", True)),
                   max_lateness_s=float(getattr(settings, "max_lateness_s", 3600.0)))


@dataclass(frozen=True)
class ItemResult:
    """What became of one post. status: created | duplicate | rejected."""

    index: int
    status: str
    id: int | None = None
    error: str | None = None
    duplicate_of: int | None = None
    category: str | None = None
    located: bool | None = None
    late: bool = False  # stored, but older than max_lateness_s: it fed no rule


def _in_bbox(lon: float, lat: float, bbox: tuple[float, float, float, float]) -> bool:
    return bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]


def swapped_coordinates(post: PostIn, bbox: tuple[float, float, float, float]) -> str | None:
    """Why the post's coordinates look like (lat, lon), or None. Coordinates merely outside are kept."""
    if post.coordinates is None:
        return None
    lon, lat = post.coordinates
    if _in_bbox(lon, lat, bbox) or not _in_bbox(lat, lon, bbox):
        return None
    return (f"coordinates: [{lon}, {lat}] is outside the jurisdiction {list(bbox)} but [{lat}, {lon}] is inside; "
            "coordinates are [longitude, latitude]")


def _mark_reposts(session: Session, fresh: list[Head], window_s: float) -> None:
    """Set repost_of / repost_of_index for posts whose text the same author posted within the window."""
    if not fresh:
        return
    window = timedelta(seconds=window_s)
    stored = post_store.recent_fingerprints(
        session, fingerprints=list({p.fingerprint for p in fresh}),
        since=min(p.observed_at for p in fresh) - window, until=max(p.observed_at for p in fresh) + window)
    # Only a fingerprint stored already, or twice in the batch, can make a repost: the rest (nearly every
    # post) skips the ordered pass.
    counts = Counter(p.fingerprint for p in fresh)
    candidates = [p for p in fresh if counts[p.fingerprint] > 1 or p.fingerprint in stored]
    earlier: dict[str, list[Head]] = {}
    for p in sorted(candidates, key=lambda p: (p.observed_at, p.index)):
        prior = next((oid for oid, at in stored.get(p.fingerprint, ()) if abs(at - p.observed_at) <= window), None)
        if prior is not None:
            p.repost_of = prior
        else:
            twin = next((q for q in earlier.get(p.fingerprint, ()) if p.observed_at - q.observed_at <= window), None)
            if twin is not None:
                p.repost_of_index = twin.index
        earlier.setdefault(p.fingerprint, []).append(p)


def _heads(items: Sequence[tuple[int, PostIn]], config: PipelineConfig, now: datetime) -> list[Head]:
    keys = author_keys((post.author for _, post in items), secret=config.author_hash_key)
    return [Head(index=i, post=post, external_id=f"{post.source}:{post.external_id}", author=keys[post.author],
                 fingerprint=text_fingerprint(keys[post.author], post.text), observed_at=min(post.created_at, now))
            for i, post in items]


def ingest_posts(
    session: Session,
    *,
    posts: Sequence[PostIn],
    index: GazetteerIndex,
    lexicon: Lexicon,
    rules: Sequence[Rule],
    config: PipelineConfig,
    state: PostState,
    now: datetime,
) -> list[ItemResult]:
    """Store, locate, match and evaluate a batch of posts; one result per post, in order. Never commits.

    `state` holds what the caller's process keeps between batches (zones as matched, the worker process)."""
    results: dict[int, ItemResult] = {}
    accepted = []
    # The active place's box (geo.places) when one is set up, else the configured one.
    bbox = state.jurisdiction.get(session, fallback_bbox=config.jurisdiction_bbox).bbox
    for i, post in enumerate(posts):
        problem = swapped_coordinates(post, bbox)
        if problem:
            results[i] = ItemResult(i, "rejected", error=problem)
        else:
            accepted.append((i, post))
    # The Python stage needs nothing from dedup: it starts on the first chunk now, in the worker process
    # (or thread), while this thread works out which posts are new.
    step = config.chunk
    parts = [post_chunks.items([post for _, post in accepted[k:k + step]]) for k in range(0, len(accepted), step)]
    context = post_workers.Context(index, lexicon, state.zones.get(session), bbox,
                                   config.min_geotag_confidence) if accepted else None
    zones = context.zones if context else None
    with _stage(context, parts, process=config.worker_process, pool=state.pool,
                thread_min=config.thread_min) as staged:
        heads = _heads(accepted, config, now)

        # (source, external_id) already stored, or repeated inside this batch: the first one wins.
        existing = post_store.existing_ids(session, external_ids=list({h.external_id for h in heads}))
        first: dict[str, Head] = {}
        fresh: list[Head] = []
        repeats: list[Head] = []
        for h in heads:
            if h.external_id in existing:
                results[h.index] = ItemResult(h.index, "duplicate", id=existing[h.external_id],
                                              duplicate_of=existing[h.external_id])
            elif h.external_id in first:
                repeats.append(h)
            else:
                first[h.external_id] = h
                fresh.append(h)
        _mark_reposts(session, fresh, config.dedup_window_s)

        counting = [r for r in rules if SOURCE in r.sources]
        min_weight = min((r.min_zone_weight for r in counting), default=1.0)
        windows: dict[str, float] = {}
        for r in counting:
            windows[r.layer] = max(windows.get(r.layer, 0.0), r.window_s)
        # Signals go in the layers the rules count posts in (ingest.posts.signal_layers), not in every layer.
        if zones is not None:  # else nothing was accepted, and no chunk comes
            written = post_zones.layer_mask(zones, signal_layers.layers_to_write(session, wanted=windows, now=now))
            counted_in = post_zones.layer_mask(zones, windows)
        new = {h.index for h in fresh}
        late_before = now - timedelta(seconds=config.max_lateness_s)
        # Each chunk is sent as the worker hands it over, without waiting for the one before: PostgreSQL
        # writes chunk k while Python prepares chunk k + 1. The results are read after the last.
        sent: list[_SentChunk] = []
        with raw.pipeline(session):
            for start, chunk in zip(range(0, len(heads), step), staged):
                part = heads[start:start + step]
                sent.append(_send_chunk(session, chunk, part, [h.index in new for h in part], written=written,
                                        now=now, late_before=late_before))
        ids: dict[str, int] = {}
        signals: list[alert_service.SignalIn] = []
        done: list[tuple[Head, str, bool]] = []  # (post, category, located) of every post stored here
        for item in sent:
            signals += _finish_chunk(session, item, ids, results, zones=zones, counted_in=counted_in,
                                     min_weight=min_weight)
            done += [(h, c, loc) for h, c, loc in zip(item.heads, item.chunk.categories, item.chunk.located)
                     if h.index in new and h.index not in results]

    # The signals rows are written; the rules evaluate every (rule, zone) they feed in a few statements,
    # counting only after taking the zones' locks, so a concurrent batch's evidence is never missed.
    # Each signal is evaluated at its own time (alerts.slices.event_slices), so a batch replayed as fast as
    # possible counts every post in the window it fell in; a live batch is one slice, evaluated at `now`.
    changes = []
    if signals:
        alert_signals.lock(session, signals=signals, rules=rules)
        changes = alert_service.evaluate(session, signals=signals, rules=rules, now=now, event_time=True)
    if changes:
        log.info("post batch: %d posts, %d signals, alerts changed %s", len(posts), len(signals),
                 sorted({c.alert_id for c in changes}))

    by_index = {h.index: h for h in fresh}
    for h, category, located in done:
        oid = ids[h.external_id]
        if h.repost_of_index is not None:
            h.repost_of = ids.get(by_index[h.repost_of_index].external_id)
        status = "duplicate" if h.is_repost else "created"
        results[h.index] = ItemResult(h.index, status, id=oid, duplicate_of=h.repost_of, category=category,
                                      located=located, late=h.observed_at < late_before)
    for h in repeats:
        oid = ids.get(h.external_id) or existing.get(h.external_id)
        results[h.index] = ItemResult(h.index, "duplicate", id=oid, duplicate_of=oid)
    return [results[i] for i in range(len(posts))]


@contextlib.contextmanager
def _stage(context: post_workers.Context | None, parts: list[list[post_chunks.Item]], *, process: bool,
           pool: post_workers.WorkerPool, thread_min: int) -> Iterator[Iterator[post_chunks.Chunk]]:
    """post_chunks.work for each part, in order, started now: in the worker process (every part sent
    at once; it works through them in turn), else in a thread that stays one part ahead of the caller,
    or inline for a batch under `thread_min` posts."""
    size = sum(map(len, parts))
    if context is None or size < thread_min:
        yield (context.work(part) for part in parts) if context else iter(())
    elif process and post_workers.available():
        yield pool.work_all(context, parts)
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="post-chunks") as pool:
            futures = [pool.submit(context.work, parts[0])]

            def results() -> Iterator[post_chunks.Chunk]:
                for k in range(len(parts)):
                    if k + 1 < len(parts):
                        futures.append(pool.submit(context.work, parts[k + 1]))
                    yield futures[k].result()

            yield results()


@dataclass(frozen=True)
class _SentChunk:
    chunk: post_chunks.Chunk
    heads: list[Head]
    new: list[bool]
    counted_at: np.ndarray  # per position: its signals were sent (new, an incident, located, not a repost)
    sent: post_store.Sent


def _send_chunk(session: Session, chunk: post_chunks.Chunk, heads: list[Head], new: list[bool], *,
                written: np.ndarray, now: datetime, late_before: datetime) -> _SentChunk:
    """Send one chunk's new posts and the signals of its counted ones in the `written` zones (a mask by
    zone id), without waiting. A post observed before `late_before` is stored without signals."""
    columns, counted_at = post_chunks.rows(chunk, heads, new)
    late = [k for k, h in enumerate(heads) if h.observed_at < late_before]
    if late:
        counted_at[late] = False
    keep = counted_at[chunk.link_pos] & written[chunk.link_zone]
    links = post_store.Links([heads[k].external_id for k in chunk.link_pos[keep].tolist()],
                             chunk.link_zone[keep], chunk.link_weight[keep])
    return _SentChunk(chunk, heads, new, counted_at, post_store.send_posts(session, columns=columns, links=links,
                                                                           now=now))


def _finish_chunk(session: Session, item: _SentChunk, ids: dict[str, int], results: dict[int, ItemResult], *,
                  zones: zone_match.ZoneSet, counted_in: np.ndarray, min_weight: float
                  ) -> list[alert_service.SignalIn]:
    """Read a sent chunk's ids; returns what the rules need of the signals it wrote: those in the zones
    of `counted_in` (a mask by zone id: the layers the rules count posts in) weighing min_weight or more."""
    chunk, heads, new = item.chunk, item.heads, item.new
    inserted = item.sent.ids()
    ids.update(inserted)
    raced = [h for h, yes in zip(heads, new) if yes and h.external_id not in inserted]
    if raced:  # lost a race with a concurrent batch: the other one stored it first (and wrote its signals)
        ids.update(post_store.existing_ids(session, external_ids=[h.external_id for h in raced]))
        for h in raced:
            oid = ids.get(h.external_id)
            results[h.index] = ItemResult(h.index, "duplicate", id=oid, duplicate_of=oid)
    # 0 where nothing was inserted here (stored before, a repeat, or raced), or not counted: no signals.
    oid_at = np.array([inserted.get(h.external_id, 0) if yes else 0 for h, yes in zip(heads, new)], dtype=np.int64)
    oid_at[~item.counted_at] = 0
    keep = (oid_at[chunk.link_pos] > 0) & counted_in[chunk.link_zone] & (chunk.link_weight >= min_weight)
    obs, zone, weight = oid_at[chunk.link_pos][keep], chunk.link_zone[keep], chunk.link_weight[keep]
    counted = {int(oid_at[k]): k for k in np.flatnonzero(oid_at > 0).tolist()}
    matches = post_zones.zone_matches(zones, obs.tolist(), zone.tolist(), weight.tolist())
    return [alert_service.SignalIn(observation_id=oid, source=SOURCE, category=chunk.categories[k],
                                   confidence=chunk.confidences[k], author_key=heads[k].author,
                                   observed_at=heads[k].observed_at, zones=tuple(matches[oid]))
            for oid, k in counted.items() if matches.get(oid)]
