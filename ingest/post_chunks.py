"""The Python stage of the post pipeline for one chunk of new posts (pure: no database).

`Head` is what the pipeline knows of a post before this stage: its ids, author key, repost fingerprint
and whether it repeats an earlier post (dedup runs on the whole batch first). `work` classifies and
geotags a chunk, builds the observation rows as column arrays, and matches the locations of incident
posts to zones against a geo.zone_match.ZoneSet, so that the database stage only ships what it is given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import shapely

from geo import zone_match
from geo.gazetteer import GazetteerIndex
from geo.geotag import Geotag
from geo.geotag_batch import geotag_many
from ingest import post_zones
from ingest.classify import NONE, Lexicon, classify
from ingest.posts import PostIn


@dataclass
class Head:
    """One new post as dedup leaves it."""

    index: int  # position in the caller's batch
    post: PostIn
    external_id: str  # "<source>:<external id>", unique among posts
    author: str  # keyed hash
    fingerprint: str
    observed_at: datetime
    repost_of: int | None = None  # a stored post this one repeats
    repost_of_index: int | None = None  # an earlier post of the same batch this one repeats

    @property
    def is_repost(self) -> bool:
        return self.repost_of is not None or self.repost_of_index is not None


@dataclass(frozen=True)
class Chunk:
    """A chunk after the Python stage. Positions are into `heads`."""

    heads: list[Head]
    categories: list[str]
    confidences: list[float]
    located: list[bool]
    columns: dict[str, list]  # for post_store.insert_observations
    counted: np.ndarray  # bool per position: feeds the rules (new, an incident, located)
    link_pos: np.ndarray  # zone links: (position, zone id, weight)
    link_zone: np.ndarray
    link_weight: np.ndarray


def work(heads: list[Head], *, index: GazetteerIndex, lexicon: Lexicon, zones: zone_match.ZoneSet,
         bounds: tuple[float, float, float, float], min_confidence: float) -> Chunk:
    places = [h.post.place.model_dump(exclude_none=True) if h.post.place is not None else None for h in heads]
    tags = geotag_many([(h.post.text, h.post.coordinates, place) for h, place in zip(heads, places)], index,
                       bounds=bounds, min_confidence=min_confidence)
    wkbs = shapely.to_wkb(np.array([t.geometry if t is not None else None for t in tags], dtype=object)).tolist()
    categories, confidences, raws = [], [], []
    for h, tag in zip(heads, tags):
        cls = classify(h.post.text, lexicon)
        # An incident post's confidence is that of its category at its place (independent readings).
        confidence = cls.confidence * tag.confidence if tag is not None and cls.category != NONE else cls.confidence
        categories.append(cls.category)
        confidences.append(round(confidence, 4))
        raws.append(_raw(h, cls, tag))
    located = [t is not None for t in tags]
    # Zone links for posts that report an incident: they are what rules count and operators see as
    # evidence. Everyday chatter is stored with its location (the map shows it) but not matched to
    # zones: nothing counts it or reads its zones, and it is most of the stream.
    at = [k for k, (t, c) in enumerate(zip(tags, categories)) if t is not None and c != NONE]
    pos, zone, weight = post_zones.locate([tags[k] for k in at], zones, [wkbs[k] for k in at])
    counted = np.array([t is not None and c != NONE and not h.is_repost
                        for h, t, c in zip(heads, tags, categories)], dtype=bool)
    columns = {
        "external_id": [h.external_id for h in heads],
        "author_hash": [h.author for h in heads],
        "text": [h.post.text for h in heads],
        "category": categories,
        "confidence": [float(c) for c in confidences],
        "observed_at": [h.observed_at for h in heads],
        "wkb": [_stored_wkb(t, w) for t, w in zip(tags, wkbs)],
        "uncertainty_m": [float(t.uncertainty_m) if t is not None else None for t in tags],
        "geotag_method": [t.method if t is not None else "none" for t in tags],
        "raw": raws,
        "text_fingerprint": [h.fingerprint for h in heads],
    }
    return Chunk(heads=heads, categories=categories, confidences=confidences, located=located, columns=columns,
                 counted=counted, link_pos=np.asarray(at, dtype=np.int64)[pos] if len(pos) else pos,
                 link_zone=zone, link_weight=weight)


def _raw(h: Head, cls, tag: Geotag | None) -> str:
    post = h.post
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
    if h.is_repost:
        raw["counted"] = False
        raw["reason"] = "repost"
    return json.dumps(raw, separators=(",", ":"), default=str)


def _stored_wkb(tag: Geotag | None, wkb: bytes | None) -> bytes | None:
    """What the observation row keeps as its location: the geometry, or for a detailed outline (a named
    neighbourhood, ZIP or borough) its central point, with the outline's radius as uncertainty_m. Copying
    the same outline into thousands of rows costs more than the rest of the insert; the zones were
    matched against the outline itself."""
    if tag is None or wkb is None or len(wkb) < post_zones.LARGE_AREA_WKB_BYTES:
        return wkb
    return shapely.to_wkb(tag.point)


def chunks(heads: Sequence[Head], size: int) -> list[list[Head]]:
    return [list(heads[k:k + size]) for k in range(0, len(heads), size)]
