"""scripts/services.sh is idempotent: start, start, stop, start, stop.

Runs a throwaway PostgreSQL+PostGIS cluster, Mosquitto broker and PgBouncer on
free ports with their own TOCSIN_VAR_DIR under <repo>/var/, so the main services
on the default ports (55439 / 18839 / 16439) are never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "services.sh"
DEFAULT_PORTS = {55439, 18839, 16439}

pytestmark = [pytest.mark.integration, pytest.mark.heavy]


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in DEFAULT_PORTS and port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _mqtt_connack(port: int) -> bytes:
    """Minimal MQTT 3.1.1 CONNECT (clean session) -> return the CONNACK bytes."""
    client_id = b"tocsin-services-test"
    var_header = b"\x00\x04MQTT\x04\x02\x00\x3c"  # protocol, level 4, clean session, keepalive 60
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = var_header + payload
    packet = b"\x10" + bytes([len(body)]) + body + b"\xe0\x00"  # CONNECT ... DISCONNECT
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(packet[:-2])
        connack = s.recv(4)
        s.sendall(packet[-2:])
    return connack


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _check_pooler(pgb_port: int) -> None:
    """PgBouncer in transaction mode in front of the cluster, setting jit off on its server connections."""
    import psycopg

    with psycopg.connect(f"postgresql://tocsin:tocsin@127.0.0.1:{pgb_port}/tocsin", connect_timeout=10,
                         autocommit=True) as conn:
        assert conn.execute("SHOW jit").fetchone()[0] == "off"
    with psycopg.connect(f"postgresql://tocsin:tocsin@127.0.0.1:{pgb_port}/pgbouncer", connect_timeout=10,
                         autocommit=True, cursor_factory=psycopg.ClientCursor) as console:
        config = {row[0]: row[1] for row in console.execute("SHOW CONFIG")}
    assert config["pool_mode"] == "transaction"


def _check_running(pg_port: int, mqtt_port: int) -> None:
    import psycopg

    assert _port_open(pg_port), f"postgres port {pg_port} not accepting connections"
    assert _port_open(mqtt_port), f"mosquitto port {mqtt_port} not accepting connections"
    with psycopg.connect(
        f"postgresql://tocsin:tocsin@127.0.0.1:{pg_port}/tocsin", connect_timeout=10
    ) as conn:
        version = conn.execute("SELECT postgis_version()").fetchone()[0]
    assert version.startswith("3"), version
    assert _mqtt_connack(mqtt_port) == b"\x20\x02\x00\x00"  # CONNACK, accepted


def _wait_closed(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _port_open(port):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def services_env():
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("PostgreSQL server binaries not installed (run scripts/services.sh start once)")
    if not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")):
        pytest.skip("mosquitto not installed (run scripts/services.sh start once)")
    if not shutil.which("mosquitto_pub"):
        pytest.skip("mosquitto-clients not installed")
    if not (shutil.which("pgbouncer") or os.path.exists("/usr/sbin/pgbouncer")):
        pytest.skip("pgbouncer not installed (run scripts/services.sh start once)")

    (REPO / "var").mkdir(exist_ok=True)
    # mkdtemp creates the directory with mode 0700, which also exercises the
    # script's "make parents traversable for the postgres user" step as root.
    var_dir = Path(tempfile.mkdtemp(prefix="test-services-", dir=REPO / "var"))
    pg_port, mqtt_port, pgb_port = _free_ports(3)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TOCSIN_DATABASE_URL", "TOCSIN_MQTT_URL")  # else treated as external
    }
    env.update(
        TOCSIN_VAR_DIR=str(var_dir),
        TOCSIN_PG_PORT=str(pg_port),
        TOCSIN_MQTT_PORT=str(mqtt_port),
        TOCSIN_PGBOUNCER_PORT=str(pgb_port),
    )
    try:
        yield env, var_dir, pg_port, mqtt_port
    finally:
        _run(env, "stop")
        shutil.rmtree(var_dir, ignore_errors=True)


def test_services_script_is_idempotent(services_env):
    env, var_dir, pg_port, mqtt_port = services_env

    first = _run(env, "start")
    assert first.returncode == 0, first.stderr
    assert "initdb" in first.stderr
    # The broker sends each packet at once: with Nagle's algorithm on, every PUBACK of a relay's batch after the
    # first waited for the relay's delayed ACK (scripts/mosquitto.conf.in). The broker started with it.
    assert "set_tcp_nodelay true" in (var_dir / "mosquitto" / "mosquitto.conf").read_text().splitlines()

    second = _run(env, "start")
    assert second.returncode == 0, second.stderr
    assert "initdb" not in second.stderr
    assert "already running" in second.stderr
    _check_running(pg_port, mqtt_port)

    env_out = _run(env, "env")
    assert env_out.returncode == 0, env_out.stderr
    assert (
        f"export TOCSIN_DATABASE_URL=postgresql+psycopg://tocsin:tocsin@127.0.0.1:{pg_port}/tocsin"
        in env_out.stdout
    )
    assert f"export TOCSIN_MQTT_URL=mqtt://127.0.0.1:{mqtt_port}" in env_out.stdout
    pgb_port = int(env["TOCSIN_PGBOUNCER_PORT"])
    pooled = f"postgresql+psycopg://tocsin:tocsin@127.0.0.1:{pgb_port}/tocsin?pooler=transaction"
    sourced = subprocess.run(["bash", "-c", f"source {var_dir / 'services.env'} && echo $TOCSIN_PGBOUNCER_URL"],
                             capture_output=True, text=True, check=True)
    assert sourced.stdout.strip() == pooled
    assert env_out.stdout == (var_dir / "services.env").read_text()
    _check_pooler(pgb_port)

    status = _run(env, "status")
    assert status.returncode == 0
    assert "postgres: running" in status.stdout
    assert "mosquitto: running" in status.stdout
    assert "pgbouncer: running" in status.stdout

    stop = _run(env, "stop")
    assert stop.returncode == 0, stop.stderr
    assert _wait_closed(pg_port), "postgres port still open after stop"
    assert _wait_closed(mqtt_port), "mosquitto port still open after stop"
    assert _wait_closed(pgb_port), "pgbouncer port still open after stop"
    status = _run(env, "status")
    assert status.returncode == 0
    assert "postgres: stopped" in status.stdout
    assert "mosquitto: stopped" in status.stdout
    assert "pgbouncer: stopped" in status.stdout

    # stop is idempotent too
    again = _run(env, "stop")
    assert again.returncode == 0, again.stderr

    third = _run(env, "start")
    assert third.returncode == 0, third.stderr
    assert "initdb" not in third.stderr
    _check_running(pg_port, mqtt_port)
    _check_pooler(pgb_port)

    final = _run(env, "stop")
    assert final.returncode == 0, final.stderr
    assert _wait_closed(pg_port)
    assert _wait_closed(mqtt_port)


def test_services_start_from_a_deep_directory(services_env):
    """A clone's path must not matter: PostgreSQL's Unix socket path has a 107-byte limit, which a
    socket directory under a deep var/ exceeded (`make test` failed from such a clone)."""
    env, var_dir, pg_port, mqtt_port = services_env
    deep = var_dir / ("a-rather-long-directory-name-" * 3) / ("and-another-one-below-it-" * 3) / "var"
    deep.mkdir(parents=True)
    assert len(str(deep / "pg" / "run" / f".s.PGSQL.{pg_port}")) > 107
    env = {**env, "TOCSIN_VAR_DIR": str(deep)}
    try:
        started = _run(env, "start")
        assert started.returncode == 0, started.stderr
        _check_running(pg_port, mqtt_port)
        again = _run(env, "start")  # psql over the socket for the idempotent role/database set-up
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stderr
    finally:
        _run(env, "stop")


def test_ports_are_recorded_and_a_running_cluster_is_never_moved(services_env):
    env, var_dir, pg_port, mqtt_port = services_env
    assert _run(env, "start").returncode == 0
    recorded = (var_dir / "services.env").read_text()
    assert f"export TOCSIN_PG_PORT={pg_port}" in recorded and f"export TOCSIN_MQTT_PORT={mqtt_port}" in recorded
    pgb_port = env["TOCSIN_PGBOUNCER_PORT"]
    assert f"export TOCSIN_PGBOUNCER_PORT={pgb_port}" in recorded
    # Later runs without the ports use the recorded ones.
    bare = {k: v for k, v in env.items() if k not in ("TOCSIN_PG_PORT", "TOCSIN_MQTT_PORT", "TOCSIN_PGBOUNCER_PORT")}
    again = _run(bare, "start")
    assert again.returncode == 0, again.stderr
    assert f"already running on 127.0.0.1:{pg_port}" in again.stderr
    # Another port while it runs: refused, and it keeps running where it was.
    other_pg, other_mqtt, other_pgb = _free_ports(3)
    moved = _run({**env, "TOCSIN_PG_PORT": str(other_pg)}, "start")
    assert moved.returncode != 0 and f"postgres is already running on port {pg_port}" in moved.stderr
    moved = _run({**env, "TOCSIN_MQTT_PORT": str(other_mqtt)}, "start")
    assert moved.returncode != 0 and f"mosquitto is already running on port {mqtt_port}" in moved.stderr
    moved = _run({**env, "TOCSIN_PGBOUNCER_PORT": str(other_pgb)}, "start")
    assert moved.returncode != 0 and f"pgbouncer is already running on port {pgb_port}" in moved.stderr
    _check_running(pg_port, mqtt_port)


def test_a_fresh_state_directory_without_ports_uses_the_defaults(tmp_path):
    """A fresh clone has no var/services.env and no TOCSIN_*_PORT: the script must not stop silently
    (under `set -e`, a failing lookup of the recorded ports once ended it with no message)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env["TOCSIN_VAR_DIR"] = str(tmp_path / "var")
    done = _run(env, "env")
    assert done.returncode == 0, done.stderr
    assert "export TOCSIN_PG_PORT=55439" in done.stdout and "export TOCSIN_MQTT_PORT=18839" in done.stdout
    assert "export TOCSIN_PGBOUNCER_PORT=16439" in done.stdout
    assert "127.0.0.1:55439/tocsin" in done.stdout


def test_pgbouncer_port_zero_means_no_pooler(tmp_path):
    """A private cluster (bench.faults) asks for none: no pooler URL is recorded, status says so."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.update(TOCSIN_VAR_DIR=str(tmp_path / "var"), TOCSIN_PGBOUNCER_PORT="0")
    done = _run(env, "env")
    assert done.returncode == 0, done.stderr
    assert "export TOCSIN_PGBOUNCER_PORT=0" in done.stdout and "TOCSIN_PGBOUNCER_URL" not in done.stdout
    status = _run(env, "status")
    assert status.returncode == 0 and "pgbouncer: not used" in status.stdout
