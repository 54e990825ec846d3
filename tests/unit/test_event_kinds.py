"""Event kinds are documented from the code: docs/mqtt.md's table of kinds (and their reasons) is
`EventKind`, docs/sms.md's paging kinds are the fan-out's; and every kind's payload has the same fields."""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts import events
from alerts.events import EventKind, Tick
from dispatch.fanout import ROUTABLE_KINDS

DOCS = Path(__file__).resolve().parents[2] / "docs"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def table_after(text: str, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table whose header row starts with `header`."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.replace(" ", "").startswith(header.replace(" ", ""))),
                 None)
    assert start is not None, f"no table with header {header!r}"
    rows = []
    for line in lines[start + 2:]:  # past the header and its |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def documented_kinds() -> dict[str, list[str]]:
    """docs/mqtt.md's event kinds, each with its reasons."""
    rows = table_after((DOCS / "mqtt.md").read_text(), "| Kind | Reason |")
    kinds = [ticked(row[0]) for row in rows]
    assert all(len(k) == 1 for k in kinds), f"each row names one kind: {kinds}"
    names = [k[0] for k in kinds]
    assert len(names) == len(set(names)), f"a kind is listed twice: {names}"
    return {name: sorted(ticked(row[1])) for name, row in zip(names, rows)}


def test_the_mqtt_docs_list_exactly_the_kinds_the_code_emits():
    assert set(documented_kinds()) == {k.value for k in EventKind}


def test_the_mqtt_docs_give_each_kind_its_reasons():
    assert documented_kinds() == {k.value: sorted(events.reasons_for(k)) for k in EventKind}


def test_the_sms_docs_list_the_kinds_that_page():
    found = re.search(r"For each alert event that may page \(([^)]*)\)", (DOCS / "sms.md").read_text())
    assert found is not None
    assert set(ticked(found.group(1))) == {k.value for k in ROUTABLE_KINDS}
    assert {EventKind.ACKNOWLEDGED, EventKind.RESOLVED}.isdisjoint(ROUTABLE_KINDS)


def test_every_reason_that_notifies_names_a_kind_and_every_kind_has_a_reason():
    assert all(isinstance(k, EventKind) for k in events.KIND_FOR_REASON.values())
    assert all(events.reasons_for(k) for k in EventKind)


@dataclass
class _Alert:
    id: int = 7
    rule: str = "gas_leak_report"
    state: str = "open"
    severity: str = "critical"
    category: str = "gas_leak"
    evidence_count: int = 2
    distinct_authors: int = 2
    opened_at: datetime = T0
    updated_at: datetime = T0
    expires_at: datetime | None = T0 + timedelta(hours=6)
    ack_code: str = "NMC"


def build(kind, tick=None, *, reason=None, **kw):
    return events.payload(event_id=uuid.uuid4(), kind=kind, reason=reason or events.reasons_for(kind)[0],
                          alert=_Alert(), zone={"layer": "district", "code": "A", "name": "District A"},
                          evidence_by_source={"utility_report": 1, "post": 1}, silenced=False, tick=tick,
                          **{"rules": {}, **kw})


TICK = Tick(tick=1, escalate_after_s=300.0, minutes_since_open=6.0)
TICK_FIELDS = {"tick", "tier_due", "minutes_since_open", "escalate_after_s"}


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_has_the_same_fields(kind):
    body = build(kind, TICK if kind is EventKind.ESCALATION_TICK else None)
    opened = build(EventKind.OPENED)
    extra = TICK_FIELDS if kind is EventKind.ESCALATION_TICK else set()
    assert set(body) == set(opened) | extra
    assert body["kind"] == kind.value and type(body["kind"]) is str


def test_a_tick_adds_its_figures_and_the_rest_as_every_event():
    body = build(EventKind.ESCALATION_TICK, TICK, rules={"gas_leak_posts": "major", "gas_leak_report": "critical"})
    assert (body["tick"], body["tier_due"], body["minutes_since_open"], body["escalate_after_s"]) == (1, 2, 6.0, 300.0)
    assert body["evidence_by_source"] == {"post": 1, "utility_report": 1}  # sorted by source
    assert body["rules"] == [{"rule": "gas_leak_posts", "severity": "major"},
                             {"rule": "gas_leak_report", "severity": "critical"}]
    assert body["reason"] == "unacknowledged" and body["silenced"] is False


def test_no_rules_recorded_means_the_leading_rule_alone():
    assert build(EventKind.OPENED)["rules"] == [{"rule": "gas_leak_report", "severity": "critical"}]


@pytest.mark.parametrize("kind, tick", [(EventKind.ESCALATION_TICK, None), (EventKind.OPENED, TICK)])
def test_a_tick_belongs_to_escalation_ticks_only(kind, tick):
    with pytest.raises(ValueError, match="tick"):
        build(kind, tick)


def test_a_kind_outside_the_enum_is_refused():
    with pytest.raises(ValueError, match="escalated"):
        build("escalated", reason="unacknowledged")
