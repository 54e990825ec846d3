"""The sweeper's Schedule sweeps only the alerts that can be due, and skips only alerts a sweep would leave alone.

The oracle is the sweep itself: after each scheduled pass, every unresolved alert it skipped is swept at the same
`now` in a transaction that is rolled back, and must change nothing (no row, no event, no history, no log).
"""

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from alerts import service as alert_service
from alerts import sweeper
from alerts.rules import parse_rules
from db.session import transaction
from tests.integration.engine_helpers import add_observation, zone_matches

pytestmark = [pytest.mark.integration, pytest.mark.committing]

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
M = timedelta(minutes=1)
RULES = parse_rules({"rules": [
    {"name": "gas", "categories": ["gas_leak"], "sources": ["utility_report"], "layer": "district",
     "immediate": True, "severity": "critical", "escalate_after": "5m", "expire_after": "40m",
     "repeat_interval": "7m", "quiet_period": "2m"},
    {"name": "flood", "categories": ["flood"], "sources": ["post"], "layer": "district", "window": "10m",
     "ladder": {"minor": 2, "major": 4, "critical": 6}, "quiet_period": "3m", "repeat_interval": "9m",
     "notify_on_lower": True, "escalate_after": "4m"},
    {"name": "fire_precinct", "categories": ["fire"], "sources": ["post"], "layer": "precinct", "window": "5m",
     "min_count": 2, "resolve_below": 1, "quiet_period": "30m", "expire_after": "12m"},  # expires first
]})
UNRESOLVED = "SELECT id FROM alerts WHERE state IN ('open', 'acknowledged') ORDER BY id"


def observe(s, *, source: str, category: str, zone: str, author: str, at: datetime) -> int:
    """One observation in `zone` (and precinct P1 around it), evaluated at `at`; returns its id."""
    zones = zone_matches(s)
    oid = add_observation(s, source=source, category=category, zone=zone, author=author, observed_at=at)
    alert_service.observe(s, signal=alert_service.SignalIn(
        observation_id=oid, source=source, category=category, confidence=0.9, author_key=author, observed_at=at,
        zones=[zones[zone], zones["P1"]], attributes={}), rules=RULES, now=at)
    return oid


def unresolved(factory) -> list[int]:
    with factory() as s:
        return list(s.scalars(text(UNRESOLVED)))


def snapshot(s) -> tuple:
    alerts = s.execute(text("SELECT * FROM alerts ORDER BY id")).all()
    counts = s.execute(text("SELECT (SELECT count(*) FROM outbox_events), (SELECT count(*) FROM alert_history), "
                            "(SELECT count(*) FROM alert_notifications)")).one()
    return [tuple(r) for r in alerts], tuple(counts)


def assert_a_sweep_would_leave_alone(factory, ids: list[int], now: datetime) -> None:
    """Sweep `ids` at `now` and roll back: nothing may change."""
    with factory() as s:
        s.begin()
        before = snapshot(s)
        result = sweeper.sweep(s, rules=RULES, now=now, limit=len(ids) + 1, ids=ids, fold_baselines=False)
        s.flush()
        after = snapshot(s)
        s.rollback()
    assert result.swept == len(ids)
    assert (result.resolved, result.notified, result.escalation_ticks) == ([], [], []), now
    assert after == before, f"a sweep at {now} would have changed skipped alerts {ids}"


def open_gas(factory, zones: str = "ABC") -> dict[str, int]:
    """An immediate gas alert in each of `zones` (districts), opened at T0: {code: alert id}."""
    with transaction(factory) as s:
        for zone in zones:
            observe(s, source="utility_report", category="gas_leak", zone=zone, author="utility:1", at=T0)
    with factory() as s:
        return dict(s.execute(text("SELECT z.code, a.id FROM alerts a JOIN zones z ON z.id = a.zone_id")).all())


