"""CAP 1.2 (OASIS Common Alerting Protocol): render an alert as XML, parse CAP input safely. Pure.

Versions. Every entry in an alert's history (opened, severity changed, acknowledged, resolved) is
one CAP message version `n`, identified `tocsin-alert-<id>-v<n>`. Version 1 is msgType Alert, later
versions are Update, and the version that resolves the alert is Cancel; Update and Cancel list every
earlier version in `references` as `sender,identifier,sent` triples. `incidents` holds
`tocsin-alert-<id>` so consumers can group all versions.

Mappings (documented here, tested in tests/unit/test_cap.py):

- category: fire->Fire; flood->Met (CAP: "Meteorological (inc. flood)"); water_main->Infra;
  gas_leak->Safety (an accidental leak is a public-safety hazard, not a CBRNE attack);
  power_outage->Infra; collision->Transport; violence->Security; medical->Health;
  structural->Safety; hazmat->CBRNE (chemical release); anything else->Other.
- rule severity -> (urgency, severity): critical->(Immediate, Extreme), major->(Expected, Severe),
  minor->(Expected, Moderate). A resolved alert has urgency Past and responseType AllClear.
- certainty: Observed when any evidence is a utility report (the utility saw it), Likely when the
  evidence is public posts only, Unknown when there is no evidence.
- area: areaDesc is "<zone name> (<layer> <code>)"; each polygon of the zone's (simplified) exterior
  rings becomes one <polygon> of "lat,lon" pairs, closed, 4 to 100 points; plus a geocode
  TOCSIN_ZONE = "<layer>/<code>".
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from xml.etree import ElementTree as ET

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from db.errors import InvalidInput

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
MEDIA_TYPE = "application/cap+xml"
MAX_POLYGON_POINTS = 100
HEADLINE_MAX = 160  # CAP 1.2 §3.2.2: keep headlines short enough for SMS-like channels

CATEGORY = {
    "fire": "Fire", "flood": "Met", "water_main": "Infra", "gas_leak": "Safety", "power_outage": "Infra",
    "collision": "Transport", "violence": "Security", "medical": "Health", "structural": "Safety",
    "hazmat": "CBRNE",
}
URGENCY_SEVERITY = {"critical": ("Immediate", "Extreme"), "major": ("Expected", "Severe"),
                    "minor": ("Expected", "Moderate")}
_FORBIDDEN_IN_ID = (" ", ",", "<", "&")  # CAP 1.2 §3.2.1: identifier and sender


class CapParseError(InvalidInput):
    """CAP input that is not well-formed, not CAP 1.2, or tries DTD/entity tricks."""


@dataclass(frozen=True)
class CapAlert:
    """What a CAP message needs to know about one alert; polygons are exterior rings of (lon, lat)."""

    alert_id: int
    rule: str
    category: str
    severity: str  # minor | major | critical
    state: str  # open | acknowledged | resolved
    evidence_count: int
    distinct_authors: int
    sources: frozenset[str]  # evidence sources: post, utility_report
    opened_at: datetime
    expires_at: datetime | None
    zone_layer: str
    zone_code: str
    zone_name: str
    polygons: tuple[tuple[tuple[float, float], ...], ...]
    versions: tuple[datetime, ...]  # when each version was issued, oldest first; the last is this message
    web: str | None = None


def cap_time(t: datetime) -> str:
    """CAP's dateTime: seconds precision with an explicit offset, e.g. 2026-11-25T21:54:20+00:00."""
    if t.tzinfo is None:
        raise ValueError(f"time {t.isoformat()} has no timezone offset")
    return t.astimezone(UTC).replace(microsecond=0).isoformat()


def identifier(alert_id: int, version: int) -> str:
    return f"tocsin-alert-{alert_id}-v{version}"


def msg_type(alert: CapAlert) -> str:
    if alert.state == "resolved":
        return "Cancel"
    return "Alert" if len(alert.versions) <= 1 else "Update"


def certainty(sources: frozenset[str]) -> str:
    if "utility_report" in sources:
        return "Observed"
    return "Likely" if sources else "Unknown"


def polygon_text(ring: Sequence[tuple[float, float]]) -> str:
    """A CAP polygon ("lat,lon lat,lon ...", closed, 4..100 points) from a ring of (lon, lat)."""
    points = [(round(lat, 6), round(lon, 6)) for lon, lat in ring]
    for lat, lon in points:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"polygon point lon={lon}, lat={lat} is outside WGS 84 bounds")
    if points and points[0] != points[-1]:
        points.append(points[0])
    if len(points) < 4:
        raise ValueError(f"polygon has {len(points)} points; CAP needs at least 4 (closed)")
    if len(points) > MAX_POLYGON_POINTS:
        raise ValueError(f"polygon has {len(points)} points; simplify it to at most {MAX_POLYGON_POINTS}")
    return " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in points)


