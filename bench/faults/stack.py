"""A whole Tocsin on a PostgreSQL of its own, which we may stop and start: the fault bench and the outage
test (tests/integration/test_db_outage.py) drive the same pieces.

PostgreSQL is a private cluster from scripts/services.sh (its own TOCSIN_VAR_DIR under a short path,
free ports), never the shared one; MQTT is the configured broker under a private topic prefix. The API
(`tocsin serve`) and the worker (`tocsin worker`) are real subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "scripts" / "services.sh"
# Cells of a grid over New York (inside the default jurisdiction), one alert zone per report.
WEST, SOUTH, EAST, NORTH = -74.25, 40.50, -73.70, 40.90
COLS, ROWS = 30, 30
RULES = """rules:
  - name: fault_gas_leak
    categories: [gas_leak]
    sources: [utility_report]
    layer: cell
    immediate: true
    severity: critical
"""


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            if s.getsockname()[1] not in (55439, 18839):
                ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def cell(i: int) -> tuple[float, float, float, float]:
    w, h = (EAST - WEST) / COLS, (NORTH - SOUTH) / ROWS
    col, row = i % COLS, (i // COLS) % ROWS
    return WEST + col * w, SOUTH + row * h, WEST + (col + 1) * w, SOUTH + (row + 1) * h


class PrivatePostgres:
    """A throwaway PostgreSQL+PostGIS cluster (scripts/services.sh) that may be stopped mid-run."""

    def __init__(self, mqtt_url: str) -> None:
        # Short, so the cluster's Unix socket path fits whatever the checkout path is.
        self.var = Path(tempfile.mkdtemp(prefix="tf-", dir="/tmp"))
        self.port, mqtt_port = free_ports(2)
        self.env = {k: v for k, v in os.environ.items() if k != "TOCSIN_DATABASE_URL"}
        # An MQTT URL other than the one the script would run makes it leave the broker alone.
        self.env.update(TOCSIN_VAR_DIR=str(self.var), TOCSIN_PG_PORT=str(self.port),
                        TOCSIN_MQTT_PORT=str(mqtt_port), TOCSIN_MQTT_URL=mqtt_url, TOCSIN_PGBOUNCER_PORT="0")
        self.url = f"postgresql+psycopg://tocsin:tocsin@127.0.0.1:{self.port}/tocsin"

    def _script(self, action: str) -> None:
        done = subprocess.run(["bash", str(SERVICES), action], env=self.env, capture_output=True, text=True,
                              timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"services.sh {action} failed: {done.stderr[-2000:]}")

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.var, ignore_errors=True)


def setup_database(url: str, cells: int) -> str:
    """Migrate, load `cells` grid cells as layer `cell`, create a utility; returns its API key."""
    from shapely.geometry import MultiPolygon, box

    from db import migrate
    from db.session import make_engine, make_sessionmaker, transaction
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord
    from accounts import keys
    from tocsin import models_registry

    migrate.upgrade(url)
    models_registry.load()
    engine = make_engine(url, pool_size=1)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            zone_service.upsert_zones(session, layer="cell", records=[
                ZoneRecord(code=f"C{i}", name=f"Cell {i}", geometry=MultiPolygon([box(*cell(i))]), properties={})
                for i in range(cells)])
            utility = keys.add_utility(session, name="Fault Power")
            return keys.issue_key(session, role="utility", utility_id=utility.id)
    finally:
        engine.dispose()


class Processes:
    """`tocsin serve` and `tocsin worker` as subprocesses, logging to files under `log_dir`."""

    def __init__(self, *, database_url: str, mqtt_url: str, log_dir: Path, extra_env: dict[str, str] | None = None):
        self.prefix = f"faults/{uuid.uuid4().hex[:10]}/tocsin/v1"
        self.log_dir = log_dir
        rules = log_dir / "rules.yaml"
        rules.write_text(RULES)
        self.port = free_ports(1)[0]
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TOCSIN_DATABASE_URL": database_url, "TOCSIN_MQTT_URL": mqtt_url,
                    "TOCSIN_RULES_FILE": str(rules), "TOCSIN_MQTT_TOPIC_PREFIX": self.prefix,
                    "TOCSIN_MQTT_CLIENT_ID": f"faults-{uuid.uuid4().hex[:8]}", "TOCSIN_RATE_LIMIT_PER_MIN": "0",
                    "TOCSIN_WARM_POST_CACHES": "false", "TOCSIN_POST_WORKER_PROCESS": "false",
                    "TOCSIN_RELAY_POLL_S": "1", "TOCSIN_SWEEP_INTERVAL_S": "1", "TOCSIN_LOG_LEVEL": "INFO",
                    **(extra_env or {})}
        self.api: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.worker_starts = 0

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child holds it
        try:
            return subprocess.Popen([sys.executable, "-m", "tocsin.cli", *args], env=self.env, cwd=REPO,
                                    stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()

    def start_api(self) -> None:
        from bench.latency.load import wait_http

        self.api = self._spawn("api", "serve", "--port", str(self.port))
        try:
            wait_http(self.base, self.api)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log('api')[-2000:]}") from None

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", "worker")
        self.worker_starts += 1

    def wait_roles_up(self, roles: tuple[str, ...], timeout_s: float = 30) -> bool:
        """Waits until /readyz shows a fresh heartbeat from each role; False on timeout."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                workers = httpx.get(f"{self.base}/readyz", timeout=5).json().get("workers", {})
            except (httpx.HTTPError, ValueError):
                workers = {}
            if all(r in workers and workers[r]["state"] == "ok" and not workers[r]["stalled"] for r in roles):
                return True
            time.sleep(0.2)
        return False

    def stop_worker(self, timeout_s: float = 30) -> int:
        """SIGTERM the worker and wait; returns its exit code."""
        self.worker.terminate()
        return self.worker.wait(timeout_s)

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        procs = [p for p in (self.api, self.worker) if p is not None and p.poll() is None]
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


