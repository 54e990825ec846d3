"""A report's geometry is parsed once: the schema's validation keeps the shapely geometry, and locate.drawn
uses it with the same checks and messages as when it parsed the GeoJSON itself."""

import pytest

from geo.errors import InvalidGeometry
from geo.geojson import parse_geometry
from ingest.reports import locate
from ingest.reports.schemas import ReportCreate, ReportUpdate, parsed_shape

POINT = {"type": "Point", "coordinates": [-73.9196, 40.7644]}
# Self-intersecting, so `repair` changes it: 5 vertices sent, 8 after make_valid (two triangles).
BOWTIE = {"type": "Polygon", "coordinates": [[[-73.95, 40.75], [-73.94, 40.76], [-73.94, 40.75], [-73.95, 40.76],
                                              [-73.95, 40.75]]]}
SQUARE = {"type": "Polygon", "coordinates": [[[-73.95, 40.75], [-73.94, 40.75], [-73.94, 40.76], [-73.95, 40.76],
                                              [-73.95, 40.75]]]}


def _body(geometry: dict) -> ReportCreate:
    return ReportCreate.model_validate({"type": "Feature", "geometry": geometry,
                                        "properties": {"external_id": "G1", "category": "gas_leak"}})


def _unvalidated(geometry: dict) -> ReportCreate:
    body = _body(POINT)
    return ReportCreate.model_construct(type="Feature", geometry=geometry, properties=body.properties)


@pytest.mark.parametrize("geometry", [POINT, SQUARE, BOWTIE])
def test_validation_keeps_the_parsed_geometry_and_the_json_as_sent(geometry):
    body = _body(geometry)
    assert parsed_shape(body.geometry).equals(parse_geometry(geometry))
    assert body.geometry == geometry
    assert body.model_dump(mode="json")["geometry"] == geometry
    assert type(body.model_dump()["geometry"]) is dict
    assert parsed_shape(ReportUpdate.model_validate({"geometry": geometry}).geometry).equals(parse_geometry(geometry))


def test_a_body_not_validated_has_no_parsed_geometry():
    assert parsed_shape(_unvalidated(POINT).geometry) is None
    assert parsed_shape(None) is None


@pytest.mark.parametrize("geometry", [POINT, SQUARE, BOWTIE])
def test_drawn_does_not_parse_a_validated_geometry_again(geometry, monkeypatch):
    body = _body(geometry)

    def parse_again(*args, **kwargs):
        raise AssertionError("parsed twice")

    monkeypatch.setattr(locate, "parse_geometry", parse_again)
    got = locate.drawn(body, max_vertices=100, max_area_km2=100.0)
    assert got.method == "geometry"
    assert (got.repaired is not None) == (geometry is BOWTIE)


@pytest.mark.parametrize("geometry", [POINT, SQUARE, BOWTIE])
def test_drawn_gives_the_same_footprint_validated_or_not(geometry):
    validated = locate.drawn(_body(geometry), max_vertices=100, max_area_km2=100.0)
    parsed = locate.drawn(_unvalidated(geometry), max_vertices=100, max_area_km2=100.0)
    assert validated.geom.equals(parsed.geom) and validated.repaired == parsed.repaired


@pytest.mark.parametrize("geometry, max_vertices", [(SQUARE, 4), (BOWTIE, 4), (BOWTIE, 6)])
def test_the_configured_vertex_limit_counts_the_vertices_as_sent(geometry, max_vertices):
    # BOWTIE at 4: the message names the 5 sent, not the 8 of its repair; at 6 those 5 pass, the 8 do not.
    errors = []
    for body in (_body(geometry), _unvalidated(geometry)):
        with pytest.raises(InvalidGeometry) as caught:
            locate.drawn(body, max_vertices=max_vertices, max_area_km2=100.0)
        errors.append((caught.value.reason, caught.value.value, caught.value.field))
    assert errors[0] == errors[1]
    assert "more than the limit of" in errors[0][0]


@pytest.mark.parametrize("geometry", [POINT, SQUARE, BOWTIE])
def test_a_patch_footprint_is_the_one_its_validation_built(geometry, monkeypatch):
    patch = ReportUpdate.model_validate({"geometry": geometry})
    expected = locate.footprint(dict(geometry), max_vertices=100, max_area_km2=100.0)  # parsed here

    def parse_again(*args, **kwargs):
        raise AssertionError("parsed twice")

    monkeypatch.setattr(locate, "parse_geometry", parse_again)
    geom, repaired = locate.footprint(patch.geometry, max_vertices=100, max_area_km2=100.0)
    assert geom.equals(expected[0]) and repaired == expected[1]
    assert (repaired is not None) == (geometry is BOWTIE)


def test_a_patch_footprint_counts_the_vertices_as_sent():
    patch = ReportUpdate.model_validate({"geometry": BOWTIE})
    with pytest.raises(InvalidGeometry) as caught:
        locate.footprint(patch.geometry, max_vertices=4, max_area_km2=100.0)
    assert "5" in caught.value.reason and "more than the limit of" in caught.value.reason