def _check_sender(sender: str) -> None:
    if not sender or any(c in sender for c in _FORBIDDEN_IN_ID):
        raise ValueError(f"CAP sender {sender!r} must be non-empty without spaces, commas, '<' or '&'")


def _event(category: str) -> str:
    return category.replace("_", " ").capitalize()


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def render_cap(alert: CapAlert, *, sender: str) -> bytes:
    """The alert's latest version as a CAP 1.2 `alert` document (UTF-8, with XML declaration)."""
    _check_sender(sender)
    if not alert.versions:
        raise ValueError(f"alert {alert.alert_id} has no versions to render")
    version = len(alert.versions)
    kind = msg_type(alert)
    resolved = alert.state == "resolved"
    urgency, severity = URGENCY_SEVERITY.get(alert.severity, ("Unknown", "Unknown"))
    if resolved:
        urgency = "Past"
    event = _event(alert.category)

    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", identifier(alert.alert_id, version))
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(alert.versions[-1]))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", kind)
    _sub(root, "scope", "Public")
    if resolved:
        _sub(root, "note", "The alert was resolved.")
    if version > 1:
        _sub(root, "references", " ".join(
            f"{sender},{identifier(alert.alert_id, n)},{cap_time(at)}"
            for n, at in enumerate(alert.versions[:-1], start=1)
        ))
    _sub(root, "incidents", f"tocsin-alert-{alert.alert_id}")

    info = _sub(root, "info")
    _sub(info, "language", "en-US")
    _sub(info, "category", CATEGORY.get(alert.category, "Other"))
    _sub(info, "event", event)
    if resolved:
        _sub(info, "responseType", "AllClear")
    _sub(info, "urgency", urgency)
    _sub(info, "severity", severity)
    _sub(info, "certainty", certainty(alert.sources))
    if alert.expires_at is not None:
        _sub(info, "expires", cap_time(alert.expires_at))
    _sub(info, "senderName", "Tocsin")
    headline = f"{alert.severity.upper()} {event.lower()} in {alert.zone_name} ({alert.zone_code})"
    if resolved:
        headline = f"RESOLVED: {headline}"
    _sub(info, "headline", headline[:HEADLINE_MAX])
    _sub(info, "description", _description(alert))
    if alert.web:
        _sub(info, "web", alert.web)

    area = _sub(info, "area")
    _sub(area, "areaDesc", f"{alert.zone_name} ({alert.zone_layer} {alert.zone_code})")
    for ring in alert.polygons:
        _sub(area, "polygon", polygon_text(ring))
    geocode = _sub(area, "geocode")
    _sub(geocode, "valueName", "TOCSIN_ZONE")
    _sub(geocode, "value", f"{alert.zone_layer}/{alert.zone_code}")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)


def _description(alert: CapAlert) -> str:
    kinds = " and ".join(sorted(s.replace("_", " ") + "s" for s in alert.sources)) or "no current evidence"
    return (
        f"{alert.evidence_count} report(s) from {alert.distinct_authors} distinct source(s) ({kinds}) "
        f"in {alert.zone_name} ({alert.zone_layer} {alert.zone_code}) since {cap_time(alert.opened_at)}. "
        f"State: {alert.state}. Rule: {alert.rule}."
    )


def parse_cap(data: bytes) -> ET.Element:
    """Parse CAP 1.2 XML from outside; DTDs, entities and external references are refused."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise CapParseError(f"CAP input refused: {type(exc).__name__} ({exc})") from exc
    except ET.ParseError as exc:
        raise CapParseError(f"CAP input is not well-formed XML: {exc}") from exc
    if root.tag != f"{{{CAP_NS}}}alert":
        raise CapParseError(f"root element {root.tag!r} is not a CAP 1.2 alert ({{{CAP_NS}}}alert)")
    return root


@lru_cache(maxsize=4)
def _schema(xsd_path: str):
    import xmlschema  # only evaluations and checks need it

    return xmlschema.XMLSchema(xsd_path)


def validate_cap(xml_bytes: bytes, xsd_path: str | Path) -> list[str]:
    """Problems found validating CAP XML against an XSD (e.g. OASIS CAP-v1.2.xsd); empty means valid."""
    try:
        root = parse_cap(xml_bytes)
    except CapParseError as exc:
        return [exc.message]
    return [str(err.reason or err) for err in _schema(str(xsd_path)).iter_errors(root)]
