"""WS /v1/live: one LISTEN connection per process fans new observations and alert events out to the map.

Each frame is one JSON message object, or a JSON array of them when a client has a backlog.

Migrations 0009 and 0010 make every outbox insert NOTIFY `tocsin_live` with `evt:<id>`, and every insert
statement on observations with `obs:<id>,<id>,...`, at commit. The hub holds the only listening
connection, reads each batch of rows once, serialises each message once and queues it to every
connected client. A client that connects with
`since_obs` / `since_evt` first gets what it missed from the database, then the live stream.

Authentication is checked at the handshake and then again, for every open socket at once, every
CHECK_EVERY_S by one query per process (LiveHub._watch): a socket whose session was signed out, revoked
or expired, or whose operator was disabled or got a new token, closes with 4401 and the reason. A
handshake with the session cookie must come from an allowed Origin (4403 otherwise); bearer tokens
(machines) need none.

Each socket gets only the observations and alert events its operator's agencies cover (the coverage read at
the handshake; changing an operator's agencies ends their sessions, so a signed-in map reconnects with the
new one).
"""

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import psycopg
from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from accounts import operators, sessions
from accounts.agencies import EVERYTHING, Coverage
from accounts.api import SESSION_COOKIE
from db.errors import Forbidden, Unauthorized
from db.tokens import hash_token
from tocsin import live_feed
from tocsin.live_feed import Message

log = logging.getLogger(__name__)

CHANNEL = "tocsin_live"
CLOSE_UNAUTHORIZED = 4401  # the page shows the sign-in form instead of reconnecting
CLOSE_FORBIDDEN = 4403  # the handshake came from an Origin that may not use the session cookie
CLOSE_BAD_REQUEST = 4400
CLOSE_TOO_SLOW = 4408  # the client fell behind; it reconnects and backfills
CLOSE_RESTART = 1012  # the feed restarted (lost LISTEN, or a test hook); reconnect and backfill
CHECK_EVERY_S = 2.0  # how soon an open socket notices its session or operator has ended

# What an open socket authenticated with, re-checked by the hub: ("session", session row id) for the
# cookie, ("bearer", (operator id, token hash)) for a token.
AuthKey = tuple[str, object]

router = APIRouter(tags=["live map"])


def utcnow() -> datetime:
    return datetime.now(UTC)


class LiveClient:
    """One connected socket's queue; bounded so one stalled browser cannot grow the server's memory."""

    def __init__(self, max_queued: int, auth: AuthKey | None = None, coverage: Coverage = EVERYTHING) -> None:
        self.max_queued = max_queued
        self.auth = auth
        self.coverage = coverage
        self.queue: deque[Message] = deque()
        self.wake = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    def offer(self, messages: list[Message]) -> None:
        if self.close_code is not None:
            return
        if not self.coverage.everything:
            messages = [m for m in messages if live_feed.visible(m, self.coverage)]
            if not messages:
                return
        self.queue.extend(messages)
        if len(self.queue) > self.max_queued:
            self.queue.clear()
            self.close_code = CLOSE_TOO_SLOW
        self.wake.set()

    def close(self, code: int, reason: str = "") -> None:
        self.close_code = code
        self.close_reason = reason
        if code == CLOSE_UNAUTHORIZED:
            self.queue.clear()  # nothing more for a caller who is no longer signed in
        self.wake.set()


