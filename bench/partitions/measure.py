"""What bench.partitions times, the same way on the empty and on the full database, in turn.

- `report_latencies`: POST /v1/reports to a real API (`uvicorn` serving the app, one worker, a subprocess),
  one at a time (closed loop), timed by the client from send to answer: auth, validation, the observation,
  zone matching in every layer, the default rules, any alert and outbox event, commit. Points scattered over
  New York; every 20th a gas leak (critical at once), the rest outages, most of them large (an alert).
- `evaluation_latencies`: alerts.service.observe of one post signal in one `nta` zone, in a transaction of
  its own with its commit, as bench.rules times it; signals from 50 authors in 40 zones, so windows fill and
  alerts open and grow.
Both take their `now` from the clock, use external ids of their own run, and leave a warm-up out. Both go
to the databases in turn, one request or evaluation to each (alternating which goes first), so the load of
whatever else runs on the machine falls on both alike.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime

from bench.db import admin_url
from bench.http_load import serve

NYC = (-74.02, 40.60, -73.78, 40.85)  # mostly land: Manhattan, Brooklyn, Queens, the Bronx
POST_CATEGORIES = ("flood", "fire", "collision", "power_outage", "gas_leak", "water_main", "violence", "medical",
                   "structural", "hazmat")


def setup(url: str) -> tuple[str, int]:
    """The five New York demo zone layers, a utility and its key; returns (key, utility id)."""
    import psycopg

    from accounts import keys
    from db.session import make_engine, make_sessionmaker, transaction
    from geo import zone_store
    from geo.demo import DEMO_LAYERS, demo_layer_path
    from geo.zones import read_zone_file
    from tocsin import models_registry

    models_registry.load()
    engine = make_engine(url, pool_size=1)
    with transaction(make_sessionmaker(engine)) as session:
        for layer in DEMO_LAYERS:
            records, _ = read_zone_file(demo_layer_path(layer), code_field=layer.code_field,
                                        name_field=layer.name_field, assume_crs="EPSG:4326")
            zone_store.upsert_zones(session, layer=layer.name, records=records, description=layer.description)
        utility = keys.add_utility(session, name="Bench Power")
        key = keys.issue_key(session, role="utility", utility_id=utility.id)
        utility_id = utility.id
    engine.dispose()
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return key, utility_id


def copy(base_url: str, source: str, name: str) -> str:
    """Database `name`, a copy of database `source` (which nobody may be connected to); returns its URL."""
    import psycopg

    from bench.db import admin_url

    with psycopg.connect(admin_url(base_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return base_url.rsplit("/", 1)[0] + f"/{name}"


def _analyze(url: str) -> None:
    """Statistics for what the warm-up wrote, as a running server's database has them (see bench.latency)."""
    import psycopg

    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE")


def _feature(run: str, n: int, rng: random.Random) -> dict:
    west, south, east, north = NYC
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(rng.uniform(west, east), 6),
                                                      round(rng.uniform(south, north), 6)]},
        "properties": {"external_id": f"{run}-{n}", "category": "gas_leak" if n % 20 == 0 else "power_outage",
                       "customers_affected": rng.randint(1, 5000), "cause": "bench"},
    }


async def _post_all(bases: Sequence[str], key: str, urls: Sequence[str], *, run: str, warmup: int,
                    n: int) -> list[list[float]]:
    """The same reports to every server in turn (the first server first, then the second first, and so on),
    so what else the machine does falls on all of them alike; milliseconds per server."""
    from bench.http_load import Pool

    clients = [Pool(base, size=1, headers={"Authorization": f"Bearer {key}"}) for base in bases]
    rng = random.Random(20)  # the same points, in the same order, on every database
    out: list[list[float]] = [[] for _ in bases]
    try:
        for i in range(warmup + n):
            if i == warmup:
                for url in urls:
                    await asyncio.to_thread(_analyze, url)
            feature = _feature(run, i, rng)
            order = range(len(bases)) if i % 2 == 0 else reversed(range(len(bases)))
            for k in order:
                began = time.perf_counter()
                r = await clients[k].post("/v1/reports", json=feature)
                elapsed = time.perf_counter() - began
                if r.status_code != 201:
                    raise RuntimeError(f"POST /v1/reports answered {r.status_code}: {r.text[:300]}")
                if i >= warmup:
                    out[k].append(elapsed * 1000)
    finally:
        for client in clients:
            await client.aclose()
    return out


