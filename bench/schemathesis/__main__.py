"""Schemathesis over the whole API: every operation, with the credential its `security` names, >= 1,000 cases.

Setup: a fresh database `tocsin_bench_schemathesis` on the configured PostGIS, migrated, with the test suite's
hand-drawn district zones, a utility, a partner and an admin operator (tests/integration/api_fuzz.py drives
the run; the test suite runs a smaller one). BENCH_POSITIVE / BENCH_NEGATIVE (default 40 / 20) examples per
operation and mode. Every 5xx and every response that does not match the OpenAPI document is listed.
Last line: `schemathesis_cases=<n> schemathesis_5xx=<n>` (plus the number of conformance failures).
"""

import os
import sys


def main() -> int:
    from fastapi.testclient import TestClient
    from pydantic import SecretStr
    from shapely.geometry import MultiPolygon, Polygon

    from bench.db import bench_database, drop_database
    from db.session import make_engine, make_sessionmaker, transaction
    from geo import zone_store as zone_service
    from geo.zones import ZoneRecord
    from tests.integration.api_fuzz import fuzz, seed_credentials
    from tocsin import models_registry
    from tocsin.app import create_app
    from tocsin.settings import Settings

    base = Settings()
    name = "tocsin_bench_schemathesis"
    url = bench_database(base.database_url, name, fresh=True)
    models_registry.load()
    engine = make_engine(url, pool_size=2)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            zone_service.upsert_zones(session, layer="district", records=[
                ZoneRecord(code=code, name=f"District {code}", properties={},
                           geometry=MultiPolygon([Polygon([(w, s), (e, s), (e, n), (w, n), (w, s)])]))
                for code, (w, s, e, n) in {"A": (-74.00, 40.70, -73.95, 40.75), "B": (-73.95, 40.70, -73.90, 40.75),
                                           "C": (-74.00, 40.75, -73.90, 40.80)}.items()])
        credentials = seed_credentials(make_sessionmaker(engine))
        rules = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "rules.yaml")
        app = create_app(base.model_copy(update={
            "database_url": url, "rate_limit_per_min": 0, "rules_file": os.path.abspath(rules),
            "twilio_auth_token": SecretStr("bench-auth-token"), "mqtt_topic_prefix": "bench/schemathesis/tocsin/v1"}))
        with TestClient(app):
            result = fuzz(app, credentials, positive=int(os.environ.get("BENCH_POSITIVE", "40")),
                          negative=int(os.environ.get("BENCH_NEGATIVE", "20")))
    finally:
        engine.dispose()
        drop_database(base.database_url, name)
    for (label, code), n in sorted(result.statuses.items()):
        if code >= 500:
            print(f"5xx: {label} -> {code} x{n}: {result.samples[(label, code)][:200]}")
    for failure in result.failures:
        print(f"failure: {failure}")
    operations = len({label for label, _ in result.statuses})
    print(f"operations={operations} schemathesis_failures={len(result.failures)}")
    print(f"schemathesis_cases={result.cases} schemathesis_5xx={result.server_errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
