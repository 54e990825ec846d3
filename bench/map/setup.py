"""The benchmark's database: 262 NTAs, 5,000 observations with known points, one admin operator."""

from __future__ import annotations

from datetime import UTC, datetime

DB_NAME = "tocsin_bench_map"
N_OBSERVATIONS = 5_000

TEXTS = [
    "Street flooding here, water up to the car doors",
    "Huge fire, smoke everywhere and trucks on scene",
    "Strong smell of gas in our building",
    "Power outage, whole block is dark",
    "Bad car crash, ambulance just arrived",
]
CATEGORIES = ["flood", "fire", "gas_leak", "power_outage", "collision"]


def load(factory, *, now: datetime) -> str:
    """NTAs (once), then a fresh set of observations and alerts; returns an admin operator token."""
    from sqlalchemy import text

    from accounts import operators
    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.demo import DEMO_LAYERS, demo_layer_path
    from geo.zones import read_zone_file

    nta = next(layer for layer in DEMO_LAYERS if layer.name == "nta")
    with transaction(factory) as session:
        if not session.execute(text("SELECT 1 FROM zone_layers WHERE name = 'nta'")).first():
            records, _ = read_zone_file(demo_layer_path(nta), code_field=nta.code_field, name_field=nta.name_field,
                                        assume_crs="EPSG:4326")
            zone_service.upsert_zones(session, layer="nta", records=records, description=nta.description)
        session.execute(text("TRUNCATE observations, signals, observation_zones, alerts, alert_evidence, "
                             "alert_history, outbox_events, operators, utilities RESTART IDENTITY CASCADE"))
        # Known points: 20 random points inside each NTA (seeded), the first 5,000 of them, spread over
        # the last six hours so the map shows every stage of fading.
        session.execute(text(
            """
            INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at,
                                      received_at, geom, uncertainty_m, geotag_method, raw)
            SELECT CASE WHEN n % 5 = 0 THEN 'utility_report' ELSE 'post' END, 'bench-' || n, 'a' || (n % 997),
                   (ARRAY[:t0, :t1, :t2, :t3, :t4])[1 + n % 5], (ARRAY[:c0, :c1, :c2, :c3, :c4])[1 + n % 5], 0.8,
                   :now - make_interval(secs => (n * 4.32)::int), :now, pt,
                   (ARRAY[25, 150, 400, 1200])[1 + n % 4], 'coordinates',
                   CASE WHEN n % 5 = 0 THEN jsonb_build_object('properties', jsonb_build_object(
                       'external_id', 'bench-' || n, 'status', 'reported', 'customers_affected', n % 900))
                   ELSE '{}'::jsonb END
            FROM (SELECT row_number() OVER () AS n, pt FROM (
                    SELECT (ST_Dump(ST_GeneratePoints(z.geom, 20, 42))).geom AS pt
                    FROM zones z JOIN zone_layers l ON l.id = z.layer_id WHERE l.name = 'nta' ORDER BY z.code) d
                 ) p
            WHERE n <= :n
            """
        ), {"now": now, "n": N_OBSERVATIONS, **{f"t{i}": t for i, t in enumerate(TEXTS)},
            **{f"c{i}": c for i, c in enumerate(CATEGORIES)}})
        _, token = operators.add_operator(session, name="bench", role="admin", now=now)
    return token


def utility_key(factory) -> str:
    from db.session import transaction
    from accounts import keys

    with transaction(factory) as session:
        utility = keys.add_utility(session, name="Bench Power")
        return keys.issue_key(session, role="utility", utility_id=utility.id)


def counts(factory) -> tuple[int, int]:
    from sqlalchemy import text

    with factory() as session:
        zones = session.execute(text("SELECT count(*) FROM zones z JOIN zone_layers l ON l.id = z.layer_id "
                                     "WHERE l.name = 'nta'")).scalar_one()
        obs = session.execute(text("SELECT count(*) FROM observations")).scalar_one()
    return int(zones), int(obs)


def utcnow() -> datetime:
    return datetime.now(UTC)