class LiveHub:
    """The process's single LISTEN connection and its fan-out; started by the first client."""

    def __init__(self, *, dsn: str, factory: sessionmaker[Session], clock: Callable[[], datetime] = utcnow,
                 max_queued: int = 10_000, coalesce_s: float = 0.005, idle_s: float = 3600.0,
                 check_every_s: float = CHECK_EVERY_S) -> None:
        self.dsn = dsn
        self.factory = factory
        self.clock = clock
        self.max_queued = max_queued
        self.coalesce_s = coalesce_s
        self.idle_s = idle_s
        self.check_every_s = check_every_s
        self.clients: set[LiveClient] = set()
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._listening: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def ensure_started(self, *, timeout_s: float = 10.0) -> None:
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._listening = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="tocsin-live-listener")
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="tocsin-live-auth-check")
        assert self._listening is not None
        await asyncio.wait_for(self._listening.wait(), timeout_s)

    async def stop(self) -> None:
        for task in (self._task, self._watcher):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._task = self._watcher = None
        self.drop_all(CLOSE_RESTART)

    def subscribe(self, auth: AuthKey | None = None, coverage: Coverage = EVERYTHING) -> LiveClient:
        client = LiveClient(self.max_queued, auth, coverage)
        self.clients.add(client)
        return client

    def unsubscribe(self, client: LiveClient) -> None:
        self.clients.discard(client)

    def drop_all(self, code: int = CLOSE_RESTART) -> None:
        """Close every client (they reconnect and backfill); call from the hub's event loop."""
        for client in list(self.clients):
            client.close(code)

    def drop_all_threadsafe(self) -> None:
        """Test and ops hook: drop every connection from another thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.drop_all, CLOSE_RESTART)

    async def _watch(self) -> None:
        """Close sockets whose session or token has ended: one query for all of them, every check_every_s."""
        while True:
            await asyncio.sleep(self.check_every_s)
            watched = [c for c in self.clients if c.auth is not None and c.close_code is None]
            if not watched:
                continue
            try:
                ended = await run_in_threadpool(self._check, {c.auth for c in watched if c.auth is not None})
            except Exception as exc:  # the database is away: keep the sockets, try again next time
                log.warning("live feed could not re-check sessions (%s)", exc)
                continue
            for client in watched:
                reason = ended.get(client.auth)  # type: ignore[arg-type]
                if reason is not None:
                    client.close(CLOSE_UNAUTHORIZED, reason)

    def _check(self, keys: set[AuthKey]) -> dict[AuthKey, str]:
        session_ids = [k[1] for k in keys if k[0] == "session"]
        bearers = [k[1] for k in keys if k[0] == "bearer"]
        with self.factory() as session:
            ended = sessions.still_valid(session, session_ids=session_ids, bearers=bearers,  # type: ignore[arg-type]
                                         now=self.clock(), idle_s=self.idle_s)
            session.commit()  # open sockets count as use of their sessions
        return ended

    async def _run(self) -> None:
        backoff_s = 0.5
        listened_before = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if listened_before:
                        # Notifications were lost while the connection was down: clients must backfill.
                        self.drop_all(CLOSE_RESTART)
                    listened_before = True
                    assert self._listening is not None
                    self._listening.set()
                    backoff_s = 0.5
                    await self._pump(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener must survive a database restart
                assert self._listening is not None
                self._listening.clear()
                log.warning("live feed lost its LISTEN connection (%s); retrying in %.1fs", exc, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)

    async def _pump(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            payloads = [n.payload async for n in conn.notifies(timeout=30.0, stop_after=1)]
            if not payloads:
                await conn.execute("SELECT 1")  # notice a dead connection between quiet spells
                continue
            # Coalesce a burst (many reports, or a bulk insert's id chunks) into one read.
            payloads += [n.payload async for n in conn.notifies(timeout=self.coalesce_s, stop_after=5_000)]
            if not self.clients:
                continue
            messages = await run_in_threadpool(self._read, payloads)
            for client in list(self.clients):
                client.offer(messages)

    def _read(self, payloads: list[str]) -> list[Message]:
        obs_ids: list[int] = []
        evt_ids: list[int] = []
        for payload in payloads:
            parsed = live_feed.parse_payload(payload)
            if parsed is not None:
                (obs_ids if parsed[0] == "obs" else evt_ids).extend(parsed[1])
        with self.factory() as session:
            return live_feed.read_by_ids(session, obs_ids=obs_ids, evt_ids=evt_ids, now=self.clock())


def install(app: FastAPI, *, dsn: str) -> None:
    """Add the websocket route and a hub that stops with the app's lifespan (the hub starts lazily)."""
    hub = LiveHub(dsn=dsn, factory=lambda: app.state.sessionmaker(),  # type: ignore[arg-type,return-value]
                  idle_s=app.state.settings.session_idle_s)
    app.state.live_hub = hub
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[object]:
        async with inner(a) as state:
            try:
                yield state
            finally:
                await hub.stop()

    app.router.lifespan_context = lifespan
    app.include_router(router)


def _reason(text: str) -> str:
    """A close reason within the protocol's 123 bytes (UTF-8), cut at a character boundary."""
    return text.encode()[:123].decode(errors="ignore")


def _cursor(websocket: WebSocket, name: str) -> int | None:
    raw = websocket.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ValueError(f"{name} {raw!r} is not a non-negative integer event id")
    return int(raw)


