"""Agencies sharing a control room: what each covers, who belongs to which, and what a caller may see.

An agency covers categories (none listed: every category) in zones (none listed: every zone). An operator
sees and acts on the alerts any of their agencies covers; an admin sees everything. While a site defines no
agency at all, every operator sees everything (a single-agency control room needs no setup); once one exists,
an operator in no agency sees nothing until given one (fail closed: a forgotten assignment must not show fire
crews the police's alerts).

`Coverage` is the one answer to "may this caller see it", as a Python predicate (the live feed, the SMS
fan-out) and as one SQL fragment (`Coverage.sql`) every read path adds to its WHERE; they agree case by case
(tests/integration/test_agencies.py).
"""

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from accounts import sessions
from accounts.models import Agency, Operator, OperatorAgency
from db.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_CATEGORY = re.compile(r"^[a-z_]{1,32}$")
AGENCIES_CHANGED = "agencies changed"  # why an operator's sessions ended
GRANTS_PARAM = "coverage_grants"

Zone = tuple[str, str]  # (layer, zone code)


@dataclass(frozen=True)
class Grant:
    """One agency's coverage: categories (empty: all) in zones (empty: all)."""

    agency: str
    categories: frozenset[str] = frozenset()
    zones: frozenset[Zone] = frozenset()

    def covers(self, category: str | None, zones: Iterable[Zone]) -> bool:
        """Whether this agency covers `category` in any of `zones` (an alert has one zone, an observation
        lies in any number)."""
        if self.categories and category not in self.categories:
            return False
        return not self.zones or not self.zones.isdisjoint(zones)


@dataclass(frozen=True)
class Coverage:
    """What a caller may see: everything (admins; everyone while no agency exists), or what its grants cover."""

    grants: tuple[Grant, ...] = ()
    everything: bool = True
    agencies: tuple[str, ...] = field(default=())  # the caller's agencies by name, for display

    def covers(self, category: str | None, zones: Iterable[Zone]) -> bool:
        if self.everything:
            return True
        zones = frozenset(zones)
        return any(g.covers(category, zones) for g in self.grants)

    def covers_alert(self, *, category: str, layer: str, code: str) -> bool:
        return self.covers(category, ((layer, code),))

    def audit_label(self, *, category: str, layer: str, code: str) -> str | None:
        """The caller's agencies that cover this alert, comma-separated, for its history (None: no agency)."""
        names = [g.agency for g in self.grants if g.covers(category, ((layer, code),))]
        return ",".join(names) or (",".join(self.agencies) or None)

    def sql(self, *, category: str, zone_test: str) -> tuple[str, dict[str, Any]]:
        """A WHERE fragment and its parameters: true for rows this caller may see.

        `category` is the row's category expression; `zone_test` an expression true when the row lies in one
        of the zones of `{zones}`, a JSON array of {"layer", "code"} objects: an alert tests
        `{zones} @> jsonb_build_array(jsonb_build_object('layer', l.name, 'code', z.code))`."""
        if self.everything:
            return "TRUE", {}
        if not self.grants:
            return "FALSE", {}
        zones = "cov.g->'zones'"
        fragment = (
            f"EXISTS (SELECT 1 FROM jsonb_array_elements(CAST(:{GRANTS_PARAM} AS jsonb)) AS cov(g) "
            f"WHERE (jsonb_array_length(cov.g->'categories') = 0 "
            f"OR cov.g->'categories' @> to_jsonb(CAST({category} AS text))) "
            f"AND (jsonb_array_length({zones}) = 0 OR {zone_test.format(zones=zones)}))"
        )
        return fragment, {GRANTS_PARAM: grants_json(self.grants)}

    def silence_within(self, matchers: dict[str, str]) -> bool:
        """Whether a silence with these matchers mutes only alerts this caller covers (so it may create or
        expire it): some agency covers its category, and its layer and zone when that agency lists zones."""
        if self.everything:
            return True
        return any((not g.categories or matchers.get("category") in g.categories)
                   and (not g.zones or (matchers.get("layer"), matchers.get("zone")) in g.zones)
                   for g in self.grants)

    def silence_overlaps(self, matchers: dict[str, str]) -> bool:
        """Whether a silence could mute an alert this caller covers (so it is shown to them)."""
        if self.everything:
            return True
        category, layer, zone = matchers.get("category"), matchers.get("layer"), matchers.get("zone")
        return any((not g.categories or category is None or category in g.categories)
                   and (not g.zones or any((layer is None or layer == zl) and (zone is None or zone == zc)
                                           for zl, zc in g.zones))
                   for g in self.grants)


EVERYTHING = Coverage()


def grants_json(grants: Sequence[Grant]) -> str:
    return json.dumps([{"categories": sorted(g.categories),
                        "zones": [{"layer": layer, "code": code} for layer, code in sorted(g.zones)]}
                       for g in grants])


def _grant(agency: Agency) -> Grant:
    return Grant(agency.name, frozenset(agency.categories or ()),
                 frozenset((z["layer"], z["code"]) for z in agency.zones or ()))


def coverage_of(session: Session, *, operator_id: int, role: str) -> Coverage:
    """What an operator may see: one query over the (few) agencies, marking the operator's."""
    rows = session.execute(
        select(Agency, OperatorAgency.operator_id).outerjoin(
            OperatorAgency, (OperatorAgency.agency_id == Agency.id) & (OperatorAgency.operator_id == operator_id))
        .order_by(Agency.name)).all()
    grants = tuple(_grant(a) for a, member in rows if member is not None)
    return Coverage(grants=grants, everything=role == "admin" or not rows,
                    agencies=tuple(g.agency for g in grants))


