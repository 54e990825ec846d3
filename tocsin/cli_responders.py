"""`tocsin responders import`: the responders who get SMS alerts, from a CSV."""

from pathlib import Path
from typing import Annotated

import typer

from tocsin import cli_common as common
from tocsin import cli_place

responders_app = typer.Typer(help="Responders who get SMS alerts, and what they cover.", no_args_is_help=True)

_settings = common.settings
_sessionmaker = common.sessionmaker
_fail = common.fail


def register(app: typer.Typer) -> None:
    app.add_typer(responders_app, name="responders")


@responders_app.command("import")
def responders_import(
    path: Annotated[Path, typer.Argument(help="CSV with columns name, phone, coverage, tier, on_call[, timezone]"
                                              "[, agencies]")],
    skip_invalid: Annotated[bool, typer.Option(help="Import the valid rows even when some are invalid")] = False,
) -> None:
    """Add or update responders by phone; each listed responder's coverage becomes what the file says.

    coverage: `district:A district:B` (zones) or `district:*` (a whole layer); on_call: a weekly
    schedule like `mon-fri 08:00-18:00; sat,sun 22:00-06:00` (empty = always on call); agencies (optional
    column): `fire ems`, the agencies whose alerts the responder is paged for (empty = any their coverage matches).
    """
    import csv
    import io
    import logging
    from datetime import UTC, datetime

    from dispatch import responders
    from dispatch.routing import DEFAULT_TIMEZONE as timezone_default
    from tocsin.progress import progress

    settings = _settings()
    try:
        data = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        _fail(f"cannot read {str(path)!r}: {exc.strerror}")
    rows = max(0, sum(1 for row in csv.reader(io.StringIO(data)) if row) - 1)
    # import_csv logs a line per responder: thousands of them would bury the progress and the summary.
    per_responder = logging.getLogger(responders.__name__)
    level = per_responder.level
    per_responder.setLevel(logging.WARNING)
    try:
        with common.transaction_or_fail(_sessionmaker(settings)) as session, \
                progress(rows, "responder rows", "row") as advance:
            result = responders.import_csv(session, data=data, now=datetime.now(UTC), region=settings.phone_region,
                                           skip_invalid=skip_invalid, progress=advance,
                                           default_timezone=cli_place.active_timezone(settings, timezone_default))
    finally:
        per_responder.setLevel(level)
    for line, message in result.errors:
        typer.secho(f"{path}:{line}: {message}", fg=typer.colors.YELLOW, err=True)
    if result.errors and not skip_invalid:
        _fail(f"{len(result.errors)} invalid row(s); nothing imported (fix them, or pass --skip-invalid)")
    typer.echo(f"responders: {result.created} created, {result.updated} updated, "
               f"{result.coverage_rows} coverage rows, {len(result.errors)} rows skipped")
