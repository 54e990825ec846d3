"""Street-level phrases between gazetteer mentions: intersections, blocks and "near" crossings (pure).

`geo.geotag` finds the mentions; this module reads what joins neighbouring street mentions:
- an intersection: "X and Y", "X & Y", "X/Y", "X at Y", "X @ Y", "X y Y", "corner of X and Y";
- a street near a cross street: "X near Y", "X by Y", "X off Y" (the crossing, a little less sure of
  the exact spot);
- a block: "on X between Y and Z" (the stretch of X from its crossing with Y to its crossing with Z).
Each street name may have several entries (one per borough); every pair of entries that meets gives a
candidate, and the geotagger's agreement step (a neighbourhood or borough named in the post) and
ambiguity step choose among them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry

from geo.distance import haversine_m
from geo.gazetteer import GazetteerIndex, Mention
from geo.streets import segment_between

INTERSECTION_UNCERTAINTY_M = 50.0
NEAR_UNCERTAINTY_M = 150.0
_AND = frozenset({"and", "&", "/", "at", "@", "x", "n", "and the", "y", "at the corner of", "on the corner of"})
_NEAR = frozenset({"near", "by", "off", "just off", "near the", "close to", "right off", "by the"})
_BETWEEN = frozenset({"between", "btw", "btwn", "b/w", "from"})
_BETWEEN_AND = frozenset({"and", "&", "to"})
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class StreetFind:
    """A street-level reading spanning several mentions."""

    kind: str  # intersection | block
    start: int  # character span in the text
    end: int
    first_token: int
    geometry: BaseGeometry
    radius_m: float
    entry_id: int  # the first street's entry (its region)
    spread_m: float  # how far apart the points of a repeated crossing lie (0 for one point)


def _gap(text: str, a: Mention, b: Mention) -> str:
    return _SPACES.sub(" ", text[a.end:b.start].strip().lower())


def _streets(index: GazetteerIndex, m: Mention) -> list[int]:
    return [e for e in m.entry_ids if index.entries[e].kind == "street"]


def _spread_m(g: BaseGeometry) -> float:
    if g.geom_type == "Point":
        return 0.0
    w, s, e, n = g.bounds
    return haversine_m(w, s, e, n)


_BARE_SUFFIXES = ("st", "ave", "blvd", "rd", "pkwy", "pl", "dr", "hwy", "expy", "tpke")
_JOIN_TOKENS = frozenset({"and", "at", "x", "n", "y"})
_NOT_STREETS = frozenset({"the", "a", "an", "my", "our", "this", "that", "la", "el", "and", "at", "on", "in", "is",
                          "near", "by", "of", "to", "corner", "just"})


def _bare(index: GazetteerIndex, toks: list[str], i: int, j: int) -> tuple[int, ...]:
    """Streets named by toks[i:j] without their type ("flatbush" -> Flatbush Ave, "42" -> 42 St)."""
    if i < 0 or j > len(toks) or i >= j or toks[i] in _NOT_STREETS or toks[j - 1] in _NOT_STREETS:
        return ()
    key = " ".join(toks[i:j])
    found = index.street_keys.get(key, ())
    for suf in _BARE_SUFFIXES:
        found += index.street_keys.get(f"{key} {suf}", ())
    return found


def _joined(text: str, starts: list[int], ends: list[int], toks: list[str], left: int, right: int) -> int | None:
    """Token position after the joiner that follows token `left` ("and", "&", "/", "@", "at"), or None."""
    t = left + 1
    if t < len(toks) and toks[t] in _JOIN_TOKENS:
        t += 1
    elif not (t < len(toks) and text[ends[left]:starts[t]].strip() in ("/", "@", "&")):
        return None
    if t < len(toks) and toks[t] == "the":
        t += 1
    return t if t < right else None


def bare_finds(text: str, toks: list[str], starts: list[int], ends: list[int], mentions: list[Mention],
               index: GazetteerIndex) -> list[StreetFind]:
    """Intersections where one street (or both) is written without its type: "Atlantic and Flatbush",
    "5th and 42nd", "Park Ave & 42nd". Only pairs whose lines meet count, so a word that happens to be a
    street name elsewhere in the city costs nothing."""
    out: list[StreetFind] = []
    # Tokens of street mentions are read by street_finds; a word that is only an area ("Flatbush") may
    # still be a bare street name here, and the intersection then outranks the area.
    taken = {t for m in mentions if _streets(index, m) for t in range(m.first_token, m.last_token + 1)}
    n = len(toks)
    # A street mention followed by a bare cross street, and a bare street followed by a street mention.
    for m in mentions:
        sa = _streets(index, m)
        if sa:
            t = _joined(text, starts, ends, toks, m.last_token, n)
            if t is not None and t not in taken:
                for length in (3, 2, 1):
                    sb = _bare(index, toks, t, t + length)
                    if sb and not taken.intersection(range(t, t + length)):
                        out += _pairs(index, sa, sb, m.start, ends[t + length - 1], m.first_token)
                        break
    # Both bare: "5th and 42nd", "atlantic & flatbush".
    for t in range(1, n - 1):
        if toks[t] not in _JOIN_TOKENS:
            continue
        for la in (2, 1):
            if taken.intersection(range(t - la, t)):
                continue
            sa = _bare(index, toks, t - la, t)
            if not sa:
                continue
            right = t + 2 if t + 1 < n and toks[t + 1] == "the" else t + 1
            found = None
            for lb in (2, 1):
                if right + lb <= n and not taken.intersection(range(right, right + lb)):
                    sb = _bare(index, toks, right, right + lb)
                    if sb:
                        found = (sb, ends[right + lb - 1])
                        break
            if found is not None:
                out += _pairs(index, sa, found[0], starts[t - la], found[1], t - la)
                break
    return out


def may_have_bare(toks: list[str], index: GazetteerIndex) -> bool:
    """Cheap test before bare_finds on a post with no mention: a joiner between two words that begin or
    end street names."""
    words = index.street_words
    return any(toks[t] in _JOIN_TOKENS and toks[t - 1] in words and toks[t + 1] in words
               for t in range(1, len(toks) - 1))


def _pairs(index: GazetteerIndex, sa, sb, start: int, end: int, first_token: int) -> list[StreetFind]:
    out = []
    for ea in sa:
        for eb in sb:
            if ea == eb:
                continue
            pt = index.crossing(ea, eb)
            if pt is not None:
                spread = _spread_m(pt)
                out.append(StreetFind("intersection", start, end, first_token, pt,
                                      INTERSECTION_UNCERTAINTY_M + spread / 2, ea, spread))
    return out


def street_finds(text: str, mentions: list[Mention], index: GazetteerIndex) -> list[StreetFind]:
    """Intersections, near-crossings and blocks among consecutive mentions."""
    out: list[StreetFind] = []
    for k in range(len(mentions) - 1):
        a, b = mentions[k], mentions[k + 1]
        gap = _gap(text, a, b)
        sa = _streets(index, a)
        if not sa:
            continue
        sb = _streets(index, b)
        if gap in _BETWEEN and k + 2 < len(mentions) and _gap(text, b, mentions[k + 2]) in _BETWEEN_AND:
            c = mentions[k + 2]
            out.extend(_blocks(index, a, sa, sb, _streets(index, c), c.end))
            continue
        if gap in _AND or gap in _NEAR:
            radius = INTERSECTION_UNCERTAINTY_M if gap in _AND else NEAR_UNCERTAINTY_M
            for ea in sa:
                for eb in sb:
                    pt = index.crossing(ea, eb)
                    if pt is None:
                        continue
                    spread = _spread_m(pt)
                    out.append(StreetFind("intersection", a.start, b.end, a.first_token, pt,
                                          radius + spread / 2, ea, spread))
    return out


def _blocks(index: GazetteerIndex, a: Mention, sa: list[int], sb: list[int], sc: list[int], end: int
            ) -> list[StreetFind]:
    out = []
    for ea in sa:
        for eb in sb:
            pb = index.crossing(ea, eb)
            if pb is None:
                continue
            for ec in sc:
                pc = index.crossing(ea, ec)
                if pc is None:
                    continue
                seg = segment_between(index.entries[ea].geometry, pb, pc)
                if seg is None:
                    continue
                line, half_m = seg
                out.append(StreetFind("block", a.start, end, a.first_token, line,
                                      max(half_m, INTERSECTION_UNCERTAINTY_M), ea, 0.0))
    return out


def house_number_before(toks: list[str], first_token: int) -> bool:
    """A house number right before a street name ("350 5th Ave"): one to five digits, not a year."""
    if first_token == 0:
        return False
    t = toks[first_token - 1]
    return t.isdigit() and len(t) <= 5 and not (len(t) == 4 and t.startswith(("19", "20")))


def line_half_length_m(g: BaseGeometry) -> float:
    lat = g.centroid.y
    return g.length * 111_320.0 * math.cos(math.radians(lat)) / 2
