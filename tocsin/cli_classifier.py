"""`tocsin classifier`: the classifier's data from this deployment, e.g. its operators' corrections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tocsin import cli_common as common

classifier_app = typer.Typer(help="Classifier: export this deployment's labelled posts.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(classifier_app, name="classifier")


@classifier_app.command("feedback-export")
def feedback_export(
    out: Annotated[Path, typer.Argument(help="Where to write the JSON Lines file ('-' for standard output)")],
    default_lang: Annotated[str, typer.Option(help="Language for a post that came without one")] = "en",
) -> None:
    """Write operators' feedback on posts as labelled posts, one {"text", "category", "lang"} a line, as in
    tests/data/classify_dev.jsonl: "not an incident" becomes category "none", "wrong category" the category
    the operator gave; "wrong place" is skipped, and the latest mark on a post wins. Append it to a
    development set to tune the classifier on this deployment's corrections."""
    from ingest.posts import feedback

    settings = common.settings()
    factory = common.sessionmaker(settings)
    with factory() as session:
        rows = list(feedback.labelled_posts(session, default_lang=default_lang))
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if str(out) == "-":
        typer.echo(lines, nl=False)
        return
    try:
        out.write_text(lines, encoding="utf-8")
    except OSError as exc:
        common.fail(f"cannot write {out}: {exc.strerror}")
    typer.echo(f"wrote {len(rows)} labelled post(s) to {out}", err=True)
