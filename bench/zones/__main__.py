"""Big zone layers: load time and matching cost at 100, 10,000 and 100,000 zones.

Each size is a synthetic layer of irregular cells (the Voronoi cells of random points over New York, as
census blocks or a utility's feeder areas look), loaded with geo.zone_store.upsert_zones into a fresh
database (`tocsin_bench_zones`, migrated) exactly as `tocsin zones load` does. Then, on that layer:
- pg_us_per_point: geo.match_postgis.match_zones (PostGIS) for 300 random points, per point;
- mem_us_per_point: geo.match_memory.weights (in memory) for 20,000 random points in one batch, per point;
- check_us: geo.match_memory.zone_set on a warm cache, the check every batch of posts makes that its copy
  of the zones is current (it must cost the same at any size).
One line per size: `zones= load_s= pg_us_per_point= mem_us_per_point= check_us=`. BENCH_ZONE_SIZES
overrides the sizes (comma-separated). Goal: 100,000 zones load in under a minute.
"""

import os
import random
import sys
import time

BOX = (-74.05, 40.55, -73.75, 40.90)


def cells(n: int, seed: int = 1):
    import numpy as np
    import shapely
    from shapely.geometry import MultiPoint, MultiPolygon, box

    from geo.zones import ZoneRecord

    rng = np.random.default_rng(seed)
    w, s, e, north = BOX
    pts = MultiPoint(np.column_stack([rng.uniform(w, e, n), rng.uniform(s, north, n)]))
    frame = box(w, s, e, north)
    polys = shapely.intersection(np.array(shapely.voronoi_polygons(pts, extend_to=frame).geoms), frame)
    out = []
    for i, p in enumerate(polys):
        if p.is_empty or p.geom_type != "Polygon":
            continue
        out.append(ZoneRecord(code=f"V{i}", name=f"Cell {i}", geometry=MultiPolygon([p]), properties={}))
    return out


def run_size(factory, n: int) -> str:
    import numpy as np
    import shapely

    from db.session import transaction
    from geo import zone_store as service, match_memory as zone_match
    from geo.match_postgis import match_zones
    from sqlalchemy import text

    records = cells(n)
    with transaction(factory) as session:
        session.execute(text("TRUNCATE zones, zone_layers RESTART IDENTITY CASCADE"))
    t0 = time.perf_counter()
    with transaction(factory) as session:
        service.upsert_zones(session, layer=f"cells_{n}", records=records)
    load_s = time.perf_counter() - t0
    rng = random.Random(2)
    w, s, e, north = BOX
    points = [shapely.Point(rng.uniform(w, e), rng.uniform(s, north)) for _ in range(300)]
    with factory() as session:
        match_zones(session, geometry=points[0])  # warm
        t0 = time.perf_counter()
        for p in points:
            match_zones(session, geometry=p)
        pg_us = (time.perf_counter() - t0) / len(points) * 1e6
        sets = zone_match.ZoneSets()
        zs = sets.get(session)
        many = shapely.points(np.column_stack([np.random.default_rng(3).uniform(w, e, 20_000),
                                               np.random.default_rng(4).uniform(s, north, 20_000)]))
        zone_match.weights(zs, many[:100])  # warm
        t0 = time.perf_counter()
        zone_match.weights(zs, many)
        mem_us = (time.perf_counter() - t0) / len(many) * 1e6
        t0 = time.perf_counter()
        for _ in range(50):
            sets.get(session)
        check_us = (time.perf_counter() - t0) / 50 * 1e6
    return (f"zones={len(records)} load_s={load_s:.1f} pg_us_per_point={pg_us:.0f} mem_us_per_point={mem_us:.1f} "
            f"check_us={check_us:.0f}")


def main() -> int:
    from bench.db import bench_database
    from db.session import make_engine, make_sessionmaker
    from tocsin import models_registry
    from tocsin.settings import Settings

    sizes = [int(x) for x in os.environ.get("BENCH_ZONE_SIZES", "100,10000,100000").split(",")]
    models_registry.load()
    url = bench_database(Settings().database_url, "tocsin_bench_zones", fresh=True)
    engine = make_engine(url, pool_size=1)
    factory = make_sessionmaker(engine)
    try:
        for n in sizes:
            print(run_size(factory, n), flush=True)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
