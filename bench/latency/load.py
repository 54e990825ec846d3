"""bench.latency's load side: the grid of cells, the open-loop POST schedule, the MQTT subscriber that
timestamps arrivals, and the small process helpers. The product and its floor are driven by the same
pieces, so their figures compare."""

import json
import subprocess
import threading
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

WEST, SOUTH, EAST, NORTH = -74.25, 40.50, -73.70, 40.90
COLS, ROWS = 60, 100  # one cell per report: 100 warm-up + 500 + 1,000 + 2,000, then 100 + 2,000 = 5,700 cells


def cell(i: int) -> tuple[float, float, float, float]:
    w, h = (EAST - WEST) / COLS, (NORTH - SOUTH) / ROWS
    col, row = i % COLS, i // COLS
    return WEST + col * w, SOUTH + row * h, WEST + (col + 1) * w, SOUTH + (row + 1) * h


class Arrivals:
    """A QoS 1 subscriber recording when each alert's `opened` event arrived (wall clock)."""

    def __init__(self, mqtt_url: str, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.at: dict[int, float] = {}
        self.dispatch_ms: dict[int, float] = {}  # the API's `now` for the report -> arrival
        self.by_event: dict[str, float] = {}  # event_id -> arrival, for the relay-only probe
        self._ready = threading.Event()
        u = urlparse(mqtt_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, ud, fl, rc, pr: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(u.hostname, u.port or 1883)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError(f"could not subscribe on {mqtt_url}")

    def _on_message(self, client, userdata, msg) -> None:
        now = time.time()
        event = json.loads(msg.payload)
        self.by_event.setdefault(event.get("event_id", ""), now)
        if event.get("kind") == "opened" and event["alert_id"] not in self.at:
            self.at[event["alert_id"]] = now
            opened = datetime.fromisoformat(event["opened_at"]).timestamp()
            self.dispatch_ms[event["alert_id"]] = (now - opened) * 1000

    def clear_retained(self, topics: list[str]) -> None:
        """Publish an empty retained message to each topic: the broker forgets what the run left there.

        Every run writes a retained zone state per cell under its own prefix; left behind, they pile up
        in Mosquitto's persistence file, which it rewrites every second (36 MB here after a day of runs,
        a 150 ms stall every other second for later runs)."""
        infos = [self.client.publish(t, b"", qos=1, retain=True) for t in topics]
        for info in infos:
            info.wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def post_schedule(base: str, key: str, *, first_cell: int, rate: float, seconds: float,
                   connections: int = 32, floor: bool = False) -> tuple[dict[Any, float], int, float]:
    """POST one report per cell on an open-loop schedule; returns ({alert_id: sent_at}, failures, achieved rate).

    `floor`: the reports go to bench.latency.floor's API and are keyed by the event_id they carry.

    One asyncio thread sends them (bench.http_load, up to `connections` at once): the load generator
    shares the two cores with what it measures, so it must cost little (httpx cost ~9 ms CPU a POST)."""
    import asyncio

    from bench.http_load import Pool

    n = int(rate * seconds)
    sent: dict[int, float] = {}
    failures = [0]

    async def one(pool: Pool, i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        west, south, east, north = cell(first_cell + i)
        feature = {"type": "Feature",
                   "geometry": {"type": "Point", "coordinates": [(west + east) / 2, (south + north) / 2]},
                   "properties": {"external_id": f"lat-{first_cell + i}", "category": "gas_leak"}}
        if floor:
            feature["properties"]["event_id"] = str(uuid.uuid4())
        t = time.time()
        try:
            r = await pool.post("/v1/reports", json=feature)
        except OSError as exc:
            r, why = None, f"{type(exc).__name__}: {exc}"
        if r is not None and r.status_code == 201 and floor:
            sent[feature["properties"]["event_id"]] = t
            return
        if r is not None and r.status_code == 201 and r.json().get("alerts_changed"):
            sent[r.json()["alerts_changed"][0]] = t
            return
        failures[0] += 1
        if failures[0] <= 3:
            print(f"  failed post: {why if r is None else f'{r.status_code} {r.text[:200]}'}", flush=True)

    async def run() -> float:
        pool = Pool(base, size=connections, headers={"Authorization": f"Bearer {key}"})
        start = time.monotonic() + 0.2
        await asyncio.gather(*(one(pool, i, start + i / rate) for i in range(n)))
        await pool.aclose()
        return time.monotonic() - start

    elapsed = asyncio.run(run())
    return sent, failures[0], n / max(elapsed, 1e-9)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def wait_http(base: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the API server exited during start-up")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API server did not start")


def stop_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def wait_for(arrivals: Arrivals, keys: Any, *, floor: bool, timeout_s: float = 15) -> None:
    seen = arrivals.by_event if floor else arrivals.at
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(k in seen for k in keys):
        time.sleep(0.05)
