"""Full post pipeline throughput against the raw PostGIS floor, side by side in one run.

Setup (idempotent): a dedicated database `tocsin_bench_pipeline` on the configured server, migrated,
with the five NYC demo zone layers and the demo gazetteer. Then 100,000 synthetic posts whose locations
are known: random points inside NTA polygons, sent as explicit coordinates (60%), as a small tagged place
bbox around the point (25%), or named by neighbourhood in the text (15%). 30% report an incident (they
become signals and feed data/rules.yaml); the rest is everyday chatter, stored and matched to zones.

- Pipeline: `ingest.posts.pipeline.ingest_posts` in batches of 10,000 (the API's limit), each committed:
  classify, geotag, dedup, observations, signals and the rules (data/rules.yaml). Two clients send
  batches at once, as a partner's concurrent requests reach the API's request threads: one batch's
  serial ends (dedup queries, the rules' evaluation, the commit) leave a core idle that the other's
  middle fills. `BENCH_STREAMS=1` sends them one after another (about a fifth slower).
  The per-process caches a running server holds (ingest.posts.warmup, which `tocsin serve` runs as it
  starts) are built first and not timed: this is the steady-state rate of a running server.
- Floor: COPY the same 100,000 points into a temporary table (GiST-indexed and analysed, so the planner
  can drive the join from the zones) and materialise one `ST_Intersects` join against the same zones
  (DESIGN §7's raw COPY-and-join rate). Measured before and after the pipeline; the faster one is used.

`python -m bench.pipeline N` runs with N posts instead of 100,000 (a quick look, not the figure).

Before it, the CPU each phase cost (this process's Python with its post worker process, and every
PostgreSQL process), in seconds per 100,000 posts: `cpu_s_per_100k_posts pipeline: python=
postgres= total=`, and the same for the floor runs. Between runs made side by side, the machine's
noise moves CPU far less than wall time (bench.cpu).

Last line: `posts_per_s=<x> floor_per_s=<y> ratio=<x/y>`.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from bench import cpu

N_POSTS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
BATCH = 10_000
STREAMS = int(os.environ.get("BENCH_STREAMS", "2"))  # concurrent clients sending batches
DB_NAME = "tocsin_bench_pipeline"

CHATTER = [
    "Best coffee I've had in ages, highly recommend the oat latte",
    "Anyone else watching the game tonight? Let's go!!",
    "Running late again, the train is crawling",
    "This pizza is straight fire, no cap",
    "Brunch with the crew, mimosas were flowing",
    "Rain again tomorrow, bring an umbrella",
]
INCIDENTS = [
    "Street flooding here, water up to the car doors",
    "Huge fire, smoke everywhere and trucks on scene",
    "Water main break on the corner, street is flooding",
    "Strong smell of gas in our building, Con Ed on the way",
    "Power outage, whole block is dark",
    "Bad car crash, ambulance just arrived",
    "Basement flooded again after the storm",
    "Transformer exploded, no power since noon",
]


def _setup(factory) -> None:
    """Demo zones and gazetteer, loaded once per database."""
    from sqlalchemy import text

    from db.session import transaction
    from geo import gazetteer_store
    from geo import zone_store as zone_service
    from geo.demo import DEMO_LAYERS, demo_layer_path
    from geo.gazetteer_builders import build_demo_entries
    from geo.zones import read_zone_file

    with transaction(factory) as session:
        have = set(session.execute(text("SELECT name FROM zone_layers")).scalars())
        for layer in DEMO_LAYERS:
            if layer.name not in have:
                records, _ = read_zone_file(demo_layer_path(layer), code_field=layer.code_field,
                                            name_field=layer.name_field, assume_crs="EPSG:4326")
                zone_service.upsert_zones(session, layer=layer.name, records=records, description=layer.description)
        if not gazetteer_store.count_by_source(session):
            gazetteer_store.save_entries(session, entries=build_demo_entries())
        session.execute(text("TRUNCATE observations, signals, observation_zones, alerts, alert_evidence, "
                             "alert_history, outbox_events RESTART IDENTITY CASCADE"))


def _posts(factory, now: datetime) -> tuple[list, list[tuple[float, float]]]:
    """100,000 posts with known points inside NTAs, and those points (lon, lat)."""
    import numpy as np
    import shapely
    from sqlalchemy import text

    from ingest.posts.parse import PostIn

    with factory() as session:
        ntas = session.execute(text(
            "SELECT z.name, ST_AsBinary(z.geom) FROM zones z JOIN zone_layers l ON l.id = z.layer_id "
            "WHERE l.name = 'nta' AND z.properties->>'nta_type' = '0' ORDER BY z.code")).all()
        if not ntas:  # an older package without nta_type: every NTA
            ntas = session.execute(text(
                "SELECT z.name, ST_AsBinary(z.geom) FROM zones z JOIN zone_layers l ON l.id = z.layer_id "
                "WHERE l.name = 'nta' ORDER BY z.code")).all()
    rng = random.Random(11)
    nprng = np.random.default_rng(11)
    geoms = [shapely.from_wkb(bytes(g)) for _, g in ntas]
    posts, points = [], []
    for i in range(N_POSTS):
        k = rng.randrange(len(ntas))
        name, geom = ntas[k][0], geoms[k]
        w, s, e, n = geom.bounds
        while True:
            lon, lat = nprng.uniform(w, e), nprng.uniform(s, n)
            if shapely.contains_xy(geom, lon, lat):
                break
        r = rng.random()
        said = rng.choice(INCIDENTS if rng.random() < 0.3 else CHATTER)
        text_ = f"{said} #{i}"
        fields: dict = {}
        if r < 0.60:
            fields["coordinates"] = (lon, lat)
        elif r < 0.85:
            d = 0.002
            fields["place"] = {"name": "tagged place", "bbox": (lon - d, lat - d, lon + d, lat + d)}
        else:
            base = name.split("(")[0].split("-")[0].strip()
            text_ = f"{said} in {base} #{i}"
        posts.append(PostIn(source="bench", external_id=str(i), author=f"user{rng.randrange(20_000)}", text=text_,
                            created_at=now - timedelta(seconds=rng.uniform(0, 500)), **fields))
        points.append((lon, lat))
    return posts, points


def _floor(engine, points: list[tuple[float, float]]) -> float:
    """Points per second for COPY into a temp table plus one materialised ST_Intersects join."""
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        t0 = time.perf_counter()
        with raw.transaction():
            raw.execute("CREATE TEMP TABLE bench_points (id bigint, geom geometry(Point, 4326)) ON COMMIT DROP")
            with raw.cursor().copy("COPY bench_points (id, geom) FROM STDIN") as copy:
                for i, (lon, lat) in enumerate(points):
                    copy.write_row((i, f"SRID=4326;POINT({lon!r} {lat!r})"))
            raw.execute("CREATE INDEX ON bench_points USING gist (geom)")
            raw.execute("ANALYZE bench_points")
            raw.execute("CREATE TEMP TABLE bench_matches ON COMMIT DROP AS "
                        "SELECT p.id AS point_id, z.id AS zone_id FROM bench_points p "
                        "JOIN zones z ON ST_Intersects(z.geom, p.geom)")
        return len(points) / (time.perf_counter() - t0)


def _warm(factory, state):
    """The per-process caches, built once as `tocsin serve` does in the background as it starts
    (ingest.posts.warmup): the gazetteer index, the zones as matched and the zone weights of the gazetteer's
    outlines. Returns the gazetteer index."""
    from ingest.posts.warmup import warm_post_caches

    t0 = time.perf_counter()
    warm_post_caches(factory, state)
    print(f"caches warmed in {time.perf_counter() - t0:.1f} s (as `tocsin serve` does as it starts; not timed)")
    with factory() as session:
        return state.gazetteer.get(session)


def _pipeline(factory, posts: list, settings, now: datetime, index, streams: int, state
              ) -> tuple[float, dict[str, int]]:
    """Posts per second through `streams` clients, each committing its batches in turn (batch k goes to
    client k mod streams), as a server's request threads take concurrent batch requests."""
    from alerts.rules import load_rules
    from db.session import transaction
    from ingest.posts import pipeline
    from ingest.posts.classify import load_lexicon

    rules, lexicon = load_rules(settings.rules_file), load_lexicon()
    config = pipeline.PipelineConfig.from_settings(settings)
    counts: dict[str, int] = {}
    lock = threading.Lock()
    t0 = time.perf_counter()

    def client(first: int) -> None:
        for start in range(first * BATCH, len(posts), BATCH * streams):
            with transaction(factory) as session:
                results = pipeline.ingest_posts(session, posts=posts[start:start + BATCH], index=index,
                                                lexicon=lexicon, rules=rules, config=config, state=state,
                                                now=now)
            with lock:
                for r in results:
                    counts[r.status] = counts.get(r.status, 0) + 1
                print(f"  batch {start // BATCH + 1}: {time.perf_counter() - t0:.2f} s", flush=True)

    with ThreadPoolExecutor(max_workers=streams) as pool:
        for done in [pool.submit(client, k) for k in range(streams)]:
            done.result()
    return len(posts) / (time.perf_counter() - t0), counts


