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

Per batch: (1) Python: author hash, repost fingerprint, classify, geotag; (2) one query finds
(source, external_id) already stored and one finds recent reposts; (3) one INSERT ... SELECT FROM
unnest(...) ON CONFLICT DO NOTHING stores the new observations; (4) the batch's distinct locations are
matched to zones in the process (geo.zone_match, a cached copy of `zone_pieces`) and `observation_zones`
and `signals` are written by COPY; (5) the rules evaluate every (rule, zone) the batch touched in four
statements, counting after they take the zones' locks (`alerts.service.observe_many`).

Dedup. The same (source, external_id) is stored once; a repeat answers `duplicate` with the stored id.
The same normalised text from the same author within `dedup_window_s` (default 1 h) of another stored
post is stored (operators may want to see it) but feeds no rule: it answers `duplicate` with its own id
and `duplicate_of` the earlier post. Within a batch the earliest post (by created_at) counts. Two
concurrent batches carrying the same repost can each count it once; the window check is not a lock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import shapely
from sqlalchemy.orm import Session

from alerts import service as alert_service
from alerts.rules import Rule
from geo.gazetteer import GazetteerIndex
from geo.geotag import Geotag, geotag
from ingest import post_store
from ingest.classify import NONE, Lexicon, classify
from ingest.posts import PostIn, author_key, text_fingerprint

log = logging.getLogger(__name__)

SOURCE = "post"  # observations.source and signals.source for every public post


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


@dataclass
class _Prepared:
    """One post after the Python stage."""

    index: int
    post: PostIn
    external_id: str
    author: str
    fingerprint: str
    category: str
    confidence: float
    observed_at: datetime
    tag: Geotag | None
    raw: dict = field(default_factory=dict)
    repost_of: int | None = None
    repost_of_index: int | None = None


def _prepare(i: int, post: PostIn, *, index: GazetteerIndex, lexicon: Lexicon, config: PipelineConfig,
             now: datetime) -> _Prepared:
    akey = author_key(post.author, secret=config.author_hash_key)
    cls = classify(post.text, lexicon)
    place = post.place.model_dump(exclude_none=True) if post.place is not None else None
    tag = geotag(post.text, index, coordinates=post.coordinates, place=place, bounds=config.jurisdiction_bbox,
                 min_confidence=config.min_geotag_confidence)
    # An incident post's confidence is that of its category at its place (independent readings).
    confidence = cls.confidence * tag.confidence if tag is not None and cls.category != NONE else cls.confidence
    raw: dict = {"source": post.source, "external_id": post.external_id,
                 "classification": {"category": cls.category, "confidence": cls.confidence,
                                    "matched": list(cls.matched)}}
    if post.lang:
        raw["lang"] = post.lang
    if post.url:
        raw["url"] = post.url
    if post.place is not None and post.place.name:
        raw["place_name"] = post.place.name
    if tag is not None:
        raw["geotag"] = {"method": tag.method, "confidence": round(tag.confidence, 3), "kind": tag.kind,
                         "matched": tag.matched}
    created = post.created_at
    return _Prepared(
        index=i, post=post, external_id=f"{post.source}:{post.external_id}", author=akey,
        fingerprint=text_fingerprint(akey, post.text), category=cls.category, confidence=round(confidence, 4),
        observed_at=min(created, now), tag=tag, raw=raw,
    )


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


