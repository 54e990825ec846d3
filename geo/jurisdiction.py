"""The jurisdiction as checked before anything is stored (pure): a box, and the place's boundary when set.

The box is the fast test (and the whole jurisdiction when no place is set up); the boundary, a prepared
shapely polygon, decides for whatever falls inside the box. EPSG:4326, lon/lat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep


@dataclass(frozen=True)
class Jurisdiction:
    """`bbox` is (west, south, east, north); `boundary` a (Multi)Polygon or None (the box alone)."""

    bbox: tuple[float, float, float, float]
    boundary: BaseGeometry | None = None
    place: str | None = None
    _prepared: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.boundary is not None:
            object.__setattr__(self, "_prepared", prep(self.boundary))

    @classmethod
    def of(cls, value: Jurisdiction | tuple[float, float, float, float]) -> Jurisdiction:
        """A Jurisdiction from itself or from a bare (west, south, east, north) box."""
        return value if isinstance(value, Jurisdiction) else cls(tuple(value))

    def in_box(self, lon: float, lat: float) -> bool:
        w, s, e, n = self.bbox
        return w <= lon <= e and s <= lat <= n

    def covers(self, geom: BaseGeometry) -> bool:
        """The geometry's box lies in the jurisdiction's box and, with a boundary, it touches the boundary
        (an outage polygon straddling the city line is the city's business)."""
        w, s, e, n = geom.bounds
        bw, bs, be, bn = self.bbox
        if not (bw <= w and e <= be and bs <= s and n <= bn):
            return False
        return self._prepared is None or self._prepared.intersects(geom)

    def describe(self) -> str:
        return f"the boundary of place {self.place!r}" if self.place else f"the jurisdiction bounds {list(self.bbox)}"
