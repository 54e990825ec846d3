"""Geotag a batch of posts: exactly geo.geotag.geotag's answers, with the geometries of explicit
coordinates and tagged bboxes built by shapely's vectorised constructors.

In shapely 2 a scalar `Point(x, y)` costs about 11 µs and `box(w, s, e, n)` about 25 µs, while
`shapely.points` and `shapely.box` over arrays cost well under 1 µs a geometry. In a batch of posts
that mostly carry coordinates, building those objects one by one was most of the geotagging.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from geo.gazetteer import GazetteerIndex
from geo.geotag import COORDINATE_UNCERTAINTY_M, Geotag, geotag
from geo.geotag_inputs import place_bbox, valid_lonlat

PostWhere = tuple[str, "tuple[float, float] | None", "dict | None"]  # (text, coordinates, place)


def geotag_many(
    posts: Sequence[PostWhere],
    index: GazetteerIndex,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    min_confidence: float = 0.5,
) -> list[Geotag | None]:
    """geotag(text, index, coordinates=..., place=..., ...) for each (text, coordinates, place), in order."""
    out: list[Geotag | None] = [None] * len(posts)
    at_xy: list[int] = []
    xy: list[tuple[float, float]] = []
    at_box: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    for k, (_text, coordinates, place) in enumerate(posts):
        if coordinates is not None and valid_lonlat(*coordinates):
            at_xy.append(k)
            xy.append((float(coordinates[0]), float(coordinates[1])))
        elif place and (wsen := place_bbox(place)) is not None:
            at_box.append(k)
            boxes.append(wsen)
        else:
            text, coordinates, place = posts[k]
            out[k] = geotag(text, index, coordinates=coordinates, place=place, bounds=bounds,
                            min_confidence=min_confidence)
    if xy:
        for k, point in zip(at_xy, shapely.points(np.array(xy, dtype=np.float64)).tolist()):
            out[k] = Geotag(point, COORDINATE_UNCERTAINTY_M, 0.99, "coordinates")
    if boxes:
        w, s, e, n = np.array(boxes, dtype=np.float64).T
        for k, g in zip(at_box, shapely.box(w, s, e, n).tolist()):
            text, _, place = posts[k]
            out[k] = geotag(text, index, place=place, place_geometry=g, bounds=bounds, min_confidence=min_confidence)
    return out
