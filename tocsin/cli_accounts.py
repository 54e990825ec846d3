"""CLI for accounts: `tocsin utilities ...` (and their API keys) and `tocsin operators ...`.

Registered on the main app by tocsin.cli; heavy imports stay inside the commands.
"""

from pathlib import Path
from typing import Annotated

import typer

from tocsin import cli_common as common

utilities_app = typer.Typer(help="Utilities and their API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="A utility's API keys: list, add, revoke, rotate.", no_args_is_help=True)
utilities_app.add_typer(keys_app, name="keys")
operators_app = typer.Typer(help="Control-room operator accounts and their tokens.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(utilities_app, name="utilities")
    app.add_typer(operators_app, name="operators")



@utilities_app.command("add")
def utilities_add(
    name: str,
    territory: Annotated[Path | None, typer.Option(help="Polygon file of the utility's service territory")] = None,
) -> None:
    """Register a utility and print its first API key (shown once)."""
    from accounts import keys

    territory_wkt = None
    if territory is not None:
        from shapely import union_all

        from geo.zones import read_zone_file

        records, _ = read_zone_file(territory, assume_crs="EPSG:4326")
        if not records:
            common.fail(f"territory file {territory} has no usable polygon")
        territory_wkt = union_all([r.geometry for r in records]).wkt
    from db.errors import Conflict

    with common.transaction_or_fail(common.sessionmaker(common.settings()), Conflict) as session:
        utility = keys.add_utility(session, name=name, territory_wkt=territory_wkt)
        key = keys.issue_key(session, role="utility", utility_id=utility.id, label="first key")
    typer.echo(key)


@utilities_app.command("key")
def utilities_key(name: str, label: str = "") -> None:
    """Issue an additional API key for an existing utility (shown once)."""
    from db.session import transaction
    from accounts import keys

    with transaction(common.sessionmaker(common.settings())) as session:
        utility = keys.get_utility(session, name=name)
        if utility is None:
            common.fail(f"utility {name!r} does not exist; add it with `tocsin utilities add {name}`")
        typer.echo(keys.issue_key(session, role="utility", utility_id=utility.id, label=label))




@keys_app.command("list")
def keys_list(name: str) -> None:
    """List a utility's keys by id and prefix (the keys themselves are never stored)."""
    from db.session import transaction
    from accounts import keys

    with transaction(common.sessionmaker(common.settings())) as session:
        utility = keys.get_utility(session, name=name)
        if utility is None:
            common.fail(f"utility {name!r} does not exist")
        for k in keys.list_keys(session, utility_id=utility.id):
            state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
            typer.echo(f"{k.id:>6}  {k.prefix}…  {state:<24} {k.label}")


@keys_app.command("add")
def keys_add(name: str, label: str = "") -> None:
    """Issue another key for a utility (shown once)."""
    utilities_key(name, label)


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke a key by id; requests with it get 401 at once."""
    from datetime import UTC, datetime

    from db.errors import NotFound
    from accounts import keys

    with common.transaction_or_fail(common.sessionmaker(common.settings()), NotFound) as session:
        keys.revoke_key(session, key_id=key_id, now=datetime.now(UTC))
    typer.echo(f"key {key_id} revoked")


@keys_app.command("rotate")
def keys_rotate(key_id: int) -> None:
    """Revoke a key and print its replacement (shown once)."""
    from datetime import UTC, datetime

    from db.errors import NotFound
    from accounts import keys

    with common.transaction_or_fail(common.sessionmaker(common.settings()), NotFound) as session:
        new = keys.rotate_key(session, key_id=key_id, now=datetime.now(UTC))
    typer.echo(new)


@operators_app.command("add")
def operators_add(
    name: str,
    role: Annotated[str, typer.Option(help="viewer (read), operator (acknowledge, resolve, silence) or admin")],
    agency: Annotated[list[str] | None, typer.Option(help="An agency the operator belongs to (repeatable; "
                                                          "tocsin agencies list)")] = None,
) -> None:
    """Create an operator account and print its token (shown once)."""
    from datetime import UTC, datetime

    from accounts import agencies, operators

    with common.transaction_or_fail(common.sessionmaker(common.settings())) as session:
        _, token = operators.add_operator(session, name=name, role=role, now=datetime.now(UTC))
        if agency:
            agencies.set_operator_agencies(session, name=name, agencies=agency, now=datetime.now(UTC))
    typer.echo(token)


@operators_app.command("list")
def operators_list() -> None:
    """List operator accounts (never their tokens)."""
    from accounts import operators
    from db.session import transaction

    with transaction(common.sessionmaker(common.settings())) as session:
        for op in operators.list_operators(session):
            status = f"disabled {op.disabled_at:%Y-%m-%d %H:%M}" if op.disabled_at else "active"
            typer.echo(f"{op.name:<32} {op.role:<9} {status}")


@operators_app.command("token")
def operators_token(name: str) -> None:
    """Issue a new token for an operator (shown once); the old token and the operator's sessions stop working."""
    from datetime import UTC, datetime

    from accounts import operators

    with common.transaction_or_fail(common.sessionmaker(common.settings())) as session:
        token = operators.reissue_token(session, name=name, now=datetime.now(UTC))
    typer.echo(token)


@operators_app.command("role")
def operators_role(name: str, role: str) -> None:
    """Change an operator's role (viewer, operator or admin); their signed-in sessions end."""
    from datetime import UTC, datetime

    from accounts import operators

    with common.transaction_or_fail(common.sessionmaker(common.settings())) as session:
        operators.change_role(session, name=name, role=role, now=datetime.now(UTC))
    typer.echo(f"operator {name} is now {role}")


@operators_app.command("disable")
def operators_disable(name: str) -> None:
    """Disable an operator account; its token and sessions stop working at once (open live maps close)."""
    from datetime import UTC, datetime

    from accounts import operators

    with common.transaction_or_fail(common.sessionmaker(common.settings())) as session:
        operators.disable_operator(session, name=name, now=datetime.now(UTC))
    typer.echo(f"operator {name} disabled")
