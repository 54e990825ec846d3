"""WebSocket fan-out under load: N clients on WS /v1/live while a writer commits observations at a fixed rate.

Latency is commit -> client receive, per (client, message): the writer stamps each row just before
its COMMIT, every client stamps each message on arrival (same process, same monotonic clock). A raw
LISTEN connection on the same channel, measured in the same run, is the floor.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field


_OBS_ID = re.compile(r'"id":"obs:(\d+)"')


@dataclass
class Load:
    sent: dict[int, float] = field(default_factory=dict)  # observation id -> monotonic time of COMMIT
    received: list[dict[int, float]] = field(default_factory=list)  # per client: id -> arrival
    floor: dict[int, float] = field(default_factory=dict)


def _writer(dsn: str, load: Load, *, rate: int, duration_s: float, stop: threading.Event) -> None:
    import psycopg

    n = int(rate * duration_s)
    with psycopg.connect(dsn) as conn:
        start = time.monotonic()
        for i in range(n):
            slot = start + i / rate
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            row = conn.execute(
                "INSERT INTO observations (source, external_id, text, category, confidence, observed_at, received_at, "
                "geom, uncertainty_m, geotag_method) VALUES ('post', %s, 'Power outage, whole block is dark', "
                "'power_outage', 0.8, now(), now(), ST_SetSRID(ST_MakePoint(%s, %s), 4326), 100, 'coordinates') "
                "RETURNING id",
                (f"ws-{time.time_ns()}-{i}", -73.95 + (i % 50) * 0.002, 40.70 + (i % 40) * 0.002),
            ).fetchone()
            load.sent[row[0]] = time.monotonic()
            conn.commit()
    stop.set()


async def _client(url: str, token: str, sink: dict[int, float], ready: asyncio.Event, counter: list[int],
                  n: int) -> None:
    import websockets

    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=30) as ws:
        await ws.recv()  # hello
        counter[0] += 1
        if counter[0] == n:
            ready.set()
        try:
            async for raw in ws:
                now = time.monotonic()
                # Messages carry "id":"obs:<id>" (a frame may hold an array of them): read the ids without
                # parsing whole features.
                for match in _OBS_ID.finditer(raw):
                    sink[int(match.group(1))] = now
        except websockets.ConnectionClosed:
            return


async def _floor(dsn: str, sink: dict[int, float], ready: asyncio.Event) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("LISTEN tocsin_live")
        ready.set()
        async for note in conn.notifies():
            if note.payload.startswith("obs:"):
                sink[int(note.payload[4:])] = time.monotonic()


async def run(*, ws_url: str, token: str, dsn: str, clients: int, rate: int, duration_s: float) -> Load:
    load = Load(received=[{} for _ in range(clients)])
    ready, floor_ready = asyncio.Event(), asyncio.Event()
    counter = [0]
    tasks = [asyncio.create_task(_client(ws_url, token, load.received[i], ready, counter, clients))
             for i in range(clients)]
    tasks.append(asyncio.create_task(_floor(dsn, load.floor, floor_ready)))
    await asyncio.wait_for(asyncio.gather(ready.wait(), floor_ready.wait()), 60)
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(dsn, load), kwargs={"rate": rate, "duration_s": duration_s,
                                                                      "stop": stop}, daemon=True)
    writer.start()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)  # let the last messages arrive
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return load


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latencies_ms(load: Load) -> tuple[list[float], list[float], int]:
    """Client latencies, floor latencies, and how many (client, message) pairs never arrived."""
    client = [(sink[i] - t) * 1000 for sink in load.received for i, t in load.sent.items() if i in sink]
    missing = sum(1 for sink in load.received for i in load.sent if i not in sink)
    floor = [(load.floor[i] - t) * 1000 for i, t in load.sent.items() if i in load.floor]
    return client, floor, missing
