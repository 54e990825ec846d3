"""Open311 parameters -> report bodies and list filters: pure mapping, from tables of cases."""

from datetime import UTC, datetime, timedelta

import pytest

from db.errors import InvalidInput
from ingest.reports.open311 import MAX_SPAN, parse_filter, to_report

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_lat_long_become_a_point_lon_first():
    body = to_report({"service_code": "gas_leak", "lat": "40.725", "long": "-73.975", "description": "odor"})
    assert body.geometry == {"type": "Point", "coordinates": [-73.975, 40.725]}
    p = body.properties
    assert (p.category, p.description, p.status) == ("gas_leak", "odor", "reported")
    assert p.external_id.startswith("o311-") and len(p.external_id) == 5 + 24


def test_derived_id_is_the_same_for_form_strings_and_json_numbers():
    form = to_report({"service_code": "gas_leak", "lat": "40.725", "long": "-73.975"})
    as_json = to_report({"service_code": "gas_leak", "lat": 40.725, "long": -73.975})
    assert form.properties.external_id == as_json.properties.external_id
    other = to_report({"service_code": "gas_leak", "lat": 40.725, "long": -73.975, "description": "x"})
    assert other.properties.external_id != form.properties.external_id


def test_client_id_is_the_external_id_and_empty_parameters_are_absent():
    body = to_report({"service_code": "other", "lat": "40.7", "long": "-73.9", "service_request_id": "ABC-1",
                      "description": "", "address_string": "  "})
    assert body.properties.external_id == "ABC-1"
    assert body.properties.description is None and body.properties.address is None


@pytest.mark.parametrize("address, zip_code", [
    ("31st St and Ditmars Blvd, Astoria, NY 11105", "11105"),
    ("12345 Some Ave, New York, NY 10001-1234", "10001"),  # a 5-digit house number is not the ZIP
    ("Main St, 10001, USA", "10001"),
    ("Main St, New York", None),
])
def test_address_string_yields_its_last_zip(address, zip_code):
    body = to_report({"service_code": "power_outage", "address_string": address})
    assert body.geometry is None
    assert body.properties.address == address and body.properties.zip == zip_code


@pytest.mark.parametrize("params, needles", [
    ({"service_code": "volcano", "lat": "1", "long": "1"}, ["service_code 'volcano' is not one of"]),
    ({"lat": "1", "long": "1"}, ["service_code was not provided"]),
    ({"service_code": "gas_leak", "lat": "91", "long": "1"}, ["lat 91 is outside [-90, 90]"]),
    ({"service_code": "gas_leak", "lat": "nan", "long": "1"}, ["lat nan is outside"]),
    ({"service_code": "gas_leak", "lat": True, "long": "1"}, ["lat must be a number, got True"]),
    ({"service_code": "gas_leak", "long": "1"}, ["lat is missing"]),
    ({"service_code": "gas_leak"}, ["no location"]),
    ({"service_code": "gas_leak", "lat": "1", "long": "1", "description": ["a"]}, ["description must be a single"]),
    ({"service_code": "x", "lat": "100", "long": "200"}, ["service_code 'x'", "lat 100", "long 200"]),
])
def test_bad_parameters_name_the_value(params, needles):
    with pytest.raises(InvalidInput) as info:
        to_report(params)
    errors = info.value.details["errors"]
    for needle in needles:
        assert any(needle in e for e in errors), errors


def test_filter_defaults_to_the_last_90_days():
    where = parse_filter({}, now=NOW)
    assert (where.start, where.end) == (NOW - MAX_SPAN, NOW)


@pytest.mark.parametrize("params, start, end", [
    ({"start_date": "2026-01-01T00:00:00Z"}, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
    ({"end_date": "2026-04-01T00:00:00Z"}, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
    # '+' in an unencoded query string arrives as a space.
    ({"start_date": "2026-01-01T05:00:00 05:00"}, datetime(2026, 1, 1, tzinfo=UTC),
     datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=90)),
    ({"start_date": "2026-01-01T00:00:00-05:00"}, datetime(2026, 1, 1, 5, tzinfo=UTC),
     datetime(2026, 1, 1, 5, tzinfo=UTC) + timedelta(days=90)),
])
def test_filter_dates(params, start, end):
    where = parse_filter(params, now=NOW)
    assert (where.start, where.end) == (start, end)


def test_service_request_id_overrides_the_other_filters():
    where = parse_filter({"service_request_id": "A, B,,C", "status": "bogus"}, now=NOW)
    assert where.ids == ("A", "B", "C") and where.statuses == () and where.start is None
