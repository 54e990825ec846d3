"""The site bench.latency and bench.writer stand up: a `grid` layer of COLS x ROWS small cells, one utility with
an API key, and one rule that opens a critical alert on a single gas-leak report (immediate)."""

from bench.latency.load import COLS, ROWS, cell

RULES = """rules:
  - name: bench_gas_leak
    categories: [gas_leak]
    sources: [utility_report]
    layer: grid
    immediate: true
    severity: critical
"""


def setup(url: str) -> str:
    """Migrate, load the grid, create a utility; returns its API key."""
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
    with transaction(make_sessionmaker(engine)) as session:
        zone_service.upsert_zones(session, layer="grid", records=[
            ZoneRecord(code=f"G{i}", name=f"Cell {i}", geometry=MultiPolygon([box(*cell(i))]), properties={})
            for i in range(COLS * ROWS)])
        utility = keys.add_utility(session, name="Bench Power")
        key = keys.issue_key(session, role="utility", utility_id=utility.id)
    engine.dispose()
    return key
