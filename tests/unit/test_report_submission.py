"""ingest.reports.service.prepare: what it hands the writer is checked and dumped once, and the digest that
tells a retry from a conflict is the one stored reports carry."""

import hashlib
import json
from datetime import UTC, datetime

from accounts.keys import Caller
from ingest.reports import service
from ingest.reports.schemas import ReportCreate

CALLER = Caller(key_id=1, role="utility", utility_id=1, utility_name="Test Power")
BBOX = (-74.3, 40.45, -73.65, 40.95)
NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)


def _body(**props) -> ReportCreate:
    return ReportCreate.model_validate({
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.9196, 40.7644]},
        "properties": {"external_id": "S1", "category": "gas_leak", **props}})


def test_the_digest_is_that_of_the_sorted_compact_dump():
    body = _body(description="Straße – «fuite»", customers_affected=40, extra_field={"b": 1.5, "a": [None]})
    sub = service.prepare(caller=CALLER, body=body, idempotency_key=None, jurisdiction_bbox=BBOX, now=NOW)
    dumped = body.model_dump(mode="json")
    assert sub.digest == hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert sub.raw == dumped and json.loads(sub.raw_json) == dumped


def test_equal_bodies_have_equal_digests_and_a_changed_one_another():
    def digest(body: ReportCreate) -> str:
        return service.prepare(caller=CALLER, body=body, idempotency_key=None, jurisdiction_bbox=BBOX,
                               now=NOW).digest

    assert digest(_body(customers_affected=40)) == digest(_body(customers_affected=40))
    assert digest(_body(customers_affected=40)) != digest(_body(customers_affected=41))


def test_a_point_is_located_by_prepare_from_the_parsed_geometry():
    body = _body()
    sub = service.prepare(caller=CALLER, body=body, idempotency_key=None, jurisdiction_bbox=BBOX, now=NOW)
    assert sub.located is not None and sub.located.method == "geometry"
    assert sub.located.geom is body.geometry.shape
