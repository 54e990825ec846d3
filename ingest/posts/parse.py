"""Public posts: the normalised post schema, batch parsing, author hashing and text fingerprints (pure).

A post from any source (HTTP batch, JSONL replay, Jetstream) is normalised to `PostIn` before the
pipeline sees it. Authors never leave this module in clear: `author_key` is an HMAC-SHA256 under the
operator's secret (`TOCSIN_AUTHOR_HASH_KEY`), so the same author gets the same key across posts (the
rules count distinct authors) while the hash cannot be reversed by guessing handles without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import shapely
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from db.errors import InvalidInput
from geo.errors import InvalidGeometry
from geo.geojson import parse_geometry, repair

MAX_BATCH = 10_000
MAX_TEXT = 10_000


def _without_nul(v: str | None) -> str | None:
    """PostgreSQL stores no NUL character in text or JSON: refused here, for this item alone."""
    if v is not None and "\x00" in v:
        raise ValueError("contains a NUL character (\\u0000), which cannot be stored")
    return v


class PlaceIn(BaseModel):
    """A place the post was tagged with: a name, and a bbox [west, south, east, north] or a GeoJSON polygon."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str | None = Field(default=None, max_length=300)
    bbox: tuple[float, float, float, float] | None = None
    polygon: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _no_nul(cls, v: str | None) -> str | None:
        return _without_nul(v)

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, v: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if v is None:
            return v
        west, south, east, north = v
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise ValueError(f"bbox {list(v)} is not [west, south, east, north] in degrees (lon, lat)")
        return v

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        if v.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValueError(f"polygon type {v.get('type')!r} is not Polygon or MultiPolygon")
        try:
            geom, _ = repair(parse_geometry(v, max_vertices=5_000))
        except InvalidGeometry as exc:
            raise ValueError(exc.message) from None
        return shapely.geometry.mapping(geom)  # type: ignore[return-value]

    @model_validator(mode="after")
    def _something(self) -> PlaceIn:
        if self.name is None and self.bbox is None and self.polygon is None:
            raise ValueError("place needs a name, a bbox or a polygon")
        return self


class PostIn(BaseModel):
    """One public post, whatever its source. `coordinates` is [longitude, latitude] (EPSG:4326)."""

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"examples": [{
        "source": "bluesky", "external_id": "at://did:plc:abc/app.bsky.feed.post/3k2", "author": "did:plc:abc",
        "text": "Water main burst on 31st St in Astoria, street flooding", "lang": "en",
        "created_at": "2026-11-25T21:00:00Z", "coordinates": [-73.9196, 40.7644],
        "url": "https://bsky.app/profile/did:plc:abc/post/3k2"}]})

    source: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$", description="Where the post comes from, e.g. bluesky")
    external_id: str = Field(min_length=1, max_length=512, description="Unique within the source; retries reuse it")
    author: str = Field(min_length=1, max_length=512, description="Stored only as a keyed hash")
    text: str = Field(max_length=MAX_TEXT)
    lang: str | None = Field(default=None, max_length=16)
    created_at: AwareDatetime
    coordinates: tuple[float, float] | None = None
    place: PlaceIn | None = None
    url: str | None = Field(default=None, max_length=2048)

    @field_validator("external_id", "author", "text", "lang", "url")
    @classmethod
    def _no_nul(cls, v: str | None) -> str | None:
        return _without_nul(v)

    @field_validator("coordinates")
    @classmethod
    def _lonlat(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is None:
            return v
        lon, lat = v
        hint = "; coordinates are [longitude, latitude]" if -90 <= lon <= 90 and not -90 <= lat <= 90 else ""
        if not -180 <= lon <= 180:
            raise ValueError(f"longitude {lon} is outside [-180, 180]")
        if not -90 <= lat <= 90:
            raise ValueError(f"latitude {lat} is outside [-90, 90]{hint}")
        return v


@dataclass(frozen=True)
class Rejected:
    """An item that could not be read as a post; `index` is its position in the batch."""

    index: int
    error: str


def _reason(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(p) for p in e["loc"]) or "(post)"
        got = e.get("input")
        shown = json.dumps(got, default=str)[:80] if not isinstance(got, dict) else "{...}"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg} (got {shown})" if "input" in e and e["type"] != "missing" else f"{loc}: {msg}")
    return "; ".join(parts)


