"""geotag_many answers exactly as geotag does, post by post, whatever mix of inputs a batch holds."""

import math

import pytest

from geo.gazetteer import GazetteerIndex
from geo.geotag import geotag
from geo.geotag_batch import geotag_many
from tests.integration.posts_support import entries

BOUNDS = (-74.3, 40.4, -73.6, 41.0)

POSTS = [
    ("flooding here", (-73.975, 40.725), None),                                   # coordinates
    ("flooding here", (0.0, 0.0), None),                                          # null island: ignored
    ("flooding near Betaburg Station", (float("nan"), 40.7), None),               # invalid, then the text
    ("fire at the corner", None, {"name": "Block", "bbox": [-73.99, 40.72, -73.98, 40.73]}),  # small bbox
    ("fire in Alphaville", None, {"name": "City", "bbox": [-74.1, 40.6, -73.8, 40.9]}),       # large bbox, text
    ("fire somewhere", None, {"name": "City", "bounding_box": [-74.1, 40.6, -73.8, 40.9]}),   # large bbox only
    ("smoke at Cedar Hill", None, {"name": "Bad", "bbox": [-73.9, 40.8, -74.0, 40.7]}),       # west > east
    ("smoke", None, {"name": "Midway"}),                                          # a place known by name
    ("smoke", None, {"name": "Poly", "geometry": {"type": "Polygon", "coordinates": [
        [[-73.99, 40.71], [-73.97, 40.71], [-73.97, 40.73], [-73.99, 40.71]]]}}),  # an outline
    ("gas smell near Roundtown", None, None),                                     # text only
    ("nothing to see", None, None),                                               # nowhere
    ("", (-73.925, 40.775), {"name": "Block", "bbox": [-73.99, 40.72, -73.98, 40.73]}),  # coordinates win
]


@pytest.fixture(scope="module")
def index():
    return GazetteerIndex(entries(), context_regions={})


def same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (a.geometry.equals_exact(b.geometry, 0.0) and a.geometry.geom_type == b.geometry.geom_type
            and math.isclose(a.uncertainty_m, b.uncertainty_m) and math.isclose(a.confidence, b.confidence)
            and (a.method, a.span, a.matched, a.kind) == (b.method, b.span, b.matched, b.kind))


def test_same_answers_as_one_by_one(index):
    one = [geotag(t, index, coordinates=c, place=p, bounds=BOUNDS) for t, c, p in POSTS]
    many = geotag_many(POSTS, index, bounds=BOUNDS)
    assert len(many) == len(POSTS)
    assert [same(a, b) for a, b in zip(one, many)] == [True] * len(POSTS)
    # The fixture exercises every path: coordinates, a bbox place, text and nothing at all.
    assert {t.method for t in one if t is not None} == {"coordinates", "place", "text"}
    assert one[1] is None and one[-2] is None and one[0].method == "coordinates"


def test_empty_batch(index):
    assert geotag_many([], index) == []
