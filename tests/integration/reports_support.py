"""Helpers shared by the utility report tests: bodies, auth headers, extra zones and utilities."""

import pytest
from shapely.geometry import MultiPolygon, Polygon

# A hand-drawn ZIP area inside district A (-74.00..-73.95, 40.70..40.75), so its answers are known.
ZIP_10001 = [(-73.99, 40.71), (-73.96, 40.71), (-73.96, 40.74), (-73.99, 40.74), (-73.99, 40.71)]


def report(geometry: dict | None = None, **props) -> dict:
    return {
        "type": "Feature",
        "geometry": geometry or {"type": "Point", "coordinates": [-73.975, 40.725]},
        "properties": {"external_id": "X1", "category": "power_outage", **props},
    }


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def square(west: float, south: float, east: float, north: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


def add_utility(session_factory, name: str, *, territory_wkt: str | None = None) -> str:
    """A utility and one key for it; returns the key."""
    from db.session import transaction
    from accounts import keys

    with transaction(session_factory) as session:
        utility = keys.add_utility(session, name=name, territory_wkt=territory_wkt)
        return keys.issue_key(session, role="utility", utility_id=utility.id)


def load_zip_layer(session_factory) -> None:
    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord

    with transaction(session_factory) as session:
        zone_service.upsert_zones(session, layer="zcta", records=[
            ZoneRecord(code="10001", name="10001", geometry=MultiPolygon([Polygon(ZIP_10001)]), properties={})])


@pytest.fixture
def make_client(settings, districts):
    """A TestClient on an app built with some settings changed."""
    from fastapi.testclient import TestClient

    from tocsin.app import create_app

    opened = []

    def make(**overrides) -> TestClient:
        c = TestClient(create_app(settings.model_copy(update=overrides)))
        opened.append(c.__enter__())
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)
