"""Live connector for Bluesky Jetstream: post create events -> pre-filter -> batches -> the post pipeline.

Jetstream (https://github.com/bluesky-social/jetstream) streams JSON over a websocket:
`wss://HOST/subscribe?wantedCollections=app.bsky.feed.post&cursor=<time_us>`. Every event carries `did`,
`time_us` (unix microseconds, the replay cursor) and `kind` (`commit`, `identity` or `account`); a commit
has `operation` (`create`/`update`/`delete`), `collection`, `rkey`, and for creates the `record`.

Delivery. The cursor (the `time_us` of the last event handled) is stored in `connector_cursors` in the
same transaction as the posts of its batch, so a crash loses neither. On (re)connect the connector asks for
`cursor - overlap_s`: Jetstream's own advice for gapless playback. Events replayed in the overlap are
dropped by the pipeline's `(source, external_id)` dedup, so nothing is missed and nothing counts twice.
Disconnects back off exponentially with full jitter; a connection that delivered events resets the backoff.
A database error ends `run()`: the committed cursor makes a restart (by the supervisor) lose nothing.

Only posts whose language and text pass the cheap pre-filter reach the pipeline (geotag, classify, DB);
the rest still advance the cursor. Logs carry record keys and cursors, never post text or author DIDs.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
POST_COLLECTION = "app.bsky.feed.post"
SOURCE = "bluesky"
# Word stems of incident vocabulary; a post must contain one to be worth geotagging and classifying.
DEFAULT_KEYWORDS = (
    "fire", "smoke", "flame", "burn", "blaze", "flood", "water main", "geyser", "gas", "smell", "leak",
    "outage", "power out", "no power", "blackout", "lights out", "transformer", "crash", "collision",
    "accident", "overturn", "shot", "shooting", "stabb", "gunfire", "ambulance", "ems", "cardiac",
    "collapse", "crane", "scaffold", "explosion", "exploded", "hazmat", "chemical", "evacuat", "fdny", "nypd",
    "con ed", "coned", "911",
)


@dataclass(frozen=True)
class JetstreamConfig:
    """How to reach Jetstream and what to keep."""

    url: str = DEFAULT_URL
    name: str = "jetstream"  # the connector_cursors row
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    langs: tuple[str, ...] = ("en",)  # empty keeps every language; posts without `langs` are kept
    overlap_s: float = 5.0
    batch_size: int = 500
    batch_max_wait_s: float = 1.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    recv_timeout_s: float = 0.25  # how often a quiet connection checks for stop and flushes


# ---------------------------------------------------------------- pure parts


def subscribe_url(base: str, *, cursor: int | None) -> str:
    """The subscribe URL for `base`, asking for posts only and, when given, replay from `cursor` (time_us)."""
    parts = urlsplit(base)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"Jetstream url {base!r} must start with ws:// or wss://")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("wantedCollections", "cursor")]
    query.append(("wantedCollections", POST_COLLECTION))
    if cursor is not None:
        query.append(("cursor", str(int(cursor))))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/subscribe", urlencode(query), ""))


def backoff_s(attempt: int, *, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max_s, base_s * 2**attempt)]."""
    if attempt < 0:
        raise ValueError(f"attempt {attempt} must be >= 0")
    ceiling = min(max_s, base_s * (2 ** min(attempt, 30)))
    return (rng or random).uniform(0.0, ceiling)


class PostFilter:
    """Keyword stems (case-insensitive, at the start of a word) and languages."""

    def __init__(self, keywords: Iterable[str], langs: Iterable[str]) -> None:
        words = sorted({k.strip().lower() for k in keywords if k and k.strip()}, key=len, reverse=True)
        self._match = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + ")", re.IGNORECASE).search \
            if words else None
        self.langs = frozenset(lang.strip().lower().split("-")[0] for lang in langs if lang.strip())

    def keep(self, post: dict[str, Any]) -> bool:
        """True when the post's language (if it declares any) and its text pass."""
        langs = post.get("langs") or ()
        if self.langs and langs and not any(str(x).lower().split("-")[0] in self.langs for x in langs):
            return False
        return self._match is None or bool(self._match(post.get("text") or ""))