def report_latencies(urls: Sequence[str], key: str, *, run: str, n: int, warmup: int = 50) -> list[list[float]]:
    """Milliseconds per POST /v1/reports on each database (a fresh server each), `n` after `warmup`, one at a
    time, alternating between the databases."""
    common = {**os.environ, "TOCSIN_RATE_LIMIT_PER_MIN": "0", "TOCSIN_LOG_LEVEL": "WARNING",
              "TOCSIN_WARM_POST_CACHES": "false"}
    with ExitStack() as servers:
        bases = []
        for url in urls:
            base, _ = servers.enter_context(serve("bench.reports.server:app", env={**common, "TOCSIN_DATABASE_URL": url},
                                                  workers=1))
            bases.append(base)
        return asyncio.run(_post_all(bases, key, urls, run=run, warmup=warmup, n=n))


_OBSERVATIONS = """
    INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at,
        received_at, geom, uncertainty_m, geotag_method)
    SELECT 'post', :run || '-' || t.n, t.author, 'bench', t.cat, 0.9, :now, :now,
           ST_PointOnSurface(z.geom), 25, 'coordinates'
    FROM unnest(CAST(:zone AS int[]), CAST(:cat AS text[]), CAST(:author AS text[])) WITH ORDINALITY
         AS t(zone_id, cat, author, n)
    JOIN zones z ON z.id = t.zone_id ORDER BY t.n RETURNING id
"""


def evaluation_latencies(urls: Sequence[str], rules: Sequence, *, run: str, n: int,
                         warmup: int = 20) -> list[list[float]]:
    """Milliseconds per alerts.service.observe of one signal, committed alone, on each database, `n` after
    `warmup`, the same signal on each in turn (alternating which goes first)."""
    from sqlalchemy import text

    from alerts import service as alert_service
    from db.session import make_engine, make_sessionmaker
    from geo.match_postgis import ZoneMatch
    from tocsin import models_registry

    models_registry.load()
    engines = [make_engine(url, pool_size=1) for url in urls]
    factories = [make_sessionmaker(engine) for engine in engines]
    rng = random.Random(21)
    total = warmup + n
    with factories[0]() as s:  # the databases share their zones (one is a copy of the other)
        zones = [ZoneMatch(zid, "nta", code, name, 1.0) for zid, code, name in s.execute(text(
            "SELECT z.id, z.code, z.name FROM zones z JOIN zone_layers l ON l.id = z.layer_id "
            "WHERE l.name = 'nta' ORDER BY z.code")).all()]
    zones = zones[::max(1, len(zones) // 40)][:40]
    picks = [(rng.randrange(len(zones)), rng.choice(POST_CATEGORIES), f"bench-author-{rng.randrange(50)}")
             for _ in range(total)]
    ids = []
    for factory in factories:
        with factory() as s, s.begin():
            ids.append(s.execute(text(_OBSERVATIONS), {
                "run": f"eval-{run}", "now": datetime.now(UTC), "zone": [zones[z].zone_id for z, _, _ in picks],
                "cat": [c for _, c, _ in picks], "author": [a for _, _, a in picks]}).scalars().all())
    out: list[list[float]] = [[] for _ in urls]
    for i, (z, category, author) in enumerate(picks):
        order = range(len(urls)) if i % 2 == 0 else reversed(range(len(urls)))
        for k in order:
            now = datetime.now(UTC)
            signal = alert_service.SignalIn(observation_id=ids[k][i], source="post", category=category,
                                            confidence=0.9, author_key=author, observed_at=now, zones=[zones[z]])
            began = time.perf_counter()
            with factories[k]() as s, s.begin():
                alert_service.observe(s, signal=signal, rules=rules, now=now)
            if i >= warmup:
                out[k].append((time.perf_counter() - began) * 1000)
    for engine in engines:
        engine.dispose()
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]