def parse_items(items: Iterable[object], *, start: int = 0) -> list[PostIn | Rejected]:
    """Validate each item on its own: a bad item becomes `Rejected` with its index and never sinks the rest."""
    out: list[PostIn | Rejected] = []
    validate = PostIn.model_validate
    for i, item in enumerate(items, start=start):
        if isinstance(item, Rejected):
            out.append(item)
            continue
        if not isinstance(item, dict):
            out.append(Rejected(i, f"item must be a JSON object, got {type(item).__name__}"))
            continue
        try:
            out.append(validate(item))
        except ValidationError as exc:
            out.append(Rejected(i, _reason(exc)))
    return out


def split_body(body: bytes, *, ndjson: bool, max_items: int = MAX_BATCH) -> list[object]:
    """A request body as a list of raw items: a JSON array, or NDJSON with one object per non-blank line.

    A malformed NDJSON line becomes a `Rejected` item; a body that is not a JSON array at all is refused
    as a whole (there are no items to answer for)."""
    if ndjson:
        items: list[object] = []
        for n, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                items.append(Rejected(len(items), f"line {n} is not valid JSON: {exc}"))
    else:
        try:
            items = json.loads(body)
        except ValueError as exc:
            raise InvalidInput(f"body is not valid JSON ({exc}); send a JSON array of posts, "
                               "or NDJSON with Content-Type application/x-ndjson", field="body") from None
        if not isinstance(items, list):
            raise InvalidInput(f"body must be a JSON array of posts, got a JSON {type(items).__name__}",
                               field="body")
    if len(items) > max_items:
        raise InvalidInput(f"batch has {len(items)} posts; the limit is {max_items} per request", field="body")
    return items


def author_key(author: str, *, secret: str) -> str:
    """The author's keyed hash (HMAC-SHA256, hex): stable per author, useless without the secret."""
    return hmac.digest(secret.encode(), author.encode(), "sha256").hex()


def author_keys(authors: Iterable[str], *, secret: str) -> dict[str, str]:
    """`author_key` of each distinct author. The same HMAC, with the secret's two padded SHA-256 states
    computed once and copied per author (RFC 2104): 1 us an author against hmac.digest's 3.4."""
    key = secret.encode()
    if len(key) > 64:  # SHA-256's block size: longer keys are hashed first
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner, outer = hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))
    out = {}
    for author in authors:
        if author not in out:
            h = inner.copy()
            h.update(author.encode())
            o = outer.copy()
            o.update(h.digest())
            out[author] = o.hexdigest()
    return out


_URL = re.compile(r"https?://\S+|www\.\S+")
_WORD = re.compile(r"[^\W_]+")


def normalise_text(text: str) -> str:
    """Text as compared for reposts: NFKC, case-folded, links dropped, words joined by single spaces."""
    if not text.isascii():  # NFKC leaves ASCII as it is
        text = unicodedata.normalize("NFKC", text)
    text = text.casefold()
    if "://" in text or "www." in text:  # the common post has no link: skip the pass
        text = _URL.sub(" ", text)
    return " ".join(_WORD.findall(text))


def text_fingerprint(author_key_: str, text: str) -> str:
    """Same author and same normalised text give the same fingerprint."""
    return hashlib.sha256(f"{author_key_}\x00{normalise_text(text)}".encode()).hexdigest()[:32]


class ItemResultOut(BaseModel):
    """What became of one item of a batch: created, duplicate (stored before, or a repost) or rejected."""

    index: int = Field(description="Position of the item in the batch (0-based; NDJSON counts non-blank lines)")
    status: str = Field(description="created | duplicate | rejected")
    id: int | None = Field(default=None, description="The observation holding this post")
    error: str | None = Field(default=None, description="Why a rejected item was rejected, naming the field")
    duplicate_of: int | None = Field(default=None, description="The earlier observation this one repeats")
    category: str | None = None
    located: bool | None = None
    late: bool = Field(default=False, description="Stored, but observed longer ago than TOCSIN_MAX_LATENESS_S: "
                                                 "it feeds no rule")


class BatchOut(BaseModel):
    created: int
    duplicate: int
    rejected: int
    results: list[ItemResultOut]