# --- configuration

def parse_zone(spec: str) -> Zone:
    """'district:A' -> ('district', 'A')."""
    layer, sep, code = spec.strip().partition(":")
    if not sep or not layer.strip() or not code.strip():
        raise InvalidInput(f"zone {spec!r} is not LAYER:CODE, e.g. district:A", field="zones")
    return layer.strip(), code.strip()


def _check(name: str, categories: Sequence[str]) -> None:
    if not _NAME.match(name):
        raise InvalidInput(f"agency name {name!r} must be 1-64 letters, digits, space, '.', '_' or '-', "
                           "starting with a letter or digit", field="name")
    bad = next((c for c in categories if not _CATEGORY.match(c)), None)
    if bad is not None:
        raise InvalidInput(f"category {bad!r} must be 1-32 lowercase letters or '_'", field="categories")


def add_agency(session: Session, *, name: str, categories: Sequence[str] = (), zones: Sequence[Zone] = (),
               now: datetime) -> Agency:
    """Create an agency covering `categories` (empty: all) in `zones` (empty: all)."""
    _check(name, categories)
    if session.scalar(select(Agency).where(Agency.name == name)) is not None:
        raise Conflict(f"agency {name!r} already exists", name=name)
    agency = Agency(name=name, categories=sorted(set(categories)),
                    zones=[{"layer": layer, "code": code} for layer, code in sorted(set(zones))], created_at=now)
    session.add(agency)
    session.flush()
    log.info("agency %s added", agency.id)
    return agency


def list_agencies(session: Session) -> list[Agency]:
    return list(session.scalars(select(Agency).order_by(Agency.name)))


def get_agency(session: Session, name: str) -> Agency:
    agency = session.scalar(select(Agency).where(Agency.name == name))
    if agency is None:
        raise NotFound(f"agency {name!r} does not exist", name=name)
    return agency


def agency_ids(session: Session, names: Iterable[str]) -> list[int]:
    """The ids of agencies named, in order; NotFound naming the first unknown one."""
    wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    found = dict(session.execute(select(Agency.name, Agency.id).where(Agency.name.in_(wanted))).all())
    missing = [n for n in wanted if n not in found]
    if missing:
        raise NotFound(f"agency {missing[0]!r} does not exist (tocsin agencies list)", name=missing[0])
    return [found[n] for n in wanted]


def members(session: Session, agency_id: int) -> list[int]:
    return list(session.scalars(select(OperatorAgency.operator_id).where(OperatorAgency.agency_id == agency_id)))


def delete_agency(session: Session, *, name: str, now: datetime) -> None:
    """Remove an agency; its operators' sessions end (what they may see changed), memberships go with it."""
    agency = get_agency(session, name)
    for operator_id in members(session, agency.id):
        sessions.revoke_operator_sessions(session, operator_id=operator_id, now=now, reason=AGENCIES_CHANGED)
    session.delete(agency)
    session.flush()
    log.info("agency %s deleted", agency.id)


def set_operator_agencies(session: Session, *, name: str, agencies: Iterable[str], now: datetime) -> list[str]:
    """Make an operator's agencies exactly `agencies` (names); their sessions end when that changes, as for a
    role change, so an open live map reconnects with what it may now see. Returns the names, sorted."""
    operator = session.scalar(select(Operator).where(Operator.name == name))
    if operator is None:
        raise NotFound(f"operator {name!r} does not exist", name=name)
    ids = set(agency_ids(session, agencies))
    current = set(session.scalars(select(OperatorAgency.agency_id).where(OperatorAgency.operator_id == operator.id)))
    if ids != current:
        session.execute(delete(OperatorAgency).where(OperatorAgency.operator_id == operator.id))
        session.add_all(OperatorAgency(operator_id=operator.id, agency_id=i) for i in sorted(ids))
        session.flush()
        sessions.revoke_operator_sessions(session, operator_id=operator.id, now=now, reason=AGENCIES_CHANGED)
        log.info("operator %s agencies set to %s", operator.id, sorted(ids))
    return sorted(session.scalars(select(Agency.name).where(Agency.id.in_(ids))))


def operator_agency_names(session: Session) -> dict[int, list[str]]:
    """Each operator's agencies by name (operators in none are absent)."""
    out: dict[int, list[str]] = {}
    rows = session.execute(select(OperatorAgency.operator_id, Agency.name)
                           .join(Agency, Agency.id == OperatorAgency.agency_id).order_by(Agency.name))
    for operator_id, agency in rows:
        out.setdefault(operator_id, []).append(agency)
    return out


def grants_by_id(session: Session, ids: Iterable[int]) -> dict[int, Grant]:
    """What each of these agencies covers (the SMS fan-out's responders' agencies)."""
    return {a.id: _grant(a) for a in session.scalars(select(Agency).where(Agency.id.in_(list(ids))))}


def zone_layers_in_use(session: Session) -> list[str]:
    """The zone layers some agency's zones name: where the live feed must place observations."""
    return sorted({z["layer"] for zones in session.scalars(select(Agency.zones)) for z in zones or ()})


def any_agency(session: Session) -> bool:
    return session.scalar(select(Agency.id).limit(1)) is not None
