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
from geo.gazetteer import STREET_SUFFIXES, GazetteerIndex, Mention
from geo.street_grid import same_family
from geo.crossings import reach_crossing
from geo.streets import segment_between

INTERSECTION_UNCERTAINTY_M = 50.0
NEAR_UNCERTAINTY_M = 150.0
_AND = frozenset({"and", "&", "/", "at", "@", "x", "n", "and the", "y", "at the corner of", "on the corner of",
                  "y la", "y el", "con", "con la", "esquina", "esquina con", "esq"})
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
# Words between a joiner and a bare cross street: "Flatbush and the BQE", "Roosevelt y la 82", "y calle 82".
_ARTICLES = frozenset({"the", "la", "el", "calle"})
_NOT_STREETS = frozenset({"the", "a", "an", "my", "our", "this", "that", "la", "el", "and", "at", "on", "in", "is",
                          "near", "by", "of", "to", "corner", "just"})


def _bare(index: GazetteerIndex, toks: list[str], i: int, j: int) -> tuple[int, ...]:
    """Streets named by toks[i:j] without their type ("flatbush" -> Flatbush Ave, "42" -> 42 St)."""
    if i < 0 or j > len(toks) or i >= j or toks[i] in _NOT_STREETS or toks[j - 1] in _NOT_STREETS:
        return ()
    if j < len(toks) and toks[j] in STREET_SUFFIXES:
        return ()  # "63rd Dr" has its type: it is not 63rd Street
    key = " ".join(toks[i:j])
    found = index.street_keys.get(key, ())
    for suf in _BARE_SUFFIXES:
        found += index.street_keys.get(f"{key} {suf}", ())
    return found


_NEAR_TOKENS = frozenset({"near", "by", "off"})
_BETWEEN_TOKENS = frozenset({"between", "btw", "btwn"})


def _joined(text: str, starts: list[int], ends: list[int], toks: list[str], left: int, right: int
            ) -> tuple[int, float] | None:
    """Token position after the joiner that follows token `left` ("and", "&", "/", "@", "at", "near"),
    and the doubt the joiner leaves (a corner, or near one); None when no joiner follows."""
    t = left + 1
    radius = INTERSECTION_UNCERTAINTY_M
    if t < len(toks) and toks[t] in _JOIN_TOKENS:
        t += 1
    elif t < len(toks) and toks[t] in _NEAR_TOKENS:
        t += 1
        radius = NEAR_UNCERTAINTY_M
    elif not (t < len(toks) and text[ends[left]:starts[t]].strip() in ("/", "@", "&")):
        return None
    if t < len(toks) and toks[t] in _ARTICLES:
        t += 1
    return (t, radius) if t < right else None


def bare_finds(text: str, toks: list[str], starts: list[int], ends: list[int], mentions: list[Mention],
               index: GazetteerIndex) -> list[StreetFind]:
    """Intersections and blocks where a street is written without its type: "Atlantic and Flatbush",
    "5th and 42nd", "Park Ave & 42nd", "W 57th and 11th Ave", "Amsterdam near 79th", "on 8th Ave between
    W 45th and W 46th". Only streets whose lines meet count, so a word that happens to be a street name
    elsewhere in the city costs nothing."""
    out: list[StreetFind] = []
    # Tokens of street mentions are read by street_finds; a word that is only an area ("Flatbush") may
    # still be a bare street name here, and the intersection then outranks the area.
    by_first = {m.first_token: m for m in mentions if _streets(index, m)}
    taken = {t for m in by_first.values() for t in range(m.first_token, m.last_token + 1)}
    n = len(toks)

    def bare_from(t: int) -> tuple[tuple[int, ...], int] | None:
        """A bare street starting at token t: (entries, last token)."""
        for length in (3, 2, 1):
            if t + length <= n and not taken.intersection(range(t, t + length)):
                found = _bare(index, toks, t, t + length)
                if found:
                    return found, t + length - 1
        return None

    def bare_to(t: int) -> tuple[tuple[int, ...], int] | None:
        """A bare street ending at token t: (entries, first token)."""
        for length in (3, 2, 1):
            if t - length + 1 >= 0 and not taken.intersection(range(t - length + 1, t + 1)):
                found = _bare(index, toks, t - length + 1, t + 1)
                if found:
                    return found, t - length + 1
        return None

    def street_from(t: int) -> tuple[list[int] | tuple[int, ...], int, bool] | None:
        """A street, mentioned or bare, starting at token t: (entries, last token, bare)."""
        m = by_first.get(t)
        if m is not None:
            return _streets(index, m), m.last_token, False
        found = bare_from(t)
        return (*found, True) if found else None

    for m in by_first.values():
        sa = _streets(index, m)
        # A street mention followed by a bare cross street: "Park Ave & 42nd", "Amsterdam Ave near 79th".
        joined = _joined(text, starts, ends, toks, m.last_token, n)
        if joined is not None:
            t, radius = joined
            found = bare_from(t) if t not in taken else None
            if found:
                out += _pairs(index, sa, found[0], m.start, ends[found[1]], m.first_token, radius)
        # A bare street followed by a street mention: "W 57th and 11th Ave".
        k = m.first_token - 1
        if k >= 1 and toks[k] in _ARTICLES:
            k -= 1
        if k >= 1 and (toks[k] in _JOIN_TOKENS or toks[k] in _NEAR_TOKENS):
            found = bare_to(k - 1)
            if found:
                radius = NEAR_UNCERTAINTY_M if toks[k] in _NEAR_TOKENS else INTERSECTION_UNCERTAINTY_M
                out += _pairs(index, found[0], sa, starts[found[1]], m.end, found[1], radius)
        elif k >= 1 and k == m.first_token - 1 and text[ends[k]:starts[m.first_token]].strip() in ("/", "@", "&"):
            found = bare_to(k)
            if found:
                out += _pairs(index, found[0], sa, starts[found[1]], m.end, found[1])
        # "on 8th Ave between W 45th and W 46th", either cross street bare.
        b = m.last_token + 1
        if b < n and toks[b] in _BETWEEN_TOKENS:
            first = street_from(b + 1)
            if first is not None and first[1] + 2 < n and toks[first[1] + 1] in ("and", "&", "to"):
                second = street_from(first[1] + 2)
                if second is not None and (first[2] or second[2]):
                    out += _blocks(index, m, sa, list(first[0]), list(second[0]), ends[second[1]])
    # Both bare: "5th and 42nd", "atlantic & flatbush", "Amsterdam near 79th".
    for t in range(1, n - 1):
        if toks[t] not in _JOIN_TOKENS and toks[t] not in _NEAR_TOKENS:
            continue
        radius = NEAR_UNCERTAINTY_M if toks[t] in _NEAR_TOKENS else INTERSECTION_UNCERTAINTY_M
        for la in (2, 1):
            if taken.intersection(range(t - la, t)):
                continue
            sa = _bare(index, toks, t - la, t)
            if not sa:
                continue
            right = t + 2 if t + 1 < n and toks[t + 1] in _ARTICLES else t + 1
            found = None
            for lb in (2, 1):
                if right + lb <= n and not taken.intersection(range(right, right + lb)):
                    sb = _bare(index, toks, right, right + lb)
                    if sb:
                        found = (sb, ends[right + lb - 1])
                        break
            if found is not None:
                out += _pairs(index, sa, found[0], starts[t - la], found[1], t - la, radius)
                break
    return out