def _authenticate(websocket: WebSocket, token: str | None, sid: str | None,
                  now: datetime) -> tuple[operators.Identity, AuthKey]:
    """The operator behind a token (machines) or else the session cookie (browsers), and what to re-check."""
    settings = websocket.app.state.settings
    with websocket.app.state.sessionmaker() as session:
        if token:
            identity = operators.authenticate(session, token=token)
            return identity, ("bearer", (identity.operator_id, hash_token(token)))
        identity, session_id, touched = operators.authenticate_session(session, sid=sid, now=now,
                                                                       idle_s=settings.session_idle_s)
        if touched:
            session.commit()
        return identity, ("session", session_id)


def _check_origin(websocket: WebSocket) -> None:
    """A browser always sends Origin on a websocket handshake; the cookie may only be used from ours."""
    settings = websocket.app.state.settings
    sessions.check_origin(origin=websocket.headers.get("origin"), referer=None,
                          allowed=sessions.allowed_origins(settings.public_base_url, settings.allowed_origins))


@router.websocket("/v1/live")
async def live(websocket: WebSocket) -> None:
    """New observations and alert events as JSON messages; resume with ?since_obs=&since_evt=."""
    await websocket.accept()
    # Browsers send the session cookie; other clients should send `Authorization: Bearer` (a `token`
    # query parameter also works but ends up in access logs).
    scheme, _, bearer = websocket.headers.get("authorization", "").partition(" ")
    token = (bearer if scheme.lower() == "bearer" else None) or websocket.query_params.get("token")
    sid = None if token else websocket.cookies.get(SESSION_COOKIE)
    try:
        if sid:
            _check_origin(websocket)
        identity, auth = await run_in_threadpool(_authenticate, websocket, token, sid, utcnow())
    except Forbidden as exc:
        await websocket.close(CLOSE_FORBIDDEN, _reason(exc.message))
        return
    except Unauthorized as exc:
        await websocket.close(CLOSE_UNAUTHORIZED, _reason(exc.message))
        return
    try:
        since_obs, since_evt = _cursor(websocket, "since_obs"), _cursor(websocket, "since_evt")
    except ValueError as exc:
        await websocket.close(CLOSE_BAD_REQUEST, _reason(str(exc)))
        return
    hub: LiveHub = websocket.app.state.live_hub
    client = hub.subscribe(auth, identity.coverage)  # before the backfill read, so nothing committed in between is missed
    try:
        await hub.ensure_started()
        await _serve(websocket, hub, client, identity, since_obs, since_evt)
    except (WebSocketDisconnect, ConnectionError):
        pass
    finally:
        hub.unsubscribe(client)


async def _serve(websocket: WebSocket, hub: LiveHub, client: LiveClient, identity: operators.Identity,
                 since_obs: int | None, since_evt: int | None) -> None:
    def snapshot() -> tuple[dict[str, int], list[Message]]:
        with websocket.app.state.sessionmaker() as session:
            now = hub.clock()
            missed = live_feed.backfill(session, since_obs=since_obs, since_evt=since_evt, now=now)
            return live_feed.cursors(session), [m for m in missed if live_feed.visible(m, identity.coverage)]

    heads, missed = await run_in_threadpool(snapshot)
    await websocket.send_text(json.dumps({
        "type": "hello", "operator": identity.name, "role": identity.role,
        "agencies": list(identity.coverage.agencies), "cursor": heads,
        "backfill": len(missed),
    }))
    sent = {m.key for m in missed}
    for message in missed:
        await websocket.send_text(message.text)
    receiver = asyncio.create_task(_discard_incoming(websocket))
    try:
        while not receiver.done():
            waiter = asyncio.create_task(client.wake.wait())
            await asyncio.wait({waiter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            client.wake.clear()
            batch = []
            while client.queue:
                message = client.queue.popleft()
                if not (sent and message.key in sent):  # else already sent in the backfill
                    batch.append(message.text)
            if batch:
                # A client that fell behind gets its backlog as one JSON array frame, not one frame each.
                await websocket.send_text(batch[0] if len(batch) == 1 else "[" + ",".join(batch) + "]")
            if client.close_code is not None:
                await websocket.close(client.close_code, _reason(client.close_reason))
                return
    finally:
        receiver.cancel()


async def _discard_incoming(websocket: WebSocket) -> None:
    """Read until the client goes away (clients may send pings; nothing else is expected)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
