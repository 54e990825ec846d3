"""CAP 1.2 rendering and safe parsing: structure, order, formats, mappings, polygons. No XSD needed."""

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from xml.etree import ElementTree as ET

import pytest

from alerts.cap import (
    CAP_NS,
    CapAlert,
    CapParseError,
    cap_time,
    parse_cap,
    polygon_text,
    render_cap,
    validate_cap,
)

NS = {"cap": CAP_NS}
T0 = datetime(2026, 11, 25, 21, 0, 5, 123456, tzinfo=UTC)
SQUARE = ((-74.00, 40.70), (-73.95, 40.70), (-73.95, 40.75), (-74.00, 40.75), (-74.00, 40.70))
SENDER = "tocsin@example.org"

# The CAP 1.2 XSD's sequences, restricted to what Tocsin emits (the XSD is authoritative; this
# copy of the order is what the structure tests hold the renderer to).
ALERT_ORDER = ["identifier", "sender", "sent", "status", "msgType", "source", "scope", "restriction",
               "addresses", "code", "note", "references", "incidents", "info"]
INFO_ORDER = ["language", "category", "event", "responseType", "urgency", "severity", "certainty", "audience",
              "eventCode", "effective", "onset", "expires", "senderName", "headline", "description",
              "instruction", "web", "contact", "parameter", "resource", "area"]
AREA_ORDER = ["areaDesc", "polygon", "circle", "geocode", "altitude", "ceiling"]
CAP_TIME = re.compile(r"^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")


def sample(**changes) -> CapAlert:
    base = dict(
        alert_id=42, rule="gas_leak_report", category="gas_leak", severity="critical", state="open",
        evidence_count=3, distinct_authors=2, sources=frozenset({"utility_report"}), opened_at=T0,
        expires_at=T0 + timedelta(hours=6), zone_layer="district", zone_code="A", zone_name="District A",
        polygons=(SQUARE,), versions=(T0,), web="http://tocsin.test/a/42",
    )
    base.update(changes)
    return CapAlert(**base)


def render(**changes) -> ET.Element:
    return ET.fromstring(render_cap(sample(**changes), sender=SENDER))


def local(el: ET.Element) -> list[str]:
    return [child.tag.split("}", 1)[1] for child in el]


def assert_in_order(tags: list[str], order: list[str]) -> None:
    assert all(t in order for t in tags), tags
    positions = [order.index(t) for t in tags]
    assert positions == sorted(positions), tags


def text(root: ET.Element, path: str) -> str | None:
    el = root.find(path, NS)
    return None if el is None else el.text


def test_first_version_is_an_alert_with_required_elements_in_schema_order():
    root = render()
    assert root.tag == f"{{{CAP_NS}}}alert"
    tags = local(root)
    assert tags[:5] == ["identifier", "sender", "sent", "status", "msgType"]
    assert_in_order(tags, ALERT_ORDER)
    assert text(root, "cap:identifier") == "tocsin-alert-42-v1"
    assert text(root, "cap:sender") == SENDER
    assert text(root, "cap:sent") == "2026-11-25T21:00:05+00:00"
    assert text(root, "cap:status") == "Actual"
    assert text(root, "cap:msgType") == "Alert"
    assert text(root, "cap:scope") == "Public"
    assert root.find("cap:references", NS) is None
    assert text(root, "cap:incidents") == "tocsin-alert-42"


def test_info_and_area_follow_schema_order():
    info = render().find("cap:info", NS)
    assert_in_order(local(info), INFO_ORDER)
    for required in ("category", "event", "urgency", "severity", "certainty"):
        assert required in local(info)
    area = info.find("cap:area", NS)
    assert_in_order(local(area), AREA_ORDER)
    assert text(area, "cap:areaDesc") == "District A (district A)"
    assert text(area, "cap:geocode/cap:value") == "district/A"


def test_info_content():
    info = render().find("cap:info", NS)
    assert text(info, "cap:language") == "en-US"
    assert text(info, "cap:event") == "Gas leak"
    assert text(info, "cap:expires") == "2026-11-26T03:00:05+00:00"
    assert text(info, "cap:headline") == "CRITICAL gas leak in District A (A)"
    assert "3 report(s) from 2 distinct source(s)" in text(info, "cap:description")
    assert text(info, "cap:web") == "http://tocsin.test/a/42"


def test_later_versions_are_updates_referencing_every_earlier_version():
    versions = (T0, T0 + timedelta(minutes=2), T0 + timedelta(minutes=9, seconds=30))
    root = render(state="acknowledged", versions=versions)
    assert text(root, "cap:msgType") == "Update"
    assert text(root, "cap:identifier") == "tocsin-alert-42-v3"
    assert text(root, "cap:sent") == "2026-11-25T21:09:35+00:00"
    assert text(root, "cap:references").split(" ") == [
        f"{SENDER},tocsin-alert-42-v1,2026-11-25T21:00:05+00:00",
        f"{SENDER},tocsin-alert-42-v2,2026-11-25T21:02:05+00:00",
    ]


def test_resolved_alert_is_a_cancel_with_all_clear():
    root = render(state="resolved", versions=(T0, T0 + timedelta(hours=1)))
    assert text(root, "cap:msgType") == "Cancel"
    assert text(root, "cap:references") == f"{SENDER},tocsin-alert-42-v1,2026-11-25T21:00:05+00:00"
    info = root.find("cap:info", NS)
    assert text(info, "cap:responseType") == "AllClear"
    assert text(info, "cap:urgency") == "Past"
    assert text(info, "cap:headline").startswith("RESOLVED: ")