def test_a_pass_sweeps_only_new_changed_or_due_alerts(session_factory, districts):
    alerts = open_gas(session_factory)
    schedule = sweeper.Schedule(session_factory, full_every_s=3600)
    assert schedule.run_pass(rules=RULES, now=T0 + M).swept == 3  # all new to it
    assert schedule.run_pass(rules=RULES, now=T0 + 2 * M).swept == 0
    with transaction(session_factory) as s:  # a changed row: that alert, and no other
        alert_service.acknowledge(s, alert_id=alerts["B"], actor="operator:kim", note=None, now=T0 + 2 * M,
                                  rules=RULES)
    result = schedule.run_pass(rules=RULES, now=T0 + 3 * M)
    assert (result.swept, list(result.due)) == (1, [alerts["B"]])
    assert schedule.run_pass(rules=RULES, now=T0 + 5 * M - timedelta(seconds=1)).swept == 0
    result = schedule.run_pass(rules=RULES, now=T0 + 5 * M)  # the escalation tick is due (not for B: acknowledged)
    assert sorted(result.due) == sorted(result.escalation_ticks) == sorted([alerts["A"], alerts["C"]])
    assert schedule.run_pass(rules=RULES, now=T0 + 5 * M + timedelta(seconds=30)).swept == 0


def test_retired_evidence_makes_its_zone_due(session_factory, districts):
    """Retiring a report's signals lowers its zone's counts and changes no alert's row: the zone's hint does."""
    with transaction(session_factory) as s:
        oid = observe(s, source="utility_report", category="gas_leak", zone="A", author="utility:1", at=T0)
        observe(s, source="utility_report", category="gas_leak", zone="B", author="utility:1", at=T0)
    schedule = sweeper.Schedule(session_factory, full_every_s=3600)
    assert schedule.run_pass(rules=RULES, now=T0 + M).swept == 2
    with transaction(session_factory) as s:
        assert alert_service.retire_evidence(s, observation_ids=[oid], now=T0 + 2 * M) == 2  # district A, P1
    result = schedule.run_pass(rules=RULES, now=T0 + 2 * M)
    with session_factory() as s:
        [(alert_a, quiet_since)] = s.execute(text(
            "SELECT a.id, a.quiet_since FROM alerts a JOIN zones z ON z.id = a.zone_id WHERE z.code = 'A'")).all()
        assert s.execute(text("SELECT count(*) FROM alert_sweep_hints")).scalar_one() == 0  # taken
    assert list(result.due) == [alert_a] and quiet_since == T0 + 2 * M  # its count is 0 now: quiet from now
    result = schedule.run_pass(rules=RULES, now=T0 + 4 * M)  # the quiet period (2m) has passed
    assert result.resolved == [alert_a] and result.swept == 1


def test_a_pass_that_fails_after_taking_the_hints_sweeps_their_zones_next_time(session_factory, districts,
                                                                              monkeypatch):
    with transaction(session_factory) as s:
        oid = observe(s, source="utility_report", category="gas_leak", zone="A", author="utility:1", at=T0)
        observe(s, source="utility_report", category="gas_leak", zone="B", author="utility:1", at=T0)
    schedule = sweeper.Schedule(session_factory, full_every_s=3600)
    schedule.run_pass(rules=RULES, now=T0 + M)
    with transaction(session_factory) as s:
        alert_service.retire_evidence(s, observation_ids=[oid], now=T0 + 2 * M)
    real = sweeper.sweep

    def lost_database(*args, **kwargs):
        raise ConnectionError("the database went away mid-pass")

    monkeypatch.setattr(sweeper, "sweep", lost_database)
    with pytest.raises(ConnectionError):
        schedule.run_pass(rules=RULES, now=T0 + 2 * M)  # the scan took (and committed) the hint
    monkeypatch.setattr(sweeper, "sweep", real)
    with session_factory() as s:
        [alert_a] = s.scalars(text("SELECT a.id FROM alerts a JOIN zones z ON z.id = a.zone_id WHERE z.code = 'A'"))
    assert list(schedule.run_pass(rules=RULES, now=T0 + 3 * M).due) == [alert_a]


