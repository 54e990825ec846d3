"""`tocsin rules check` and `tocsin rules backtest`."""

from pathlib import Path
from typing import Annotated

import typer

from tocsin import cli_common as common

rules_app = typer.Typer(help="Threshold rules.", no_args_is_help=True)

_settings = common.settings
_sessionmaker = common.sessionmaker
_fail = common.fail


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def rules_check(path: Path) -> None:
    """Validate a rules file: the schema, then every name it uses (fields, categories, sources, the zone
    layer, condition fields) against what this Tocsin knows, by line, with a "did you mean"."""
    from typing import get_args

    from alerts.errors import RuleError
    from alerts.rule_check import check_names
    from alerts.rules import load_rules
    from ingest.posts.classify import CATEGORIES
    from ingest.reports.schemas import REPORT_ATTRIBUTES, Category

    try:
        rules = load_rules(path)
        error = None
    except RuleError as exc:
        error = exc.message
    layers, note = _zone_layers()
    try:
        problems = check_names(path.read_text(), categories={*CATEGORIES, *get_args(Category)}, layers=layers,
                               condition_fields=REPORT_ATTRIBUTES)
    except Exception:  # not YAML, or not a file: the schema's error says which
        problems = []
    for p in problems:  # first: by line, with a "did you mean"
        typer.secho(p.render(str(path)), fg=typer.colors.RED, err=True)
    if error is not None:
        _fail(error)
    if problems:
        raise typer.Exit(2)
    typer.echo(f"{path}: {len(rules)} rules OK{note}")


def _zone_layers() -> tuple[set[str] | None, str]:
    """The loaded zone layers, or None (and why) when the database cannot be asked."""
    from sqlalchemy import text

    from db.outage import is_unavailable

    try:
        with _sessionmaker(_settings())() as session:
            return set(session.execute(text("SELECT name FROM zone_layers")).scalars()), ""
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return None, " (layers not checked: the database is unavailable)"


@rules_app.command("backtest")
def rules_backtest(
    stream: Annotated[Path, typer.Argument(help="JSONL of posts (as for `tocsin replay`), optionally labelled")],
    rules_file: Annotated[Path | None, typer.Option("--rules", help="Rules file (default TOCSIN_RULES_FILE)")] = None,
) -> None:
    """Run rules over a recorded stream in one rolled-back transaction: live alerts are never touched.
    Prints the alert timeline, per-rule counts and, for a labelled stream, missed incidents, alerts on
    noise and duplicate alerts (docs/architecture.md, "Event time, bounded lateness and backtests")."""
    from alerts.errors import RuleError
    from alerts.rules import load_rules
    from ingest.posts import pipeline
    from ingest.posts.classify import load_lexicon
    from ingest.posts.state import PostState
    from tocsin import backtest

    settings = _settings()
    if not stream.exists():
        _fail(f"stream file {str(stream)!r} does not exist")
    try:
        rules = load_rules(rules_file or settings.rules_file)
    except RuleError as exc:
        _fail(exc.message)
    parsed = backtest.read_stream(stream)
    for error in parsed.errors:
        typer.secho(f"{stream}: {error}", fg=typer.colors.YELLOW, err=True)
    if not parsed.posts and not parsed.reports:
        _fail(f"{stream}: no posts or reports to backtest")
    with _sessionmaker(settings)() as session:
        state = PostState()
        try:
            result = backtest.run(session, stream=parsed, rules=rules, index=state.gazetteer.get(session),
                                  lexicon=load_lexicon(), config=pipeline.PipelineConfig.from_settings(settings),
                                  state=state)
        finally:
            session.rollback()  # the whole run is a rehearsal: nothing it wrote stays
            state.close()
    for line in backtest.report(result):
        typer.echo(line)
