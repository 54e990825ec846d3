"""GeoJSON FeatureCollections on request, for GIS clients (QGIS and the like). No HTTP types: the api
modules say whether the caller asked (`wants_geojson`, from the `f` parameter and the Accept header)."""

from collections.abc import Iterable, Mapping
from typing import Any

MEDIA_TYPE = "application/geo+json"


def wants_geojson(f: str | None, accept: str | None) -> bool:
    """`?f=geojson`, or an Accept header that names application/geo+json."""
    return f == "geojson" or (accept is not None and MEDIA_TYPE in accept)


def feature_collection(items: Iterable[Mapping[str, Any]], *, geometry: str = "geometry",
                       extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Each item as a Feature: its `geometry` member (None when it has none), `id`, and the rest as properties."""
    features = []
    for item in items:
        props = {k: v for k, v in item.items() if k != geometry}
        features.append({"type": "Feature", "id": item.get("id"), "geometry": item.get(geometry),
                         "properties": props})
    return {"type": "FeatureCollection", "features": features, **(extra or {})}
