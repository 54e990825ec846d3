"""The scenario the SMS benchmarks share: one zone, its responders, one alert waiting to be fanned out."""

from datetime import datetime, timedelta

from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import text


def one_alert_with_responders(factory, now: datetime, *, recipients: int) -> None:
    """One district zone, `recipients` responders covering it, and one open critical alert whose
    "opened" event waits in the outbox: the SMS fan-out's work for bench.sms_fanout and bench.faults."""
    from alerts import ackcodes, outbox
    from alerts.events import EventKind
    from alerts.models import Alert
    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord

    square = Polygon([(-74.0, 40.7), (-73.95, 40.7), (-73.95, 40.75), (-74.0, 40.75)])
    with transaction(factory) as session:
        zone_service.upsert_zones(session, layer="district", records=[
            ZoneRecord(code="A", name="District A", geometry=MultiPolygon([square]), properties={})])
        zone_id = session.execute(text("SELECT id FROM zones")).scalar_one()
        session.execute(text(
            "INSERT INTO responders (name, phone, created_at, updated_at) "
            "SELECT 'R' || i, '+1646' || lpad(i::text, 7, '0'), :now, :now FROM generate_series(1, :n) i"),
            {"now": now, "n": recipients})
        session.execute(text("INSERT INTO coverage (responder_id, layer, zone_id, tier) "
                             "SELECT id, 'district', :z, 1 FROM responders"), {"z": zone_id})
        seq = session.execute(text("SELECT nextval('ack_code_seq')")).scalar_one()
        alert = Alert(rule="gas_leak_report", zone_id=zone_id, category="gas_leak", severity="critical",
                      state="open", ack_code=ackcodes.new_ack_code(seq), evidence_count=1, distinct_authors=1,
                      opened_at=now, updated_at=now, last_evidence_at=now, expires_at=now + timedelta(hours=6))
        session.add(alert)
        session.flush()
        outbox.emit(session, alert=alert, kind=EventKind.OPENED, reason="first_notification",
                    zone={"layer": "district", "code": "A", "name": "District A"}, now=now,
                    evidence_by_source={"utility_report": 1}, rules={}, silenced=False)