def main() -> int:
    from sqlalchemy import text

    from bench.db import bench_database
    from db.session import make_engine, make_sessionmaker
    from tocsin import models_registry
    from tocsin.settings import Settings

    settings = Settings()
    models_registry.load()
    url = bench_database(settings.database_url, DB_NAME)
    engine = make_engine(url, pool_size=STREAMS + 1)
    factory = make_sessionmaker(engine)
    _setup(factory)
    now = datetime.now(UTC).replace(microsecond=0)
    posts, points = _posts(factory, now)
    with factory() as session:
        zones = session.execute(text("SELECT count(*) FROM zones")).scalar_one()
    print(f"{len(posts)} posts, {zones} zones in {DB_NAME}", flush=True)
    from ingest.posts.state import PostState

    state = PostState()
    index = _warm(factory, state)
    groups = cpu.Groups({"python": lambda: [os.getpid()], "postgres": "postgres"},
                        trees=["python"]) if cpu.available() else None  # python: with its worker process
    spent = {}

    def measured(name, run):
        if groups:
            groups.start()
        result = run()
        if groups:
            spent[name] = groups.stop()
        return result

    floor_before = measured("floor before", lambda: _floor(engine, points))
    print(f"pipeline: {STREAMS} clients, batches of {BATCH:,}", flush=True)
    posts_per_s, counts = measured("pipeline", lambda: _pipeline(factory, posts, settings, now, index, STREAMS, state))
    floor_after = measured("floor after", lambda: _floor(engine, points))
    floor_per_s = max(floor_before, floor_after)
    with factory() as session:
        n_links, n_signals, n_alerts = session.execute(text(
            "SELECT (SELECT count(*) FROM observation_zones), (SELECT count(*) FROM signals), "
            "(SELECT count(*) FROM alerts)")).one()
    print(f"results {counts}; {n_links} zone links, {n_signals} signals, {n_alerts} alerts")
    print(f"floor before {floor_before:,.0f}/s, after {floor_after:,.0f}/s")
    for name, seconds in spent.items():
        print(cpu.line(f"cpu_s_per_100k_posts {name}:", {g: v * 100_000 / len(posts) for g, v in seconds.items()}))
    state.close()
    engine.dispose()
    print(f"posts_per_s={posts_per_s:.0f} floor_per_s={floor_per_s:.0f} ratio={posts_per_s / floor_per_s:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