class Arrivals:
    """A QoS 1 MQTT subscriber on the stack's alert topics: the alert ids of `opened` events received."""

    def __init__(self, mqtt_url: str, topic: str) -> None:
        import paho.mqtt.client as mqtt

        u = urlparse(mqtt_url)
        self.opened: set[int] = set()
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"faults-sub-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, ud, fl, rc, pr: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(u.hostname, u.port or 1883)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError(f"could not subscribe to {topic}")

    def _on_message(self, client, userdata, msg) -> None:
        event = json.loads(msg.payload)
        if event.get("kind") == "opened":
            with self._lock:
                self.opened.add(int(event["alert_id"]))

    def missing(self, wanted: set[int]) -> set[int]:
        with self._lock:
            return wanted - self.opened

    def wait_for(self, wanted: set[int], timeout_s: float) -> set[int]:
        """Waits until every wanted alert arrived or the time is up; returns those still missing."""
        deadline = time.monotonic() + timeout_s
        while self.missing(wanted) and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.missing(wanted)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Burst:
    """Reports sent one after another from a thread, each in a cell of its own, until stopped."""

    base: str
    key: str
    first_cell: int = 0
    gap_s: float = 0.02
    statuses: list[int] = field(default_factory=list)  # 0: no HTTP answer (a reset, a timeout)
    accepted_alerts: set[int] = field(default_factory=set)
    unavailable_without_retry_after: int = 0
    bodies_5xx: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="burst", daemon=True)

    def start(self) -> "Burst":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def count(self, status: int) -> int:
        return sum(1 for s in list(self.statuses) if s == status)

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.key}"}, timeout=30) as http:
            i = 0
            while not self._stop.is_set():
                west, south, east, north = cell(self.first_cell + i)
                feature = {"type": "Feature",
                           "geometry": {"type": "Point", "coordinates": [(west + east) / 2, (south + north) / 2]},
                           "properties": {"external_id": f"fault-{self.first_cell + i}", "category": "gas_leak"}}
                i += 1
                try:
                    r = http.post("/v1/reports", json=feature)
                except httpx.HTTPError:
                    self.statuses.append(0)
                    continue
                self.statuses.append(r.status_code)
                if r.status_code == 201:
                    self.accepted_alerts.update(int(a) for a in r.json().get("alerts_changed", []))
                elif r.status_code >= 500:
                    self.bodies_5xx.append(r.text[:300])
                    if r.status_code == 503 and not r.headers.get("retry-after"):
                        self.unavailable_without_retry_after += 1
                self._stop.wait(self.gap_s)

    def wait_statuses(self, status: int, n: int, timeout_s: float = 60) -> bool:
        """Waits until `n` more answers with `status` arrive after this call; False on timeout."""
        start = self.count(status)
        deadline = time.monotonic() + timeout_s
        while self.count(status) < start + n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.count(status) >= start + n


@contextmanager
def outage_stack(mqtt_url: str) -> Iterator[tuple[PrivatePostgres, Processes, str, Arrivals]]:
    """A private PostgreSQL (to stop and start), migrated with 900 zones and a utility key, the API and
    worker processes' launcher, and an MQTT subscriber to their alerts, subscribed before anything is
    published; all torn down on exit. Shared by bench.faults and tests/integration/test_db_outage.py."""
    pg = PrivatePostgres(mqtt_url)
    logs = Path(tempfile.mkdtemp(prefix="tf-logs-"))
    procs = arrivals = None
    try:
        pg.start()
        key = setup_database(pg.url, cells=900)
        procs = Processes(database_url=pg.url, mqtt_url=mqtt_url, log_dir=logs)
        arrivals = Arrivals(mqtt_url, f"{procs.prefix}/alerts/#")
        yield pg, procs, key, arrivals
    finally:
        if arrivals is not None:
            arrivals.close()
        if procs is not None:
            procs.close()
        pg.close()
        shutil.rmtree(logs, ignore_errors=True)
