"""A hand-built gazetteer with known answers against tests/conftest.py's districts.

District A is west, B east (both 40.70-40.75), C across the top (40.75-40.80); P1 surrounds them all.
"""

from shapely.geometry import Point, box

GAZETTEER = [
    ("Alphaville", "neighbourhood", box(-73.99, 40.71, -73.96, 40.74)),   # wholly inside A
    ("Midway", "neighbourhood", box(-73.97, 40.71, -73.94, 40.74)),       # 2/3 in A, 1/3 in B
    ("Betaburg Station", "station", Point(-73.925, 40.725)),              # in B
    ("Cedar Hill", "landmark", Point(-73.95, 40.78)),                     # in C
    ("Greater Borough", "borough", box(-74.02, 40.68, -73.88, 40.82)),    # A, B, C each < 0.5 of it
    # A detailed outline (129 vertices) centred on the A/B border: half in each.
    ("Roundtown", "neighbourhood", Point(-73.95, 40.725).buffer(0.02, quad_segs=32)),
]


def entries(source: str = "test"):
    from geo.gazetteer import GazetteerEntry

    return [GazetteerEntry(name=n, kind=k, geometry=g, source=source, region="US-NY") for n, k, g in GAZETTEER]
