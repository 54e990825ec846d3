"""The post pipeline, batched: classify and geotag in Python, then a handful of set-based statements.

Interface (the HTTP batch endpoint, `tocsin replay` and the Jetstream connector all call this):

    from ingest import pipeline, posts
    items = posts.parse_items(list_of_dicts)              # -> list[PostIn | posts.Rejected]
    valid = [p for p in items if isinstance(p, posts.PostIn)]
    results = pipeline.ingest_posts(
        session, posts=valid, index=gazetteer_index,       # geo.gazetteer.GazetteerIndex
        lexicon=lexicon,                                   # ingest.classify.Lexicon
        rules=rules,                                       # list[alerts.rules.Rule]
        config=pipeline.PipelineConfig.from_settings(settings), now=datetime.now(UTC))
    # -> list[ItemResult], one per post, ItemResult.index = position in `posts`; status is created,
    #    duplicate (id = the stored row, duplicate_of = the earlier one) or rejected (error says why:
    #    coordinates that only make sense swapped, [lat, lon])

`PipelineConfig.from_settings` reads `author_hash_key`, `jurisdiction_bbox` and `post_dedup_window_s`
from any settings-like object. `ingest_posts` never commits: the caller's boundary does.

Per batch, in chunks of CHUNK posts and two stages that overlap: a worker thread classifies and
geotags each chunk and matches its incident posts to zones (ingest.post_chunks, against a cached copy
of `zone_pieces`, geo.zone_match), starting at once, while this thread (1) works out which posts are
new: author keys (once per distinct author) and repost fingerprints, one query for (source,
external_id) already stored and one for recent reposts; then (2) writes each chunk as the worker
hands it over: one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING for the new observations
and one INSERT ... SELECT of the counted ones' signals (their zone weights, joined to those rows; a
post's zones are its signals, it writes no observation_zones rows); and (3) has the rules evaluate
every (rule, zone) the batch touched in four statements, counting after they take the zones' locks
(`alerts.service.observe_many`). The stages overlap because PostgreSQL works on one core while the
worker's Python works on the other; this thread mostly waits on the socket, with the GIL released.
Batches under THREAD_MIN posts run the Python stage inline.

Dedup. The same (source, external_id) is stored once; a repeat answers `duplicate` with the stored id.
The same normalised text from the same author within `dedup_window_s` (default 1 h) of another stored
post is stored (operators may want to see it) but feeds no rule: it answers `duplicate` with its own id
and `duplicate_of` the earlier post. Within a batch the earliest post (by created_at) counts. Two
concurrent batches carrying the same repost can each count it once; the window check is not a lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from alerts import service as alert_service
from alerts.rules import Rule
from geo import zone_match
from geo.gazetteer import GazetteerIndex
from ingest import post_chunks, post_store, post_zones
from ingest.classify import Lexicon
from ingest.post_chunks import Head
from ingest.posts import PostIn, author_key, text_fingerprint

log = logging.getLogger(__name__)

SOURCE = "post"  # observations.source and signals.source for every public post
CHUNK = 2_000  # posts per chunk: small enough to overlap the stages, large enough to keep statements few
THREAD_MIN = 64  # smaller batches (a connector's few posts) run the Python stage inline


@dataclass(frozen=True)
class PipelineConfig:
    author_hash_key: str
    jurisdiction_bbox: tuple[float, float, float, float]
    dedup_window_s: float = 3600.0
    min_geotag_confidence: float = 0.5

    @classmethod
    def from_settings(cls, settings: object) -> PipelineConfig:
        key = getattr(settings, "author_hash_key")
        key = key.get_secret_value() if hasattr(key, "get_secret_value") else str(key)
        return cls(author_hash_key=key, jurisdiction_bbox=tuple(getattr(settings, "jurisdiction_bbox")),
                   dedup_window_s=float(getattr(settings, "post_dedup_window_s", 3600.0)),
                   min_geotag_confidence=float(getattr(settings, "geotag_min_confidence", 0.5)))


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
    earlier: dict[str, list[Head]] = {}
    for p in sorted(fresh, key=lambda p: (p.observed_at, p.index)):
        prior = next((oid for oid, at in stored.get(p.fingerprint, ()) if abs(at - p.observed_at) <= window), None)
        if prior is not None:
            p.repost_of = prior
        else:
            twin = next((q for q in earlier.get(p.fingerprint, ()) if p.observed_at - q.observed_at <= window), None)
            if twin is not None:
                p.repost_of_index = twin.index
        earlier.setdefault(p.fingerprint, []).append(p)


def _heads(items: Sequence[tuple[int, PostIn]], config: PipelineConfig, now: datetime) -> list[Head]:
    keys = {a: author_key(a, secret=config.author_hash_key) for a in {post.author for _, post in items}}
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
    now: datetime,
) -> list[ItemResult]:
    """Store, locate, match and evaluate a batch of posts; one result per post, in order. Never commits."""
    results: dict[int, ItemResult] = {}
    accepted = []
    for i, post in enumerate(posts):
        problem = swapped_coordinates(post, config.jurisdiction_bbox)
        if problem:
            results[i] = ItemResult(i, "rejected", error=problem)
        else:
            accepted.append((i, post))
    # The Python stage needs nothing from dedup: it starts on the first chunk now, in a worker thread,
    # while this thread works out which posts are new.
    parts = [accepted[k:k + CHUNK] for k in range(0, len(accepted), CHUNK)]
    zones = zone_match.zone_set(session) if accepted else None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="post-chunks") if len(accepted) >= THREAD_MIN \
            else _Inline() as pool:
        staged = _ahead(pool, [[post for _, post in part] for part in parts], lambda chunk_posts: post_chunks.work(
            chunk_posts, index=index, lexicon=lexicon, zones=zones, bounds=config.jurisdiction_bbox,
            min_confidence=config.min_geotag_confidence))
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

        layers = sorted({r.layer for r in rules if SOURCE in r.sources})
        min_weight = min((r.min_zone_weight for r in rules if SOURCE in r.sources), default=1.0)
        new = {h.index for h in fresh}
        ids: dict[str, int] = {}
        signals: list[alert_service.SignalIn] = []
        done: list[tuple[Head, str, bool]] = []  # (post, category, located) of every post stored here
        for start, chunk in zip(range(0, len(heads), CHUNK), staged):
            part = heads[start:start + CHUNK]
            signals += _store_chunk(session, chunk, part, [h.index in new for h in part], ids, results, zones=zones,
                                    layers=layers, min_weight=min_weight, now=now)
            done += [(h, c, loc) for h, c, loc in zip(part, chunk.categories, chunk.located)
                     if h.index in new and h.index not in results]

    # The signals rows are written; the rules evaluate every (rule, zone) they feed in a few statements,
    # counting only after taking the zones' locks, so a concurrent batch's evidence is never missed.
    changes = alert_service.observe_many(session, signals=signals, rules=rules, now=now, recorded=True) \
        if signals else []
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
                                      located=located)
    for h in repeats:
        oid = ids.get(h.external_id) or existing.get(h.external_id)
        results[h.index] = ItemResult(h.index, "duplicate", id=oid, duplicate_of=oid)
    return [results[i] for i in range(len(posts))]


class _Inline:
    """An executor that runs each call as it is submitted (small batches: no thread)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable, *args: object) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def _ahead(pool, parts: list[list[PostIn]], work: Callable[[list[PostIn]], post_chunks.Chunk]
           ) -> Iterator[post_chunks.Chunk]:
    """work(part) for each part, in order: the first is submitted now, and each next one as the
    caller takes the one before, so the worker stays one chunk ahead."""
    futures = [pool.submit(work, parts[0])] if parts else []

    def results() -> Iterator[post_chunks.Chunk]:
        for k in range(len(parts)):
            if k + 1 < len(parts):
                futures.append(pool.submit(work, parts[k + 1]))
            yield futures[k].result()

    return results()


