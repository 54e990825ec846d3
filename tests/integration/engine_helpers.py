"""Helpers for alert-engine tests: observations and signals in the hand-drawn districts, at chosen times."""

import itertools
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts import service as alert_service
from geo.match_postgis import ZoneMatch

# A point inside each hand-drawn zone (tests/conftest.py DISTRICTS); all are inside precinct P1 too.
INSIDE = {"A": (-73.975, 40.725), "B": (-73.925, 40.725), "C": (-73.95, 40.775)}
_ids = itertools.count(1)


def zone_matches(session: Session) -> dict[str, ZoneMatch]:
    """{code: ZoneMatch} for every loaded zone, weight 1 (a point)."""
    rows = session.execute(text(
        "SELECT z.id, l.name, z.code, z.name FROM zones z JOIN zone_layers l ON l.id = z.layer_id"
    )).all()
    return {code: ZoneMatch(zid, layer, code, name, 1.0) for zid, layer, code, name in rows}


def add_observation(session: Session, *, source: str, category: str, zone: str, author: str,
                    observed_at: datetime, text_: str = "", external_id: str | None = None) -> int:
    lon, lat = INSIDE[zone]
    return session.execute(
        text("""
            INSERT INTO observations (source, external_id, author_hash, text, category, confidence, observed_at,
                received_at, geom, uncertainty_m, geotag_method)
            VALUES (:source, :ext, :author, :text, :category, 0.9, :at, :at,
                    ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 25, 'coordinates')
            RETURNING id
        """),
        {"source": source, "ext": external_id or f"t-{next(_ids)}-{observed_at.timestamp()}", "author": author,
         "text": text_, "category": category, "at": observed_at, "lon": lon, "lat": lat},
    ).scalar_one()


def feed(session: Session, *, rules, zones: dict[str, ZoneMatch], source: str, category: str, zone: str,
         author: str, at: datetime, attributes: dict | None = None,
         external_id: str | None = None) -> list[alert_service.AlertChange]:
    """One observation in `zone` (and the precinct around it), observed and evaluated at `at`."""
    oid = add_observation(session, source=source, category=category, zone=zone, author=author, observed_at=at,
                          text_=f"{category} report by {author}", external_id=external_id)
    signal = alert_service.SignalIn(
        observation_id=oid, source=source, category=category, confidence=0.9, author_key=author, observed_at=at,
        zones=[zones[zone], zones["P1"]], attributes=attributes or {},
    )
    return alert_service.observe(session, signal=signal, rules=rules, now=at)


def events(session: Session, alert_id: int | None = None) -> list[dict]:
    """Outbox payloads in the order they were written (optionally for one alert)."""
    rows = session.execute(text(
        "SELECT payload, created_at FROM outbox_events WHERE CAST(:a AS bigint) IS NULL OR alert_id = :a ORDER BY id"
    ), {"a": alert_id}).all()
    return [{**p, "_at": at} for p, at in rows]


def outage_post_process(database_url: str, rules_doc: dict, plan: list[tuple[str, datetime]], name: str,
                        barrier) -> None:
    """`ingest_process` with power-outage posts."""
    ingest_process(database_url, rules_doc, plan, name, barrier, category="power_outage")


def ingest_process(database_url: str, rules_doc: dict, plan: list[tuple[str, datetime]], name: str,
                   barrier, category: str = "flood") -> None:
    """A worker process: for each (zone, time) in `plan`, wait for the other process, then ingest one post."""
    from alerts.rules import parse_rules
    from db.session import make_engine, make_sessionmaker, transaction
    from tocsin import models_registry

    models_registry.load()
    rules = parse_rules(rules_doc)
    engine = make_engine(database_url, pool_size=1)
    factory = make_sessionmaker(engine)
    with factory() as s:
        zones = zone_matches(s)
    for i, (zone, when) in enumerate(plan):
        barrier.wait(timeout=60)
        with transaction(factory) as s:
            feed(s, rules=rules, zones=zones, source="post", category=category, zone=zone, author=f"{name}-{i}",
                 at=when, external_id=f"{name}-{i}")
    engine.dispose()


def report_process(database_url: str, rules_doc: dict, plan: list[tuple[str, datetime]], name: str,
                   barrier) -> None:
    """A utility's API worker: for each (zone, time) in `plan`, wait for the other process, then POST one
    outage report there through `ingest.reports.service.create_report` (the path that takes the zone locks in its
    own insert statement)."""
    from alerts.rules import parse_rules
    from db.session import make_engine, make_sessionmaker, transaction
    from accounts import keys
    from ingest.reports import service as reports
    from ingest.reports.schemas import ReportCreate
    from tocsin import models_registry

    models_registry.load()
    rules = parse_rules(rules_doc)
    engine = make_engine(database_url, pool_size=1)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        key = keys.issue_key(s, role="utility", utility_id=keys.add_utility(s, name=f"Utility {name}").id)
    for i, (zone, when) in enumerate(plan):
        lon, lat = INSIDE[zone]
        body = ReportCreate.model_validate({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                                           "properties": {"external_id": f"{name}-{i}", "category": "power_outage"}})
        barrier.wait(timeout=60)
        with transaction(factory) as s:
            reports.create_report(s, caller=keys.authenticate(s, key=key), body=body, idempotency_key=None,
                                  rules=rules, jurisdiction_bbox=(-180, -90, 180, 90), now=when)
    engine.dispose()


def post_batch_process(database_url: str, rules_doc: dict, plan: list[tuple[str, datetime]], name: str,
                       barrier) -> None:
    """A post-intake worker: for each (zone, time) in `plan`, wait for the other process, then ingest a batch
    of one flood post located in that zone through `ingest.posts.pipeline.ingest_posts` (the batch path)."""
    from alerts.rules import parse_rules
    from db.session import make_engine, make_sessionmaker, transaction
    from geo.gazetteer import GazetteerIndex
    from ingest.posts import pipeline, parse as posts
    from ingest.posts.classify import load_lexicon
    from ingest.posts.state import PostState
    from tocsin import models_registry

    models_registry.load()
    rules, lexicon, index = parse_rules(rules_doc), load_lexicon(), GazetteerIndex([], context_regions={})
    state = PostState()
    config = pipeline.PipelineConfig(author_hash_key="test", jurisdiction_bbox=(-180, -90, 180, 90))
    engine = make_engine(database_url, pool_size=1)
    factory = make_sessionmaker(engine)
    for i, (zone, when) in enumerate(plan):
        item = {"source": "test", "external_id": f"{name}-{i}", "author": f"{name}-{i}",
                "text": "Street flooding here, water up to the car doors", "created_at": when.isoformat(),
                "coordinates": list(INSIDE[zone])}
        batch = [p for p in posts.parse_items([item]) if isinstance(p, posts.PostIn)]
        barrier.wait(timeout=60)
        with transaction(factory) as s:
            pipeline.ingest_posts(s, posts=batch, index=index, lexicon=lexicon, rules=rules, config=config,
                                  state=state, now=when)
    state.close()
    engine.dispose()
