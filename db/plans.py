"""Generic plans for the rest of a transaction: the session setting the hot paths' statements rely on.

Every hot-path statement (db.raw) is prepared on its connection (by psycopg, after five runs; not behind
a transaction pooler, where db.session turns that off and this setting changes nothing). PostgreSQL
re-plans a prepared statement at each execution while its custom plan looks cheaper than the generic one,
which it does for ours (arrays of known length), at about 0.7 ms of server CPU apiece: more than running
them. With `plan_cache_mode = force_generic_plan` each is planned once per connection and reused.

The setting is transaction-local, so the first statement of a transaction's hot path sets it: as a
column of its own select list (`GENERIC_PLANS`, an expression; alerts.signals' lock statements,
dispatch.relay's claim), or, when that statement's own plan must already be generic, by a statement
before it (`use_generic_plans`; a report's insert, ingest.reports.service). The report writer's direct
connections have it from their start instead (db.session.make_engine's `generic_plans`), and
`use_generic_plans` then sends nothing.
"""

from sqlalchemy.orm import Session

from db import raw

SETTING, GENERIC = "plan_cache_mode", "force_generic_plan"
# An expression (its value is the setting, 'force_generic_plan'): evaluate it in the transaction's first
# hot-path statement.
GENERIC_PLANS = f"set_config('{SETTING}', '{GENERIC}', true)"

_SET = "SELECT " + GENERIC_PLANS
_IN_STARTUP = f"{SETTING}={GENERIC}".encode()

# What db.session.make_engine(generic_plans=True) sends in the startup packet: generic plans, and no
# sequential scan where an index would serve. A generic plan is kept for the connection's life, and so is
# each foreign-key check's (PostgreSQL plans them once per connection too): one made while a table was
# nearly empty scans it whole, and goes on scanning it as it grows, until an ANALYZE of that table happens
# to replan it. On a new site READ's made while the tables held a few rows scanned alerts, signals and
# alert_rules for each report (bench.writer: from 1.1 to 2.9 ms of server CPU per report over 3,000
# reports, in the runs where autovacuum came late), and bench.latency's report writer checked each report's
# history row against utility_reports that way (4.8 million rows read for 3,100 reports). Every read of the
# writer's is by a key, so an index plan is right at any size.
STARTUP = (f"{SETTING}={GENERIC}", "enable_seqscan=off")


def use_generic_plans(session: Session) -> None:
    """Plan every statement from here to the end of the transaction once per connection (a statement of its own),
    unless the connection has that for its whole life already (db.session.make_engine's `generic_plans`,
    read from the options it was opened with): a round trip less for each of the report writer's reports."""
    conn = raw.connection(session)
    if _IN_STARTUP not in (conn.pgconn.options or b""):
        raw.execute(session, _SET, {})
