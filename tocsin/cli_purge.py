"""`tocsin purge`: delete what is older than its retention period (tocsin/retention.py says what and why)."""

from __future__ import annotations

from typing import Annotated

import typer

from tocsin import cli_common as common


def register(app: typer.Typer) -> None:
    app.command("purge")(purge)


def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go, delete nothing")] = False,
    posts_days: Annotated[float | None, typer.Option(
        help="Keep posts this many days (default TOCSIN_POST_RETENTION_DAYS)")] = None,
    reports_days: Annotated[float | None, typer.Option(
        help="Keep reports this many days after their last change (default TOCSIN_REPORT_RETENTION_DAYS)")] = None,
    alerts_days: Annotated[float | None, typer.Option(
        help="Keep resolved alerts this many days (default TOCSIN_ALERT_RETENTION_DAYS)")] = None,
    deliveries_days: Annotated[float | None, typer.Option(
        help="Keep SMS deliveries and sent events this many days (default TOCSIN_DELIVERY_RETENTION_DAYS)")] = None,
    audit_days: Annotated[float | None, typer.Option(
        help="Keep ended silences and old feed imports this many days (default TOCSIN_AUDIT_RETENTION_DAYS)")] = None,
) -> None:
    """Delete posts, reports, resolved alerts, deliveries and audit rows older than their retention periods,
    except anything an unresolved alert points to; prints the rows deleted per table. The worker does this
    daily (TOCSIN_PURGE_INTERVAL_S)."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from tocsin import retention

    settings = common.settings()
    overrides = {"posts_days": posts_days, "reports_days": reports_days, "alerts_days": alerts_days,
                 "deliveries_days": deliveries_days, "audit_days": audit_days}
    for name, days in overrides.items():
        if days is not None and not days > 0:
            common.fail(f"--{name.replace('_', '-')} {days:g} must be a positive number of days")
    policy = replace(retention.Policy.from_settings(settings), **{k: v for k, v in overrides.items() if v is not None})
    counts = retention.purge(common.sessionmaker(settings), policy=policy, now=datetime.now(UTC), dry_run=dry_run)
    for line in counts.lines():
        typer.echo(line)
    verb = "would delete" if dry_run else "deleted"
    total = sum(counts.rows.values())
    typer.echo(f"{verb} {total} row{'' if total == 1 else 's'}" + (" (dry run: nothing was deleted)" if dry_run else ""))
