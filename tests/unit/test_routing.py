from datetime import UTC, datetime, time, timedelta

import pytest

from dispatch.routing import Coverage, WeeklySchedule, route

T0 = datetime(2024, 6, 5, 16, 0, tzinfo=UTC)  # Wednesday 12:00 in New York (EDT)
ESC = 600  # escalate after 10 minutes

ALWAYS = None
OFFICE = WeeklySchedule.parse("mon-fri 08:00-18:00")
NIGHTS = WeeklySchedule.parse("mon-sun 22:00-06:00")


def cov(rid, tier=1, *, zones=frozenset({"QN0101"}), layers=None, on_call=ALWAYS, opted_out=False):
    return Coverage(rid, f"+1555000{rid:04d}", zones, layers, tier, on_call, opted_out)


TEAM = [cov(1, 1), cov(2, 1), cov(3, 2), cov(4, 3), cov(9, 1, zones=frozenset({"BK0202"}))]


def run(coverage=TEAM, *, at=T0, opened=T0, acknowledged=False, notified=(), esc=ESC, zone="QN0101", layer="fire_battalion"):
    return route(
        zone_id=zone, layer=layer, opened_at=opened, acknowledged=acknowledged,
        escalate_after_s=esc, coverage=coverage, already_notified=set(notified), now=at,
    )


@pytest.mark.parametrize(
    "elapsed_s, acknowledged, notified, expected",
    [
        (0, False, (), [1, 2]),  # tier 1 first
        (ESC - 1, False, (1, 2), []),  # nobody new before the timeout
        (ESC - 0.001, False, (1, 2), []),
        (ESC, False, (1, 2), [3]),  # exactly at the boundary tier 2 is due
        (ESC + 1, False, (1, 2), [3]),
        (ESC + 1, False, (), [1, 2, 3]),  # late first run: everyone due, in tier order
        (2 * ESC, False, (1, 2, 3), [4]),
        (10 * ESC, False, (1, 2, 3, 4), []),  # no tier beyond the last
        (ESC * 5, True, (1, 2), []),  # acknowledged: escalation stops
        (ESC * 5, True, (), [1, 2]),  # ... but tier 1 is still told
        (-30, False, (), [1, 2]),  # clock skew before opened_at: only tier 1
    ],
)
def test_escalation(elapsed_s, acknowledged, notified, expected):
    assert run(at=T0 + timedelta(seconds=elapsed_s), acknowledged=acknowledged, notified=notified) == expected


def test_no_escalation_without_escalate_after():
    assert run(at=T0 + timedelta(hours=5), notified=(1, 2), esc=None) == []


def test_manual_escalation_pages_the_next_tier_at_once():
    def esc_run(escalations, **kw):
        return route(zone_id="QN0101", layer="fire_battalion", opened_at=T0, acknowledged=kw.get("ack", False),
                     escalate_after_s=kw.get("esc", ESC), coverage=TEAM, already_notified={1, 2},
                     now=T0 + timedelta(seconds=60), escalations=escalations)

    assert esc_run(0) == []  # one minute in: tier 2 is not due by time
    assert esc_run(1) == [3]  # an operator escalated once: tier 2 now
    assert esc_run(2) == [3, 4]
    assert esc_run(1, esc=None) == [3]  # a rule without escalate_after still escalates by hand
    assert esc_run(1, ack=True) == []  # acknowledged: no escalation


def test_other_zone_not_paged():
    assert run(zone="BK0202") == [9]
    assert run(zone="SI0303") == []


def test_layer_coverage_and_wildcards():
    rows = [
        cov(1, zones=None, layers=frozenset({"fire_battalion"})),
        cov(2, zones=None, layers=frozenset({"utility_area"})),
        cov(3, zones=None, layers=None),  # citywide
        cov(4, zones=frozenset(), layers=None),  # empty set covers nothing
        cov(5, zones=frozenset({"QN0101"}), layers=frozenset({"utility_area"})),  # both must match
    ]
    assert run(rows) == [1, 3]


def test_opted_out_never_paged_even_via_another_row():
    rows = [cov(1, 1, opted_out=True), cov(1, 2), cov(2, 1)]
    assert run(rows, at=T0 + timedelta(hours=1)) == [2]


def test_lowest_tier_row_wins():
    rows = [cov(1, 3), cov(1, 1, zones=None, layers=frozenset({"fire_battalion"})), cov(2, 2)]
    assert run(rows) == [1]


def test_empty_tier_is_skipped():
    # Nobody in tier 1 is on call at night: tier 2 is paged at once, tier 3 after one timeout.
    night = datetime(2024, 6, 5, 4, 0, tzinfo=UTC)  # 00:00 EDT
    rows = [cov(1, 1, on_call=OFFICE), cov(2, 2), cov(3, 3)]
    assert run(rows, at=night, opened=night) == [2]
    assert run(rows, at=night + timedelta(seconds=ESC), opened=night, notified=(2,)) == [3]