def _created_at(raw: object, time_us: int) -> datetime:
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if dt.tzinfo is not None:
                return dt.astimezone(UTC)
        except ValueError:
            pass
    return datetime.fromtimestamp(time_us / 1_000_000, UTC)  # a missing or naive createdAt: use Jetstream's clock


def parse_event(message: str | bytes) -> tuple[int | None, dict[str, Any] | None]:
    """(time_us, normalised post) of one Jetstream message; post is None unless it is a post create."""
    try:
        event = json.loads(message)
    except (TypeError, ValueError):
        return None, None
    if not isinstance(event, dict):
        return None, None
    time_us = event.get("time_us")
    time_us = time_us if isinstance(time_us, int) and not isinstance(time_us, bool) and time_us > 0 else None
    commit = event.get("commit")
    if event.get("kind") != "commit" or not isinstance(commit, dict) or time_us is None:
        return time_us, None
    record, did, rkey = commit.get("record"), event.get("did"), commit.get("rkey")
    if (commit.get("operation") != "create" or commit.get("collection") != POST_COLLECTION
            or not isinstance(record, dict) or not isinstance(did, str) or not isinstance(rkey, str)):
        return time_us, None
    text_ = record.get("text")
    if not isinstance(text_, str) or not text_.strip():
        return time_us, None
    langs = record.get("langs") if isinstance(record.get("langs"), list) else []
    return time_us, {
        "source": SOURCE,
        "external_id": f"at://{did}/{POST_COLLECTION}/{rkey}",
        "author": did,
        "text": text_,
        "lang": str(langs[0]) if langs else None,
        "langs": [str(x) for x in langs],
        "created_at": _created_at(record.get("createdAt"), time_us),
        "url": f"https://bsky.app/profile/{did}/post/{rkey}",
    }


# ---------------------------------------------------------------- the cursor


def load_cursor(session: Session, *, name: str) -> int | None:
    """The stored time_us cursor of connector `name`, or None before its first batch."""
    return session.execute(text("SELECT cursor FROM connector_cursors WHERE name = :name"), {"name": name}).scalar()


def save_cursor(session: Session, *, name: str, cursor: int, now: datetime) -> None:
    """Store the cursor; never moves it backwards (a replayed overlap must not rewind it)."""
    session.execute(text(
        "INSERT INTO connector_cursors (name, cursor, updated_at) VALUES (:name, :cursor, :now) "
        "ON CONFLICT (name) DO UPDATE SET cursor = GREATEST(connector_cursors.cursor, EXCLUDED.cursor), "
        "updated_at = EXCLUDED.updated_at"), {"name": name, "cursor": int(cursor), "now": now})


# ---------------------------------------------------------------- the loop

# ingest(session, posts, now): hands one batch of normalised posts to the pipeline; must not commit.
IngestFn = Callable[[Session, list[dict[str, Any]], datetime], Any]


def pipeline_ingest(*, lexicon: Any, rules: Sequence[Any], config: Any, state: Any) -> IngestFn:
    """The post pipeline as an IngestFn: validate each post, then `ingest.posts.pipeline.ingest_posts` with the
    database gazetteer (from `state`, an ingest.posts.state.PostState the caller owns and closes). A post that
    fails validation is logged by id."""
    from ingest.posts import pipeline
    from ingest.posts import parse as post_schema

    def ingest(session: Session, batch: list[dict[str, Any]], now: datetime) -> list:
        items = post_schema.parse_items(batch)
        valid = [p for p in items if isinstance(p, post_schema.PostIn)]
        for item in items:
            if isinstance(item, post_schema.Rejected):
                # The rkey names the post without its author's DID (authors are not logged in clear).
                rkey = str(batch[item.index].get("external_id", "")).rsplit("/", 1)[-1]
                log.warning("jetstream post rkey %s rejected: %s", rkey, item.error.split(" (got", 1)[0])
        if not valid:
            return []
        return pipeline.ingest_posts(session, posts=valid, index=state.gazetteer.get(session),
                                     lexicon=lexicon, rules=rules, config=config, state=state, now=now)

    return ingest


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConnectorStats:
    """Counters since start, for logs and tests."""

    attempts: int = 0
    connections: int = 0
    events: int = 0
    posts_seen: int = 0
    posts_kept: int = 0
    batches: int = 0
    last_cursor_requested: int | None = None