def test_identifier_is_stable_for_the_same_version():
    a = render_cap(sample(versions=(T0, T0 + timedelta(minutes=1))), sender=SENDER)
    b = render_cap(sample(versions=(T0, T0 + timedelta(minutes=1))), sender=SENDER)
    assert a == b


@pytest.mark.parametrize("category, cap_category", [
    ("fire", "Fire"), ("flood", "Met"), ("water_main", "Infra"), ("gas_leak", "Safety"),
    ("power_outage", "Infra"), ("collision", "Transport"), ("violence", "Security"), ("medical", "Health"),
    ("structural", "Safety"), ("hazmat", "CBRNE"), ("something_new", "Other"),
])
def test_category_mapping(category, cap_category):
    assert text(render(category=category), "cap:info/cap:category") == cap_category


@pytest.mark.parametrize("severity, urgency, cap_severity", [
    ("critical", "Immediate", "Extreme"), ("major", "Expected", "Severe"), ("minor", "Expected", "Moderate"),
])
def test_severity_mapping(severity, urgency, cap_severity):
    info = render(severity=severity).find("cap:info", NS)
    assert (text(info, "cap:urgency"), text(info, "cap:severity")) == (urgency, cap_severity)


@pytest.mark.parametrize("sources, expected", [
    ({"utility_report"}, "Observed"), ({"post", "utility_report"}, "Observed"), ({"post"}, "Likely"),
    (set(), "Unknown"),
])
def test_certainty_from_evidence_sources(sources, expected):
    assert text(render(sources=frozenset(sources)), "cap:info/cap:certainty") == expected


def test_times_have_offset_and_no_fraction():
    eastern = timezone(timedelta(hours=-5))
    assert cap_time(datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=eastern)) == "2026-01-02T08:04:05+00:00"
    root = render(versions=(T0,))
    for path in ("cap:sent", "cap:info/cap:expires"):
        assert CAP_TIME.match(text(root, path)), text(root, path)
    with pytest.raises(ValueError, match="no timezone offset"):
        cap_time(datetime(2026, 1, 2, 3, 4, 5))


def test_polygon_is_lat_lon_closed():
    points = polygon_text(SQUARE).split(" ")
    assert points[0] == "40.700000,-74.000000"  # latitude first
    assert points[0] == points[-1] and len(points) == 5


def test_unclosed_ring_is_closed():
    points = polygon_text(SQUARE[:-1]).split(" ")
    assert len(points) == 5 and points[0] == points[-1]


@pytest.mark.parametrize("ring, message", [
    (((-74.0, 40.7), (-73.9, 40.7)), "at least 4"),
    (tuple((-74.0 + i * 1e-3, 40.7 + (i % 2) * 1e-3) for i in range(101)), "at most 100"),
    (((-74.0, 95.0), (-73.9, 40.7), (-73.9, 40.8), (-74.0, 95.0)), "outside WGS 84"),
])
def test_bad_polygons_are_refused(ring, message):
    with pytest.raises(ValueError, match=message):
        polygon_text(ring)


def test_hundred_points_is_allowed():
    ring = [(-74.0 + 0.01 * math.cos(k), 40.7 + 0.01 * math.sin(k)) for k in range(99)]
    points = polygon_text(ring).split(" ")
    assert len(points) == 100 and points[0] == points[-1]


def test_multipolygon_gives_one_polygon_element_per_part():
    other = ((-73.90, 40.70), (-73.85, 40.70), (-73.85, 40.75), (-73.90, 40.70))
    polygons = render(polygons=(SQUARE, other)).findall("cap:info/cap:area/cap:polygon", NS)
    assert len(polygons) == 2
    for p in polygons:
        pts = p.text.split(" ")
        assert pts[0] == pts[-1] and 4 <= len(pts) <= 100


@pytest.mark.parametrize("sender", ["tocsin localhost", "a,b", "a<b", "a&b", ""])
def test_sender_with_forbidden_characters_is_refused(sender):
    with pytest.raises(ValueError, match="sender"):
        render_cap(sample(), sender=sender)


# --- safe parsing ---

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [ <!ENTITY leak SYSTEM "file:///etc/hostname"> ]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&leak;</identifier></alert>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE alert [ <!ENTITY a "aaaaaaaaaa"> <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"> ]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&b;</identifier></alert>"""


@pytest.mark.parametrize("payload", [XXE, LAUGHS])
def test_parser_refuses_dtds_and_entities(payload):
    with pytest.raises(CapParseError, match="refused"):
        parse_cap(payload)


def test_parser_refuses_non_cap_and_malformed_input():
    with pytest.raises(CapParseError, match="not a CAP 1.2 alert"):
        parse_cap(b"<alert><identifier>x</identifier></alert>")
    with pytest.raises(CapParseError, match="not well-formed"):
        parse_cap(b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'>")


def test_parser_round_trips_rendered_cap():
    root = parse_cap(render_cap(sample(), sender=SENDER))
    assert text(root, "cap:identifier") == "tocsin-alert-42-v1"


# A tiny hand-written schema, so validate_cap is tested without the OASIS file.
TINY_XSD = """<?xml version="1.0"?>
<schema xmlns="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:oasis:names:tc:emergency:cap:1.2"
        elementFormDefault="qualified">
  <element name="alert"><complexType><sequence>
    <element name="identifier" type="string"/>
  </sequence></complexType></element>
</schema>"""


def test_validate_cap_reports_schema_problems(tmp_path):
    xsd = tmp_path / "tiny.xsd"
    xsd.write_text(TINY_XSD)
    good = b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>x</identifier></alert>"
    bad = b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><sender>x</sender></alert>"
    assert validate_cap(good, xsd) == []
    assert validate_cap(bad, xsd) != []
    assert "refused" in validate_cap(XXE, xsd)[0]