def may_have_bare(toks: list[str], index: GazetteerIndex) -> bool:
    """Cheap test before bare_finds on a post with no mention: a joiner between two words that begin or
    end street names."""
    words = index.street_words
    return any((toks[t] in _JOIN_TOKENS or toks[t] in _NEAR_TOKENS) and toks[t - 1] in words
               and (toks[t + 1] in words or (toks[t + 1] in _ARTICLES and t + 2 < len(toks) and toks[t + 2] in words))
               for t in range(1, len(toks) - 1))


def _reach(index: GazetteerIndex, a: int, b: int) -> tuple[BaseGeometry, float] | None:
    """Where two streets of one borough that do not meet in the file would meet, one carried on straight
    from an end (geo.streets.reach_crossing), and how far it was carried in metres (cached on the index)."""
    ea, eb = index.entries[a], index.entries[b]
    if ea.code != eb.code or same_family(ea.name, eb.name):
        return None  # other boroughs; or "W 42 St" and "W 43 St", side by side
    pair = (a, b) if a < b else (b, a)
    if pair not in index.reach_cache:
        index.reach_cache[pair] = reach_crossing(ea.geometry, eb.geometry)
    return index.reach_cache[pair]


def _meet(index: GazetteerIndex, ea: int, eb: int) -> tuple[BaseGeometry, float, float] | None:
    """Where two street entries meet: (geometry, metres of doubt beyond a corner's, spread of a repeated
    crossing). A crossing in the file first; else one street carried on straight to the other (a file
    that has a street only in parts), a quarter of the distance carried added to the doubt."""
    pt = index.crossing(ea, eb)
    if pt is not None:
        spread = _spread_m(pt)
        return pt, spread / 2, spread
    reached = _reach(index, ea, eb)
    if reached is not None:
        return reached[0], reached[1] / 4, 0.0
    return None


def _pairs(index: GazetteerIndex, sa, sb, start: int, end: int, first_token: int,
           radius: float = INTERSECTION_UNCERTAINTY_M) -> list[StreetFind]:
    out = []
    for ea in sa:
        for eb in sb:
            if ea == eb:
                continue
            met = _meet(index, ea, eb)
            if met is not None:
                pt, doubt, spread = met
                out.append(StreetFind("intersection", start, end, first_token, pt, radius + doubt, ea, spread))
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
            out += _pairs(index, sa, sb, a.start, b.end, a.first_token, radius)
    return out


def _blocks(index: GazetteerIndex, a: Mention, sa: list[int], sb: list[int], sc: list[int], end: int
            ) -> list[StreetFind]:
    out = []
    for ea in sa:
        for eb in sb:
            mb = _meet(index, ea, eb)
            if mb is None:
                continue
            for ec in sc:
                mc = _meet(index, ea, ec)
                if mc is None:
                    continue
                pb, pc = mb[0], mc[0]
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