@pytest.mark.parametrize("change", ["silence", "rules", "backstop"])
def test_a_change_of_silences_or_rules_and_the_backstop_sweep_everything(session_factory, districts, change):
    # Rules with nothing due for 40 minutes (no repeat, no escalation; the reports' evidence lives as long as
    # the alerts): only a change, or the backstop, makes these alerts due.
    quiet = [r.model_copy(update={"repeat_interval_s": None, "escalate_after_s": None}) for r in RULES]
    alerts = open_gas(session_factory)
    schedule = sweeper.Schedule(session_factory, full_every_s=600)
    schedule.run_pass(rules=quiet, now=T0 + M)
    assert schedule.run_pass(rules=quiet, now=T0 + 2 * M).swept == 0
    rules, now = quiet, T0 + 3 * M
    if change == "silence":
        with transaction(session_factory) as s:
            alert_service.create_silence(s, matchers={"zone": "Q"}, starts_at=T0, ends_at=T0 + 60 * M,
                                         created_by="operator:kim", comment=None, now=T0 + 2 * M)
    elif change == "rules":
        rules = [r.model_copy(update={"repeat_interval_s": 3600.0}) if r.name == "gas" else r for r in quiet]
    else:  # each alert again at 75-100% of full_every_s after its last sweep, by its id: not all in one pass
        at = {i: T0 + M + timedelta(seconds=600 * (0.75 + 0.25 * (i * sweeper._GOLDEN % 1))) for i in alerts.values()}
        first = min(at, key=at.__getitem__)
        assert schedule.run_pass(rules=rules, now=T0 + M + timedelta(seconds=449)).swept == 0
        assert list(schedule.run_pass(rules=rules, now=at[first]).due) == [first]
        assert schedule.run_pass(rules=rules, now=at[first] + timedelta(seconds=1)).swept == 0
        now = T0 + 11 * M
    assert schedule.run_pass(rules=rules, now=now).swept == (2 if change == "backstop" else 3)
    assert schedule.run_pass(rules=rules, now=now + timedelta(seconds=1)).swept == 0


@pytest.mark.parametrize(("seed", "workers"), [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)])
def test_every_alert_a_pass_skips_is_one_a_sweep_would_leave_alone(session_factory, districts, seed, workers):
    """Random posts, reports, acknowledgements, retirements and silences over two hours, a scheduled pass
    after each step: every skipped alert, swept then and rolled back, changes nothing. With two workers they
    take turns at random: each knows only what it swept, and a hint goes to whichever takes it."""
    rnd = random.Random(seed)
    schedules = [sweeper.Schedule(session_factory, full_every_s=3600) for _ in range(workers)]
    now, reports, skipped, swept = T0, [], 0, 0
    while now < T0 + 120 * M:
        now += timedelta(seconds=rnd.choice([5, 20, 45, 70, 130, 200]))
        action = rnd.random()
        with transaction(session_factory) as s:
            if action < 0.45:
                observe(s, source="post", category=rnd.choice(["flood", "fire"]), zone=rnd.choice("ABC"),
                        author=f"u{rnd.randrange(6)}", at=now)
            elif action < 0.55:
                reports.append(observe(s, source="utility_report", category="gas_leak", zone=rnd.choice("ABC"),
                                       author="utility:1", at=now))
            elif action < 0.65 and reports:
                alert_service.retire_evidence(s, observation_ids=[reports.pop(rnd.randrange(len(reports)))],
                                              now=now)
            elif action < 0.75:
                ids = list(s.scalars(text("SELECT id FROM alerts WHERE state = 'open' ORDER BY id")))
                if ids:
                    alert_service.acknowledge(s, alert_id=rnd.choice(ids), actor="operator:kim", note=None,
                                              now=now, rules=RULES)
            elif action < 0.8:
                alert_service.create_silence(s, matchers={"zone": rnd.choice("ABC")}, starts_at=now + 2 * M,
                                             ends_at=now + rnd.choice([4, 9]) * M, created_by="operator:kim",
                                             comment=None, now=now)
        result = rnd.choice(schedules).run_pass(rules=RULES, now=now)
        left = [i for i in unresolved(session_factory) if i not in result.due]
        if left:
            assert_a_sweep_would_leave_alone(session_factory, left, now)
        skipped += len(left)
        swept += result.swept
    assert skipped >= 25 and (workers > 1 or skipped > swept / 2), (skipped, swept)  # it skips, or proves nothing