class JetstreamConnector:
    """Reads Jetstream, filters, batches into `ingest`, and commits each batch with its cursor."""

    def __init__(self, *, config: JetstreamConfig, session_factory: sessionmaker, ingest: IngestFn,
                 clock: Callable[[], datetime] = _utc_now, stop: threading.Event | None = None,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.session_factory = session_factory
        self.ingest = ingest
        self.clock = clock
        self.stop_event = stop or threading.Event()
        self.rng = rng or random.Random()
        self.filter = PostFilter(config.keywords, config.langs)
        self.stats = ConnectorStats()
        self._pending: list[dict[str, Any]] = []
        self._pending_cursor: int | None = None  # time_us of the newest event handled but not committed
        self._batch_started = 0.0

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        """Connect, read and reconnect until stopped."""
        from websockets.exceptions import ConnectionClosed, InvalidHandshake
        from websockets.sync.client import connect

        attempt = 0
        while not self.stop_event.is_set():
            with self.session_factory() as session:
                stored = load_cursor(session, name=self.config.name)
            cursor = None if stored is None else max(0, stored - int(self.config.overlap_s * 1_000_000))
            url = subscribe_url(self.config.url, cursor=cursor)
            self.stats.attempts += 1
            self.stats.last_cursor_requested = cursor
            events_before = self.stats.events
            try:
                with connect(url, open_timeout=10, close_timeout=2, max_size=2**22) as ws:
                    self.stats.connections += 1
                    log.info("jetstream %s connected, cursor %s", self.config.name, cursor)
                    self._read(ws)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                log.warning("jetstream %s disconnected from %s (close code %s)", self.config.name,
                            urlsplit(url).netloc, code)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                reason = (str(exc).strip().splitlines() or [""])[0][:200]
                log.warning("jetstream %s could not reach %s: %s%s", self.config.name, urlsplit(url).netloc,
                            type(exc).__name__, f": {reason}" if reason else "")
            self._flush()  # what was received before the drop is complete; commit it with its cursor
            if self.stop_event.is_set():
                break
            attempt = 0 if self.stats.events > events_before else attempt + 1  # a fruitful connection resets it
            delay = backoff_s(attempt, base_s=self.config.backoff_base_s, max_s=self.config.backoff_max_s,
                              rng=self.rng)
            log.info("jetstream %s reconnecting in %.2f s (attempt %d; the wait is at most %g s)", self.config.name,
                     delay, attempt, self.config.backoff_max_s)
            self.stop_event.wait(delay)

    def _read(self, ws) -> None:
        """Handle messages until the connection closes (ConnectionClosed) or we are stopped."""
        while not self.stop_event.is_set():
            try:
                message = ws.recv(timeout=self.config.recv_timeout_s)
            except TimeoutError:
                self._flush_if_due()
                continue
            self.handle(message)
            self._flush_if_due()

    def handle(self, message: str | bytes) -> None:
        """Take one message: advance the pending cursor and keep the post if it passes the filter."""
        time_us, post = parse_event(message)
        self.stats.events += 1
        if time_us is None:
            return
        if self._pending_cursor is None or time_us > self._pending_cursor:
            self._pending_cursor = time_us
        if post is None:
            return
        self.stats.posts_seen += 1
        if not self.filter.keep(post):
            return
        post.pop("langs", None)
        if not self._pending:
            self._batch_started = time.monotonic()
        self._pending.append(post)
        self.stats.posts_kept += 1

    def _flush_if_due(self) -> None:
        if len(self._pending) >= self.config.batch_size or (
                self._pending_cursor is not None
                and time.monotonic() - self._batch_started >= self.config.batch_max_wait_s):
            self._flush()

    def _flush(self) -> None:
        """Ingest the pending posts and store the cursor in one transaction."""
        if self._pending_cursor is None:
            return
        posts, cursor = self._pending, self._pending_cursor
        now = self.clock()
        with self.session_factory() as session:
            if posts:
                self.ingest(session, posts, now)
            save_cursor(session, name=self.config.name, cursor=cursor, now=now)
            session.commit()
        self.stats.batches += 1
        log.debug("jetstream %s stored %d posts, cursor %d", self.config.name, len(posts), cursor)
        self._pending, self._pending_cursor = [], None
        self._batch_started = time.monotonic()
