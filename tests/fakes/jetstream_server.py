"""A local fake Jetstream: replays a scripted stream over a real websocket, honouring `cursor`.

It speaks Jetstream's message shape (`did`, `time_us`, `kind`, `commit`/`identity`/`account`), filters
commits by `wantedCollections` (identity and account events always pass, as on the real service), and
starts each connection at the first event with `time_us >= cursor`. `drop_after` makes the first
connections die abruptly (TCP reset, no close frame) after that many events, like a network failure.
After the script ends, a connection stays open as a quiet live tail until the server stops.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


def post_event(did: str, rkey: str, time_us: int, text: str, *, langs: list[str] | None = None,
               created_at: str = "2026-11-25T21:00:00.000Z") -> dict:
    """A post create exactly as Jetstream sends it."""
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": created_at}
    if langs is not None:
        record["langs"] = langs
    return {"did": did, "time_us": time_us, "kind": "commit", "commit": {
        "rev": f"rev{time_us}", "operation": "create", "collection": "app.bsky.feed.post", "rkey": rkey,
        "record": record, "cid": f"bafyrei{rkey}"}}


def like_event(did: str, rkey: str, time_us: int) -> dict:
    return {"did": did, "time_us": time_us, "kind": "commit", "commit": {
        "rev": f"rev{time_us}", "operation": "create", "collection": "app.bsky.feed.like", "rkey": rkey,
        "record": {"$type": "app.bsky.feed.like", "createdAt": "2026-11-25T21:00:00.000Z",
                   "subject": {"cid": "bafyreisubject", "uri": f"at://{did}/app.bsky.feed.post/x"}},
        "cid": f"bafyrei{rkey}"}}


def delete_event(did: str, rkey: str, time_us: int) -> dict:
    return {"did": did, "time_us": time_us, "kind": "commit", "commit": {
        "rev": f"rev{time_us}", "operation": "delete", "collection": "app.bsky.feed.post", "rkey": rkey}}


def identity_event(did: str, time_us: int) -> dict:
    return {"did": did, "time_us": time_us, "kind": "identity", "identity": {
        "did": did, "handle": "someone.bsky.social", "seq": time_us // 1000, "time": "2026-11-25T21:00:00.000Z"}}


def account_event(did: str, time_us: int) -> dict:
    return {"did": did, "time_us": time_us, "kind": "account", "account": {
        "active": True, "did": did, "seq": time_us // 1000, "time": "2026-11-25T21:00:00.000Z"}}


@dataclass
class Connection:
    cursor: int | None
    wanted_collections: list[str]
    sent: list[int] = field(default_factory=list)  # time_us of each event sent


class FakeJetstream:
    """Serve `events` (sorted by time_us) at ws://127.0.0.1:PORT/subscribe."""

    def __init__(self, events: list[dict], *, drop_after: int | None = None, drops: int = 1, port: int = 0) -> None:
        self.port = port
        self.events = sorted(events, key=lambda e: e["time_us"])
        self.drop_after, self.drops_left = drop_after, drops
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/subscribe"

    def start(self) -> FakeJetstream:
        from websockets.sync.server import serve

        self._server = serve(self._handle, "127.0.0.1", self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeJetstream:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handle(self, ws) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        wanted = query.get("wantedCollections", [])
        conn = Connection(cursor, wanted)
        with self._lock:
            self.connections.append(conn)
            drop_after = self.drop_after if self.drops_left > 0 else None
            if drop_after is not None:
                self.drops_left -= 1
        for event in self.events:
            if cursor is not None and event["time_us"] < cursor:
                continue
            if event["kind"] == "commit" and wanted and event["commit"]["collection"] not in wanted:
                continue
            if drop_after is not None and len(conn.sent) >= drop_after:
                # An abrupt network failure: RST instead of a close handshake.
                ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ws.socket.close()
                return
            ws.send(json.dumps(event))
            conn.sent.append(event["time_us"])
        self._stopping.wait()  # live tail: nothing more to say
