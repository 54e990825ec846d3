"""The Python stage of the post pipeline for one chunk of new posts (pure: no database).

`work` classifies and geotags a chunk of posts and matches the locations of incident posts to zones
against a geo.match_memory.ZoneSet. It needs nothing from dedup, so the pipeline starts it before dedup.
`Head` is what dedup knows of a post: its ids, author key, repost fingerprint and whether it repeats
an earlier post. `rows` joins the two into the observation rows of a chunk's new posts, as column
arrays, so that the database stage only ships what it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple
from datetime import datetime

import numpy as np
import orjson
import shapely

from geo import match_memory as zone_match
from geo.gazetteer import GazetteerIndex
from geo.geotag import Geotag
from geo.geotag_batch import geotag_many
from ingest.posts import zones as post_zones
from ingest.posts.classify import NONE, Lexicon, classify
from ingest.posts.parse import PostIn


@dataclass(slots=True)
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
    """A chunk of posts after the Python stage. Positions are into the chunk."""

    categories: list[str]
    confidences: list[float]
    located: list[bool]
    wkb: list[bytes | None]  # as stored: the geometry, or a detailed outline's centre
    uncertainty_m: list[float | None]
    geotag_method: list[str]
    raw: list[str]  # JSON, without the repost marks (dedup comes later: `rows` adds them)
    incident: np.ndarray  # bool per position: located and reporting an incident (it is matched to zones)
    link_pos: np.ndarray  # zone weights of incident posts: (position, zone id, weight)
    link_zone: np.ndarray
    link_weight: np.ndarray
    zone_weights: list[bytes | None]  # the same per position, packed (post_zones.pack_weights)


class Item(NamedTuple):
    """What the Python stage reads of a post: plain values, cheap to send to a worker process (a
    pydantic model costs more to pickle than the stage costs to run)."""

    text: str
    coordinates: tuple[float, float] | None
    place: dict | None  # PlaceIn as a dict, without unset fields
    source: str
    external_id: str
    lang: str | None
    url: str | None


def items(posts: Sequence[PostIn]) -> list[Item]:
    return [Item(p.text, p.coordinates, p.place.model_dump(exclude_none=True) if p.place is not None else None,
                 p.source, p.external_id, p.lang, p.url) for p in posts]


def work(posts: list[Item], *, index: GazetteerIndex, lexicon: Lexicon, zones: zone_match.ZoneSet,
         bounds: tuple[float, float, float, float], min_confidence: float) -> Chunk:
    """Classify, geotag and zone-match a chunk. Needs nothing from dedup, so it can start at once."""
    tags = geotag_many([(post.text, post.coordinates, post.place) for post in posts], index,
                       bounds=bounds, min_confidence=min_confidence)
    wkbs = shapely.to_wkb(np.array([t.geometry if t is not None else None for t in tags], dtype=object)).tolist()
    categories, confidences, raws = [], [], []
    for post, tag in zip(posts, tags):
        cls = classify(post.text, lexicon)
        # An incident post's confidence is that of its category at its place (independent readings).
        confidence = cls.confidence * tag.confidence if tag is not None and cls.category != NONE else cls.confidence
        categories.append(cls.category)
        confidences.append(round(confidence, 4))
        raws.append(_raw(post, cls, tag))
    # Zone links for posts that report an incident: they are what rules count and operators see as
    # evidence. Everyday chatter is stored with its location (the map shows it) but not matched to
    # zones: nothing counts it or reads its zones, and it is most of the stream.
    incident = np.array([t is not None and c != NONE for t, c in zip(tags, categories)], dtype=bool)
    at = np.flatnonzero(incident)
    pos, zone, weight = post_zones.locate([tags[k] for k in at.tolist()], zones, [wkbs[k] for k in at.tolist()])
    return Chunk(
        categories=categories, confidences=confidences, located=[t is not None for t in tags],
        wkb=_stored_wkbs(tags, wkbs),
        uncertainty_m=[float(t.uncertainty_m) if t is not None else None for t in tags],
        geotag_method=[t.method if t is not None else "none" for t in tags], raw=raws, incident=incident,
        link_pos=at[pos], link_zone=zone, link_weight=weight,
        zone_weights=post_zones.pack_weights(at[pos], zone, weight, len(posts)))


def rows(chunk: Chunk, heads: Sequence[Head], new: Sequence[bool]) -> tuple[dict[str, list], np.ndarray]:
    """The observation rows of the chunk's new posts (heads[k] is the post at position k; new[k]: it is
    to be stored) as column arrays for post_store.send_posts, and which positions feed the
    rules (new, an incident, located, not a repost). A counted post keeps its zone weights in every layer
    (ingest.posts.signal_layers backfills from them)."""
    at = [k for k, yes in enumerate(new) if yes]
    counted = chunk.incident & np.array([yes and not h.is_repost for h, yes in zip(heads, new)], dtype=bool)
    columns = {
        "external_id": [heads[k].external_id for k in at],
        "author_hash": [heads[k].author for k in at],
        "text": [heads[k].post.text for k in at],
        "category": [chunk.categories[k] for k in at],
        "confidence": [float(chunk.confidences[k]) for k in at],
        "observed_at": [heads[k].observed_at for k in at],
        "wkb": [chunk.wkb[k] for k in at],
        "uncertainty_m": [chunk.uncertainty_m[k] for k in at],
        "geotag_method": [chunk.geotag_method[k] for k in at],
        "raw": [_repost_marked(chunk.raw[k]) if heads[k].is_repost else chunk.raw[k] for k in at],
        "text_fingerprint": [heads[k].fingerprint for k in at],
        "zone_weights": [chunk.zone_weights[k] if counted[k] else None for k in at],
    }
    return columns, counted


def _raw(post: Item, cls, tag: Geotag | None) -> str:
    raw: dict = {"source": post.source, "external_id": post.external_id,
                 "classification": {"category": cls.category, "confidence": cls.confidence,
                                    "matched": list(cls.matched)}}
    if cls.secondary:  # a compound incident: the burning transformer is a fire, and an outage too
        raw["classification"]["secondary"] = list(cls.secondary)
    if post.lang:
        raw["lang"] = post.lang
    if post.url:
        raw["url"] = post.url
    if post.place is not None and post.place.get("name"):
        raw["place_name"] = post.place["name"]
    if tag is not None:
        raw["geotag"] = {"method": tag.method, "confidence": round(tag.confidence, 3), "kind": tag.kind,
                         "matched": tag.matched}
    return _json(raw)


def _json(value: dict) -> str:
    """Compact JSON, as json.dumps(separators=(",", ":")) writes it but in an eighth of its time (0.9 µs
    against 7.1 for a post's); numpy numbers as numbers, anything else unknown as its str."""
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _repost_marked(raw: str) -> str:
    return _json({**orjson.loads(raw), "counted": False, "reason": "repost"})


# The stored centre of each detailed outline, by the outline's WKB: the same few hundred gazetteer
# outlines come back in every batch, and their centre cost 60 us each to find and encode again.
_CENTRES: dict[bytes, bytes] = {}
_CENTRES_MAX = 20_000


def _stored_wkbs(tags: Sequence[Geotag | None], wkbs: Sequence[bytes | None]) -> list[bytes | None]:
    """What each observation row keeps as its location: the geometry, or for a detailed outline (a named
    neighbourhood, ZIP or borough) its central point, with the outline's radius as uncertainty_m. Copying
    the same outline into thousands of rows costs more than the rest of the insert; the zones were
    matched against the outline itself."""
    out = list(wkbs)
    for k, (tag, wkb) in enumerate(zip(tags, wkbs)):
        if tag is not None and wkb is not None and len(wkb) >= post_zones.LARGE_AREA_WKB_BYTES:
            centre = _CENTRES.get(wkb)
            if centre is None:
                if len(_CENTRES) >= _CENTRES_MAX:
                    _CENTRES.clear()
                centre = _CENTRES[wkb] = shapely.to_wkb(tag.point)
            out[k] = centre
    return out