def _mark_reposts(session: Session, fresh: list[_Prepared], window_s: float) -> None:
    """Set repost_of / repost_of_index for posts whose text the same author posted within the window."""
    if not fresh:
        return
    window = timedelta(seconds=window_s)
    stored = post_store.recent_fingerprints(
        session, fingerprints=list({p.fingerprint for p in fresh}),
        since=min(p.observed_at for p in fresh) - window, until=max(p.observed_at for p in fresh) + window)
    earlier: dict[str, list[_Prepared]] = {}
    for p in sorted(fresh, key=lambda p: (p.observed_at, p.index)):
        prior = next((oid for oid, at in stored.get(p.fingerprint, ()) if abs(at - p.observed_at) <= window), None)
        if prior is not None:
            p.repost_of = prior
        else:
            twin = next((q for q in earlier.get(p.fingerprint, ()) if p.observed_at - q.observed_at <= window), None)
            if twin is not None:
                p.repost_of_index = twin.index
        earlier.setdefault(p.fingerprint, []).append(p)


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
    prepared = []
    for i, post in enumerate(posts):
        problem = swapped_coordinates(post, config.jurisdiction_bbox)
        if problem:
            results[i] = ItemResult(i, "rejected", error=problem)
        else:
            prepared.append(_prepare(i, post, index=index, lexicon=lexicon, config=config, now=now))

    # (source, external_id) already stored, or repeated inside this batch: the first one wins.
    existing = post_store.existing_ids(session, external_ids=list({p.external_id for p in prepared}))
    first: dict[str, _Prepared] = {}
    fresh: list[_Prepared] = []
    repeats: list[_Prepared] = []
    for p in prepared:
        if p.external_id in existing:
            results[p.index] = ItemResult(p.index, "duplicate", id=existing[p.external_id],
                                          duplicate_of=existing[p.external_id])
        elif p.external_id in first:
            repeats.append(p)
        else:
            first[p.external_id] = p
            fresh.append(p)

    _mark_reposts(session, fresh, config.dedup_window_s)
    for p in fresh:
        if p.repost_of is not None or p.repost_of_index is not None:
            p.raw["counted"] = False
            p.raw["reason"] = "repost"
    ids = post_store.insert_observations(session, columns=_columns(fresh), now=now)
    # Lost a race with a concurrent batch: the other one stored it first.
    raced = [p for p in fresh if p.external_id not in ids]
    if raced:
        ids.update(post_store.existing_ids(session, external_ids=[p.external_id for p in raced]))
        for p in raced:
            results[p.index] = ItemResult(p.index, "duplicate", id=ids.get(p.external_id),
                                          duplicate_of=ids.get(p.external_id))
        fresh = [p for p in fresh if p.index not in results]

    by_index = {p.index: p for p in fresh}
    for p in fresh:
        if p.repost_of_index is not None:
            p.repost_of = ids[by_index[p.repost_of_index].external_id]
    counted = [p for p in fresh if p.repost_of is None and p.category != NONE and p.tag is not None]
    located = [p for p in fresh if p.tag is not None]
    zones = post_store.match_and_signal(
        session,
        located=[(ids[p.external_id], p.tag) for p in located],
        counted={ids[p.external_id]: post_store.SignalRow(p.category, p.confidence, p.author, p.observed_at)
                 for p in counted},
        layers=sorted({r.layer for r in rules if SOURCE in r.sources}),
        min_weight=min((r.min_zone_weight for r in rules if SOURCE in r.sources), default=1.0),
    )
    signals = [
        alert_service.SignalIn(observation_id=oid, source=SOURCE, category=p.category, confidence=p.confidence,
                               author_key=p.author, observed_at=p.observed_at, zones=tuple(zones[oid]))
        for p in counted if zones.get(oid := ids[p.external_id])
    ]
    # The signals rows are written; the rules evaluate every (rule, zone) they feed in a few statements,
    # counting only after taking the zones' locks, so a concurrent batch's evidence is never missed.
    changes = alert_service.observe_many(session, signals=signals, rules=rules, now=now, recorded=True) \
        if signals else []
    if changes:
        log.info("post batch: %d posts, %d signals, alerts changed %s", len(posts), len(signals),
                 sorted({c.alert_id for c in changes}))

    for p in fresh:
        oid = ids[p.external_id]
        if p.repost_of is not None:
            results[p.index] = ItemResult(p.index, "duplicate", id=oid, duplicate_of=p.repost_of,
                                          category=p.category, located=p.tag is not None)
        else:
            results[p.index] = ItemResult(p.index, "created", id=oid, category=p.category,
                                          located=p.tag is not None)
    for p in repeats:
        oid = ids.get(p.external_id) or existing.get(p.external_id)
        results[p.index] = ItemResult(p.index, "duplicate", id=oid, duplicate_of=oid)
    return [results[i] for i in range(len(posts))]


def _stored_wkb(tag: Geotag) -> bytes:
    """What the observation row keeps as its location: the geometry, or for a detailed outline (a named
    neighbourhood, ZIP or borough) its central point, with the outline's radius as uncertainty_m. Copying
    the same outline into thousands of rows costs more than the rest of the insert; the zones were
    matched against the outline itself."""
    wkb = shapely.to_wkb(tag.geometry)
    return wkb if len(wkb) < post_store.LARGE_AREA_WKB_BYTES else shapely.to_wkb(tag.point)


def _columns(rows: list[_Prepared]) -> dict[str, list]:
    """The new observations as column arrays for one INSERT ... SELECT FROM unnest(...)."""
    return {
        "external_id": [p.external_id for p in rows],
        "author_hash": [p.author for p in rows],
        "text": [p.post.text for p in rows],
        "category": [p.category for p in rows],
        "confidence": [float(p.confidence) for p in rows],
        "observed_at": [p.observed_at for p in rows],
        "wkb": [_stored_wkb(p.tag) if p.tag is not None else None for p in rows],
        "uncertainty_m": [float(p.tag.uncertainty_m) if p.tag is not None else None for p in rows],
        "geotag_method": [p.tag.method if p.tag is not None else "none" for p in rows],
        "raw": [json.dumps(p.raw, separators=(",", ":"), default=str) for p in rows],
        "text_fingerprint": [p.fingerprint for p in rows],
    }
