"""A zone layer `grid` of square cells over New York, for the benchmarks that need many zones."""

from __future__ import annotations


def grid_zones(factory, *, cols: int, rows: int, bbox: tuple[float, float, float, float]) -> list:
    """cols x rows square zones over bbox (west, south, east, north); returns their ZoneMatch (weight 1) in
    row-major order."""
    from shapely.geometry import MultiPolygon, box
    from sqlalchemy import text

    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.match_postgis import ZoneMatch
    from geo.zones import ZoneRecord

    west, south, east, north = bbox
    dx, dy = (east - west) / cols, (north - south) / rows
    records = [ZoneRecord(code=f"G{r:02d}{c:02d}", name=f"Grid {r},{c}", properties={},
                          geometry=MultiPolygon([box(west + c * dx, south + r * dy, west + (c + 1) * dx,
                                                     south + (r + 1) * dy)]))
               for r in range(rows) for c in range(cols)]
    with transaction(factory) as s:
        zone_service.upsert_zones(s, layer="grid", records=records)
    with factory() as s:
        found = s.execute(text("SELECT z.id, z.code, z.name FROM zones z ORDER BY z.code")).all()
    return [ZoneMatch(zid, "grid", code, name, 1.0) for zid, code, name in found]
