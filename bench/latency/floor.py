"""The stack's floor for bench.latency: the least a report -> MQTT path can do on these parts.

What every report must cost whatever Tocsin does with it: a FastAPI request with a JSON body, one
PostgreSQL transaction that finds the report's zone with ST_Intersects and writes one outbox row
(NOTIFY on commit), and a relay that LISTENs, claims the row FOR UPDATE SKIP LOCKED, publishes it at
QoS 1 with paho-mqtt, waits for the PUBACK and marks it published. No keys, rules, alerts, zone
states, validation or history. bench.latency runs it on the same grid, rates and subscriber as the
product, side by side, so the product's figures read as a multiple of what the machine allows.

  python -m bench.latency.floor api PORT     (uvicorn, BENCH_API_WORKERS processes)
  python -m bench.latency.floor relay        (one relay process)

Both read TOCSIN_DATABASE_URL, TOCSIN_MQTT_URL and TOCSIN_MQTT_TOPIC_PREFIX.
"""

import json
import os
import sys
import threading
from typing import Any

import psycopg

from bench.db import admin_url

CHANNEL = "bench_floor"
SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_floor_outbox (
    id bigserial PRIMARY KEY, zone_id integer NOT NULL, payload jsonb NOT NULL, published_at timestamptz);
CREATE INDEX IF NOT EXISTS bench_floor_pending ON bench_floor_outbox (id) WHERE published_at IS NULL;
CREATE OR REPLACE FUNCTION bench_floor_notify() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_notify('bench_floor', ''); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS bench_floor_notify ON bench_floor_outbox;
CREATE TRIGGER bench_floor_notify AFTER INSERT ON bench_floor_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION bench_floor_notify();
"""
_INSERT = """
INSERT INTO bench_floor_outbox (zone_id, payload)
SELECT z.id, %(payload)s FROM zones z
WHERE ST_Intersects(z.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
ORDER BY z.id LIMIT 1
RETURNING id
"""
_CLAIM = ("SELECT id, payload FROM bench_floor_outbox WHERE published_at IS NULL "
          "ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED")


def dsn() -> str:
    return admin_url(os.environ["TOCSIN_DATABASE_URL"])


def create_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)


def app() -> Any:
    """The floor's API: POST /v1/reports with a GeoJSON point Feature -> 201 {"id": ...}."""
    from fastapi import Body, FastAPI, HTTPException
    from fastapi.responses import Response
    from psycopg.types.json import Jsonb

    local = threading.local()
    api = FastAPI()

    @api.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid()}  # bench.http_load.wait_workers tells the workers apart

    @api.post("/v1/reports", status_code=201)
    def create(feature: dict[str, Any] = Body(...)) -> Response:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(dsn())
        lon, lat = feature["geometry"]["coordinates"]
        props = feature["properties"]
        with conn.transaction():
            row = conn.execute(_INSERT, {"payload": Jsonb({"event_id": props["event_id"], "kind": "floor"}),
                                         "lon": lon, "lat": lat}).fetchone()
        if row is None:
            raise HTTPException(422, "no zone there")
        return Response(json.dumps({"id": row[0]}), status_code=201, media_type="application/json")

    from tocsin import heap

    heap.freeze()  # as the product does (tocsin.heap), so the floor stays the least the stack can do
    return api


def relay() -> None:
    """LISTEN, claim, publish at QoS 1, await the PUBACKs, mark published; until SIGTERM."""
    import signal
    from urllib.parse import urlparse

    import paho.mqtt.client as mqtt

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    u = urlparse(os.environ["TOCSIN_MQTT_URL"])
    topic = os.environ["TOCSIN_MQTT_TOPIC_PREFIX"] + "/floor"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-floor-{os.getpid()}",
                         protocol=mqtt.MQTTv5)
    client.connect(u.hostname, u.port or 1883)
    client.loop_start()
    from tocsin import heap

    heap.freeze()
    with psycopg.connect(dsn(), autocommit=True) as listen, psycopg.connect(dsn()) as work:
        listen.execute(f"LISTEN {CHANNEL}")
        while not stop.is_set():
            while True:
                with work.transaction():
                    rows = work.execute(_CLAIM).fetchall()
                    infos = [client.publish(topic, json.dumps(payload), qos=1) for _, payload in rows]
                    for info in infos:
                        info.wait_for_publish(10)
                    if rows:
                        work.execute("UPDATE bench_floor_outbox SET published_at = now() WHERE id = ANY(%s)",
                                     ([r[0] for r in rows],))
                if len(rows) < 200:
                    break
            for _ in listen.notifies(timeout=1.0, stop_after=1):
                pass
    client.disconnect()
    client.loop_stop()


def main(argv: list[str]) -> int:
    if argv[:1] == ["api"]:
        import uvicorn

        uvicorn.run("bench.latency.floor:app", factory=True, host="127.0.0.1", port=int(argv[1]),
                    workers=int(os.environ.get("BENCH_API_WORKERS", "2")), log_level="warning",
                    access_log=False)
        return 0
    if argv[:1] == ["relay"]:
        relay()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