def test_off_hours_responder_skipped_within_tier():
    rows = [cov(1, 1, on_call=OFFICE), cov(2, 1, on_call=NIGHTS)]
    assert run(rows, at=datetime(2024, 6, 5, 16, 0, tzinfo=UTC), opened=T0) == [1]  # 12:00 EDT
    late = datetime(2024, 6, 6, 3, 0, tzinfo=UTC)  # 23:00 EDT
    assert run(rows, at=late, opened=late) == [2]


def test_naive_times_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        run(at=datetime(2024, 6, 5, 12, 0))


def test_non_positive_escalation_rejected():
    with pytest.raises(ValueError, match="escalate_after_s"):
        run(esc=0)


def ny(*args):
    """A New York wall-clock time as UTC, for readable schedule tables."""
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)


@pytest.mark.parametrize(
    "spec, when, expected",
    [
        ("mon-fri 08:00-18:00", ny(2024, 6, 5, 8, 0), True),  # Wed, start is inclusive
        ("mon-fri 08:00-18:00", ny(2024, 6, 5, 17, 59), True),
        ("mon-fri 08:00-18:00", ny(2024, 6, 5, 18, 0), False),  # end is exclusive
        ("mon-fri 08:00-18:00", ny(2024, 6, 8, 12, 0), False),  # Saturday
        # Overnight window Friday 22:00 -> Saturday 06:00.
        ("fri 22:00-06:00", ny(2024, 6, 7, 23, 30), True),
        ("fri 22:00-06:00", ny(2024, 6, 8, 5, 59), True),  # Saturday morning, window began Friday
        ("fri 22:00-06:00", ny(2024, 6, 8, 6, 0), False),
        ("fri 22:00-06:00", ny(2024, 6, 7, 5, 0), False),  # Friday morning: Thursday has no window
        ("fri 22:00-06:00", ny(2024, 6, 8, 23, 0), False),
        ("sun 22:00-06:00", ny(2024, 6, 10, 1, 0), True),  # wraps Sunday -> Monday
        ("sat,sun 00:00-00:00", ny(2024, 6, 9, 23, 59), True),  # whole days
        ("sat,sun 00:00-24:00", ny(2024, 6, 10, 0, 0), False),
        ("mon 08:00-12:00 13:00-17:00", ny(2024, 6, 10, 12, 30), False),  # lunch gap
        ("mon 08:00-12:00 13:00-17:00", ny(2024, 6, 10, 13, 0), True),
        ("fri-mon 09:00-10:00", ny(2024, 6, 9, 9, 30), True),  # day range wrapping the week
        ("fri-mon 09:00-10:00", ny(2024, 6, 11, 9, 30), False),
    ],
)
def test_weekly_schedule(spec, when, expected):
    assert WeeklySchedule.parse(spec).is_on_call(when) is expected


@pytest.mark.parametrize(
    "utc, expected",
    [
        # DST starts Sun 2024-03-10 02:00 EST -> 03:00 EDT. Window Sat 22:00 -> Sun 06:00 local.
        (datetime(2024, 3, 10, 9, 30, tzinfo=UTC), True),  # 05:30 EDT (a fixed -05:00 would say 04:30)
        (datetime(2024, 3, 10, 10, 30, tzinfo=UTC), False),  # 06:30 EDT, off; a fixed -05:00 would say on
        (datetime(2024, 3, 10, 7, 30, tzinfo=UTC), True),  # 03:30 EDT, just after the jump
        # DST ends Sun 2024-11-03 02:00 EDT -> 01:00 EST. Window Sat 22:00 -> Sun 06:00 local.
        (datetime(2024, 11, 3, 5, 30, tzinfo=UTC), True),  # 01:30 EDT (first)
        (datetime(2024, 11, 3, 6, 30, tzinfo=UTC), True),  # 01:30 EST (repeated hour)
        (datetime(2024, 11, 3, 10, 59, tzinfo=UTC), True),  # 05:59 EST
        (datetime(2024, 11, 3, 11, 0, tzinfo=UTC), False),  # 06:00 EST
    ],
)
def test_weekly_schedule_across_dst(utc, expected):
    assert WeeklySchedule.parse("sat 22:00-06:00").is_on_call(utc) is expected


def test_schedule_in_other_timezone():
    schedule = WeeklySchedule({0: ((time(9), time(17)),)}, "Europe/London")
    assert schedule.is_on_call(datetime(2024, 6, 10, 8, 30, tzinfo=UTC))  # 09:30 BST
    assert not schedule.is_on_call(datetime(2024, 6, 10, 16, 30, tzinfo=UTC))  # 17:30 BST


@pytest.mark.parametrize("spec", ["monday 08:00-18:00", "mon 8-18", "mon 25:00-26:00", "mon"])
def test_schedule_parse_errors_quote_input(spec):
    with pytest.raises(ValueError, match="schedule clause"):
        WeeklySchedule.parse(spec)


def test_tier_must_be_positive():
    with pytest.raises(ValueError, match="tier 0"):
        cov(1, 0)
