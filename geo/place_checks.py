"""Checks of a place's data before it serves (pure): layers cover the boundary, codes are unique, names
are not empty; and the starting rules file for the layers loaded. Geometry is shapely, EPSG:4326.

Area shares are measured in degrees²: over one city the scale varies by well under a percent, and a
share is a ratio, so no projection is needed for a check whose threshold is a few percent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

# Context levels a zone layer may play, and the gazetteer kind its zone names become: the coarse
# subdivisions of a city (NYC's boroughs, a county's districts) and the fine ones (neighbourhoods, wards).
CONTEXT_KINDS = {"borough": "borough", "district": "borough", "county": "borough",
                 "neighbourhood": "neighbourhood", "ward": "neighbourhood"}
# A layer covering less of the boundary than this is reported: alerts could never be counted elsewhere.
MIN_COVERAGE = 0.95


@dataclass(frozen=True)
class Problem:
    """One finding: `what` it is about (a layer, a names file) and the message, quoting the value."""

    what: str
    message: str
    fatal: bool = True

    def render(self) -> str:
        return f"{self.what}: {self.message}"


def coverage_share(boundary: BaseGeometry, zones: Sequence[BaseGeometry]) -> float:
    """Share of the boundary's area that the zones cover (0..1)."""
    if boundary.is_empty or boundary.area == 0:
        return 0.0
    covered = unary_union(list(zones)).intersection(boundary) if zones else None
    return 0.0 if covered is None else min(1.0, covered.area / boundary.area)


def check_layer(layer: str, boundary: BaseGeometry, records: Sequence, *, rejected: Iterable[tuple[int, str]] = (),
                min_coverage: float = MIN_COVERAGE) -> list[Problem]:
    """A zone layer's problems: no zones, duplicate codes, empty names, too little of the boundary covered
    (a warning), zones wholly outside the boundary (a warning)."""
    if not records:
        return [Problem(layer, "no zones were read")]
    out = []
    dups = sorted(code for code, n in Counter(r.code for r in records).items() if n > 1)
    dups += sorted({reason.split("'")[1] for _, reason in rejected if reason.startswith("duplicate code '")})
    if dups:
        out.append(Problem(layer, f"codes {dups[:10]} are not unique"))
    empty = [r.code for r in records if not (r.name or "").strip()]
    if empty:
        out.append(Problem(layer, f"zones {empty[:10]} have empty names"))
    share = coverage_share(boundary, [r.geometry for r in records])
    if share < min_coverage:
        out.append(Problem(layer, f"covers {share:.1%} of the boundary (< {min_coverage:.0%}): alerts can never be "
                                  "counted in the rest", fatal=False))
    outside = [r.code for r in records if not r.geometry.intersects(boundary)]
    if outside:
        out.append(Problem(layer, f"zones {outside[:10]} lie wholly outside the boundary", fatal=False))
    return out


def check_names(what: str, entries: Sequence, boundary: BaseGeometry) -> list[Problem]:
    """A names file's problems: no names, empty names, names wholly outside the boundary (a warning)."""
    if not entries:
        return [Problem(what, "no names were read")]
    out = []
    empty = [i for i, e in enumerate(entries, start=1) if not (e.name or "").strip()]
    if empty:
        out.append(Problem(what, f"entries {empty[:10]} have empty names"))
    far = [e.name for e in entries if not e.geometry.intersects(boundary.buffer(0.05))]
    if far:
        out.append(Problem(what, f"{len(far)} names lie outside the boundary, e.g. {far[:5]}", fatal=False))
    return out


def starting_rules(layers: Sequence[str], *, place: str) -> str:
    """A rules file (alerts.rules) for the layers loaded, to tune before use: a utility's gas leak report is
    critical at once, two outage reports in 10 minutes are minor, and three posts from two people about a
    fire or a flood in 10 minutes are major; in each layer."""
    lines = [f"# Starting rules for place {place!r}, written by `tocsin place init`. Tune the thresholds, check",
             "# with `tocsin rules check FILE`, then point TOCSIN_RULES_FILE at it.", "rules:"]
    for layer in layers:
        lines += [
            f"  - name: {layer}_gas_leak_report",
            "    categories: [gas_leak]", "    sources: [utility_report]", f"    layer: {layer}",
            "    immediate: true", "    severity: critical",
            f"  - name: {layer}_outage_cluster",
            "    categories: [power_outage]", "    sources: [utility_report]", f"    layer: {layer}",
            "    window: 10m", "    min_count: 2", "    severity: minor",
        ]
        for category in ("fire", "flood"):  # one rule each: an alert is filed under its rule's first category
            lines += [f"  - name: {layer}_{category}_posts",
                      f"    categories: [{category}]", "    sources: [post]", f"    layer: {layer}",
                      "    window: 10m", "    min_count: 3", "    min_distinct_authors: 2", "    severity: major"]
    return "\n".join(lines) + "\n"