def _store_chunk(session: Session, chunk: post_chunks.Chunk, heads: list[Head], new: list[bool],
                 ids: dict[str, int], results: dict[int, ItemResult], *, zones: zone_match.ZoneSet,
                 layers: Sequence[str], min_weight: float, now: datetime) -> list[alert_service.SignalIn]:
    """Write one chunk's new posts: observations and signals. Returns what the rules need
    of its signals."""
    columns, counted_at = post_chunks.rows(chunk, heads, new)
    inserted = post_store.insert_observations(session, columns=columns, now=now)
    ids.update(inserted)
    raced = [h for h, yes in zip(heads, new) if yes and h.external_id not in inserted]
    if raced:  # lost a race with a concurrent batch: the other one stored it first
        ids.update(post_store.existing_ids(session, external_ids=[h.external_id for h in raced]))
        for h in raced:
            oid = ids.get(h.external_id)
            results[h.index] = ItemResult(h.index, "duplicate", id=oid, duplicate_of=oid)
    # 0 where nothing was inserted here (stored before, a repeat, or raced), or not counted: no signals.
    oid_at = np.array([inserted.get(h.external_id, 0) if yes else 0 for h, yes in zip(heads, new)], dtype=np.int64)
    oid_at[~counted_at] = 0
    keep = oid_at[chunk.link_pos] > 0
    obs, zone, weight = oid_at[chunk.link_pos][keep], chunk.link_zone[keep], chunk.link_weight[keep]
    counted = {int(oid_at[k]): k for k in np.flatnonzero(oid_at > 0).tolist()}
    post_store.write_signals(session, obs=obs, zone=zone, weight=weight)
    matches = post_zones.rule_matches(zones, obs.tolist(), zone.tolist(), weight.tolist(),
                                      layers=layers, min_weight=min_weight)
    return [alert_service.SignalIn(observation_id=oid, source=SOURCE, category=chunk.categories[k],
                                   confidence=chunk.confidences[k], author_key=heads[k].author,
                                   observed_at=heads[k].observed_at, zones=tuple(matches[oid]))
            for oid, k in counted.items() if matches.get(oid)]
