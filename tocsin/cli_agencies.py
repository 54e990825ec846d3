"""CLI for agencies sharing the control room: `tocsin agencies add|list|delete` and `tocsin operators agencies`.

Registered on the main app by tocsin.cli; heavy imports stay inside the commands.
"""

from typing import Annotated

import typer

from tocsin import cli_accounts
from tocsin import cli_common as common

agencies_app = typer.Typer(help="Agencies sharing the control room (fire, police, EMS, utilities): what each "
                                "covers, and which operators belong to it.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(agencies_app, name="agencies")
    cli_accounts.operators_app.command("agencies")(operators_agencies)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def known_categories() -> set[str]:
    """What an alert's category can be: the classifier's and the utility reports'."""
    from typing import get_args

    from ingest.posts.classify import CATEGORIES
    from ingest.reports.schemas import Category

    return set(CATEGORIES) | set(get_args(Category))


@agencies_app.command("add")
def agencies_add(
    name: str,
    categories: Annotated[str | None, typer.Option(help="Comma-separated categories it covers, e.g. fire,medical "
                                                        "(default: every category)")] = None,
    zones: Annotated[str | None, typer.Option(help="Comma-separated LAYER:CODE zones it covers, e.g. "
                                                   "district:A,district:B (default: every zone)")] = None,
) -> None:
    """Add an agency covering these categories in these zones."""
    from datetime import UTC, datetime

    from accounts import agencies
    from geo import zone_store

    wanted = _split(categories)
    unknown = sorted(set(wanted) - known_categories())
    if unknown:
        common.fail(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(known_categories()))}")
    with common.transaction_or_fail(common.sessionmaker(common.settings())) as session:
        specs = [agencies.parse_zone(z) for z in _split(zones)]  # a bad one fails before the database is asked
        found = zone_store.zone_outlines(session, specs)
        missing = [f"{layer}:{code}" for layer, code in specs if (layer, code) not in found]
        if missing:
            common.fail(f"no such zone {', '.join(missing)} (tocsin zones list shows the layers)")
        agency = agencies.add_agency(session, name=name, categories=wanted, zones=specs, now=datetime.now(UTC))
        typer.echo(f"agency {agency.name} added: {_describe(agency)}")


def _describe(agency) -> str:
    categories = ",".join(agency.categories) or "every category"
    zones = ",".join(f"{z['layer']}:{z['code']}" for z in agency.zones) or "every zone"
    return f"{categories} in {zones}"


@agencies_app.command("list")
def agencies_list() -> None:
    """List agencies, what each covers and its operators."""
    from accounts import agencies, operators
    from db.session import transaction

    with transaction(common.sessionmaker(common.settings())) as session:
        by_operator = agencies.operator_agency_names(session)
        names = {op.id: op.name for op in operators.list_operators(session)}
        for agency in agencies.list_agencies(session):
            members = sorted(names[o] for o, a in by_operator.items() if agency.name in a and o in names)
            typer.echo(f"{agency.name:<24} {_describe(agency)}  operators: {', '.join(members) or '-'}")
        unassigned = sorted(n for o, n in names.items() if o not in by_operator)
        if unassigned and agencies.any_agency(session):
            typer.echo(f"in no agency (see nothing unless admin): {', '.join(unassigned)}")


@agencies_app.command("delete")
def agencies_delete(name: str) -> None:
    """Delete an agency; its operators' sessions end, and an operator left in no agency sees nothing."""
    from datetime import UTC, datetime

    from accounts import agencies

    with common.transaction_or_fail(common.sessionmaker(common.settings())) as session:
        agencies.delete_agency(session, name=name, now=datetime.now(UTC))
    typer.echo(f"agency {name} deleted")


def operators_agencies(
    name: str,
    set_: Annotated[str, typer.Option("--set", help="Comma-separated agency names (empty: none)")],
) -> None:
    """Set an operator's agencies (what they see and act on); their signed-in sessions end."""
    from datetime import UTC, datetime

    from accounts import agencies

    with common.transaction_or_fail(common.sessionmaker(common.settings())) as session:
        names = agencies.set_operator_agencies(session, name=name, agencies=_split(set_), now=datetime.now(UTC))
    typer.echo(f"operator {name} agencies: {', '.join(names) or 'none'}")
