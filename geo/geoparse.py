"""Locate a post from its text (pure): the scoring behind geo.geotag, in steps one can test alone.

Text scoring, in brief. Each gazetteer reading of a mention starts from a prior for its kind and
moves with evidence: a cue word before it ("in", "near"), capitalisation, the jurisdiction
(`bounds`), a qualifier after it ("Astoria, Oregon"), sports context ("Chelsea FC"), a street
suffix after a neighbourhood name ("Jamaica Ave" is never Jamaica), agreement with the post's other
mentions ("Astoria, Queens"; "Broadway" in the borough the post names) and ambiguity between far-apart
readings. Street-level phrases (intersections, blocks, house numbers) are read by geo.street_parse.
The most specific confident reading wins (landmark/station > intersection/block > address >
neighbourhood > street > zip > borough); a street that agrees with a coarser area the post names is
returned as its stretch inside that area. Below `min_confidence` the answer is None: no place is better
than a wrong one. Uncertainty follows the kind: an intersection tens of metres, a block or street half
its length, a landmark its footprint (or a small radius for a point).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from geo.distance import haversine_m
from geo.gazetteer import STREET_SUFFIXES, GazetteerIndex
from geo.geotag_inputs import valid_lonlat
from geo.points import representative_point
from geo.street_parse import (
    INTERSECTION_UNCERTAINTY_M,
    bare_finds,
    house_number_before,
    line_half_length_m,
    may_have_bare,
    street_finds,
)

# Prior that a mention of this kind, in a post, names that place.
_PRIOR = {"station": 0.7, "landmark": 0.7, "intersection": 0.85, "block": 0.8, "street": 0.55, "neighbourhood": 0.65,
          "zip": 0.6, "borough": 0.6, "city": 0.6, "state": 0.55, "country": 0.55}
# Specificity: among confident readings the finer one wins.
_RANK = {"station": 6, "landmark": 6, "intersection": 5, "block": 5, "address": 4, "neighbourhood": 3, "street": 2.8,
         "zip": 2.5,
         "city": 2, "borough": 1, "state": 0.5, "country": 0}
_CUES = frozenset({"in", "at", "near", "on", "from", "around", "outside", "inside", "across", "off", "along", "by",
                   "behind", "corner", "over", "through", "throughout",
                   # an outage word right before the name: "power out Ridgewood", "blackout Astoria"
                   "out", "down", "outage", "outages", "blackout", "dark"})
# A house number before a street name makes it an address, and surely a street.
_ADDRESS_BONUS = 0.2
# Lines and multipoints up to this uncertainty keep their shape (ingest.posts.zones.POINT_RADIUS_M).
_SHAPE_KEPT_M = 300.0
# A crossing written without street types ("5th and 42nd") is a little less sure than "5th Ave & 42nd St".
_BARE_DOUBT = 0.1
_SKIPPABLE = frozenset({"the", "of"})
_SPORTS = frozenset({"fc", "afc", "vs", "v", "match", "league", "premier", "epl", "striker", "midfielder",
                     "transfer", "kickoff", "derby", "goalkeeper", "manager", "squad"})
_STATION_WORDS = frozenset({"station", "stop", "subway", "train", "platform", "terminal"})
_AREAS = frozenset({"neighbourhood", "borough", "city"})
# Two lines this close are one thing named twice (a street's pieces in two boroughs), in degrees (~100 m).
_LINES_TOUCH_DEG = 0.0012
# Place names that are also everyday words or first names: written in lower case they are probably not places.
_COMMON_WORDS = frozenset({
    "orange", "corona", "madison", "union", "melrose", "hillside", "sunnyside", "woodside", "bayside",
    "harrison", "elizabeth", "linden", "garfield", "kensington", "chelsea", "jamaica", "downtown", "midtown",
    "roosevelt", "springfield", "hollis", "lincoln", "flatiron", "wakefield", "oakwood", "belmont", "highbridge",
    "longwood", "norwood", "tremont", "richmond", "clearview", "hillcrest", "woodlawn", "steinway", "bloomfield",
    "rosedale", "glendale", "ridgewood", "bayswater", "flushing", "big apple", "the battery", "soho", "bk",
    "inwood", "fordham", "parkchester", "riverdale", "belle harbor", "seagate", "sea gate", "brighton beach",
    "gravesend", "kingsbridge", "allerton", "arverne", "edgemere", "travis", "stapleton", "annadale", "paterson",
})
_ZIP_RE = re.compile(r"(?<![\w$#@/.,:-])(\d{5})(?:-\d{4})?(?![\w$%]|[.,:]\d)")
_FIVE_DIGITS = re.compile(r"\d{5}").search
_ZIP_WORDS = frozenset({"zip", "zipcode", "postcode", "code"})
_NOT_ZIP_AFTER = frozenset({"people", "dollars", "usd", "likes", "views", "followers", "votes", "times", "years",
                            "feet", "ft", "miles", "residents", "customers", "homes", "households", "meters", "calls",
                            "gallons", "acres", "units", "pounds", "lbs", "kg", "tons", "reports"})
_STATE_ABBR_RE = re.compile(r"\s*,\s*([A-Z]{2})\b")
_US_STATES = frozenset("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
                       "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split())
# "40.6413,-73.7781" pasted from a map: decimal degrees with at least three decimals, lat first by convention.
_TEXT_COORDS_RE = re.compile(r"(?<![\w.])(-?\d{1,3}\.\d{3,})\s*[,;/ ]\s*(-?\d{1,3}\.\d{3,})(?![\w.])")
TEXT_COORDINATE_UNCERTAINTY_M = 25.0
# Transit lines named in a post: "the A train", "2/3 line", "on the 6 local", "(N/Q/R/W)". Letters count
# in capitals only ("a train" is any train). A station whose code lists the lines that serve it
# (`gazetteer import-landmarks --code-col`) is lifted when it serves a named line, lowered when not.
_LINES_RE = re.compile(r"(?<![\w/])((?:[A-Z]|\d{1,2})(?:\s*/\s*(?:[A-Z]|\d{1,2}))*)\s*(?:trains?|lines?|local|express)\b"
                       r"|\(((?:[A-Z]|\d{1,2})(?:\s*/\s*(?:[A-Z]|\d{1,2}))+)\)")
_LINE_MATCH = 0.2


@dataclass(frozen=True)
class Geotag:
    """Where a post is about. `geometry` is EPSG:4326; `uncertainty_m` is a radius in metres."""

    geometry: BaseGeometry
    uncertainty_m: float
    confidence: float
    method: str  # coordinates | place | text
    span: tuple[int, int] | None = None
    matched: str | None = None
    kind: str | None = None

    @cached_property
    def point(self) -> Point:
        """A point inside the geometry: its centroid when that falls inside, else a representative point."""
        return representative_point(self.geometry)


def _regions_agree(a: str | None, b: str | None) -> bool | None:
    if not a or not b:
        return None
    return a == b or a.startswith(b + "-") or b.startswith(a + "-")


def _in_bounds(lon: float, lat: float, bounds) -> bool:
    w, s, e, n = bounds
    return w <= lon <= e and s <= lat <= n


class _Reading:
    """One gazetteer reading of one mention, with its running score."""

    __slots__ = ("mention", "entry_id", "kind", "score", "lon", "lat", "radius_m", "geometry", "region", "priority")

    def __init__(self, mention, entry_id, kind, score, lon, lat, radius_m, geometry, region, priority):
        self.mention, self.entry_id, self.kind, self.score = mention, entry_id, kind, score
        self.lon, self.lat, self.radius_m, self.geometry = lon, lat, radius_m, geometry
        self.region, self.priority = region, priority


def _agree(a: _Reading, b: _Reading) -> bool:
    """Two readings describe overlapping places (near each other, or one contains the other)."""
    if haversine_m(a.lon, a.lat, b.lon, b.lat) <= a.radius_m + b.radius_m:
        return True
    if a.kind == b.kind == "street" and a.geometry.distance(b.geometry) <= _LINES_TOUCH_DEG:
        return True
    for big, small in ((a, b), (b, a)):
        g = big.geometry
        if g.geom_type in ("Polygon", "MultiPolygon"):
            w, s, e, n = g.bounds
            if w <= small.lon <= e and s <= small.lat <= n:
                shapely.prepare(g)
                if shapely.contains_xy(g, small.lon, small.lat):
                    return True
    return False


def lines_named(text: str) -> frozenset[str]:
    """Transit lines a post names ("the A train", "2/3 line", "(N/Q)")."""
    out: set[str] = set()
    for m in _LINES_RE.finditer(text):
        out.update(x.strip() for x in (m.group(1) or m.group(2)).split("/"))
    return frozenset(out)


def _coordinates_in_text(text: str, bounds) -> Geotag | None:
    """Decimal coordinates written in the text, read lat, lon unless only lon, lat makes sense."""
    for m in _TEXT_COORDS_RE.finditer(text):
        a, b = float(m.group(1)), float(m.group(2))
        options = [(b, a), (a, b)]  # (lon, lat): "lat, lon" first
        options = [(lon, lat) for lon, lat in options if valid_lonlat(lon, lat) and abs(lat) <= 90]
        if bounds is not None and any(_in_bounds(lon, lat, bounds) for lon, lat in options):
            options = [o for o in options if _in_bounds(o[0], o[1], bounds)]
        if options:
            lon, lat = options[0]
            return Geotag(Point(lon, lat), TEXT_COORDINATE_UNCERTAINTY_M, 0.95, "text", m.span(), m.group(), "coordinates")
    return None


def geoparse(
    text: str,
    index: GazetteerIndex,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    min_confidence: float = 0.5,
) -> Geotag | None:
    """Locate a post from its text alone (see the module docstring for the scoring), in steps:
    coordinates written in the text; the readings of each mention, ZIP code and street phrase; context
    names; ambiguity and agreement; the choice; a street narrowed to the area the post names."""
    if "." in text:
        found = _coordinates_in_text(text, bounds)
        if found is not None:
            return found
    post = read_post(text, index, bounds)
    if post is None:
        return None
    readings = [r for mi, m in enumerate(post.mentions) if m.entry_ids for r in [mention_readings(post, mi, m)]]
    readings += zip_readings(post)
    apply_context_names(post, readings)
    if index.has_streets:
        extra = _street_readings(post)
        if extra:
            readings.append(extra)
    best = resolve(readings, min_confidence)
    picked = choose(best, min_confidence)
    if picked is None:
        return None
    chosen, confidence = picked
    return _answer(post, chosen, best, confidence, min_confidence)


class Post:
    """A post's text as the steps read it: tokens with their offsets, gazetteer mentions, ZIP codes."""

    def __init__(self, text: str, index: GazetteerIndex, bounds, mentions, toks, starts, ends, zips) -> None:
        self.text, self.index, self.bounds = text, index, bounds
        self.mentions, self.toks, self.starts, self.ends, self.zips = mentions, toks, starts, ends, zips
        self.case_informative = text != text.lower() and text != text.upper()
        self.sports_anywhere = not _SPORTS.isdisjoint(toks)
        self._lines: frozenset[str] | None = None

    def cue_before(self, first: int) -> bool:
        """A cue word ("in", "near", "power out") before token `first`, skipping "the" and "of"."""
        j = first - 1
        while j >= 0 and self.toks[j] in _SKIPPABLE:
            j -= 1
        return j >= 0 and self.toks[j] in _CUES

    @property
    def lines(self) -> frozenset[str]:
        """Transit lines the post names (read when a station reading asks)."""
        if self._lines is None:
            self._lines = lines_named(self.text)
        return self._lines


def read_post(text: str, index: GazetteerIndex, bounds) -> Post | None:
    """The post's mentions and ZIP codes; None when it names nothing the gazetteer could place."""
    mentions, toks, starts, ends = index.find(text)
    zips = list(_ZIP_RE.finditer(text)) if index.zip_codes and _FIVE_DIGITS(text) else []
    if not mentions and not zips and not (index.has_streets and may_have_bare(toks, index)):
        return None
    if starts is None:
        starts, ends = index.offsets(text)
    return Post(text, index, bounds, mentions, toks, starts, ends, zips)


def mention_readings(post: Post, mi: int, m) -> list[_Reading]:
    """Every gazetteer reading of mention `mi`, each scored on the evidence around it."""
    text, toks, starts, ends, index = post.text, post.toks, post.starts, post.ends, post.index
    nxt = ""
    if m.last_token + 1 < len(toks) and not text[m.end:starts[m.last_token + 1]].strip():
        nxt = toks[m.last_token + 1]  # the next word, unless punctuation separates them
    cue = post.cue_before(m.first_token)
    cap = text[m.start].isupper() or text[m.start].isdigit()
    # A capital at the start of a sentence says nothing about the word.
    sentence_start = not text[:m.start].rstrip() or text[:m.start].rstrip()[-1] in ".!?:\n\"'"
    common = m.key in _COMMON_WORDS
    # "Madison Square Garden": a capitalised word right after suggests a longer name we do not know.
    longer_name = (post.case_informative and nxt and text[starts[m.last_token + 1]].isupper()
                   and not text[starts[m.last_token + 1]:ends[m.last_token + 1]].isupper()
                   and not any(o.first_token == m.last_token + 1 for o in post.mentions))
    kinds = {index.entries[e].kind for e in m.entry_ids}
    named_area, named_street = not kinds.isdisjoint(_AREAS), "street" in kinds
    readings = []
    for eid in m.entry_ids:
        entry = index.entries[eid]
        kind = entry.kind
        if nxt in STREET_SUFFIXES and kind not in ("street", "station"):
            continue  # "Jamaica Ave" is a street and "Brooklyn Bridge" a bridge: never the area
        score = _PRIOR.get(kind, 0.5)
        radius = index.radius_m[eid]
        if kind == "street" and radius > 1_000:
            score -= 0.1  # a long street is a poor location on its own
        score += _case_and_cue(post, cue=cue, cap=cap, sentence_start=sentence_start, common=common)
        if longer_name and nxt not in STREET_SUFFIXES and not (kind == "station" and nxt in _STATION_WORDS):
            score -= 0.45  # ("St George Terminal" is the station St George)
        if kind == "street" and house_number_before(toks, m.first_token):
            kind = "address"
            score += _ADDRESS_BONUS
        if kind == "station":
            score += _station_evidence(post, m, entry, nxt, named_area or named_street)
        elif kind == "landmark" and named_area and nxt not in _STATION_WORDS:
            score -= 0.2  # "Park Slope" the area over a playground of that name
        if kind not in ("station", "landmark"):
            if nxt in ("fc", "afc"):
                score -= 0.6
            elif post.sports_anywhere:
                score -= 0.25
        lon, lat = index.rep_lonlat[eid]
        score += _place_evidence(post, m, entry, lon, lat)
        score += index.priority_bonus[eid]
        readings.append(_Reading(mi, eid, kind, score, lon, lat, radius, entry.geometry, entry.region, entry.priority))
    return readings


def _case_and_cue(post: Post, *, cue: bool, cap: bool, sentence_start: bool, common: bool) -> float:
    """A cue word before the name lifts it; an everyday word in lower case ("my toilet is flushing") not."""
    score = 0.0
    if cue:
        score += 0.15
    elif common:
        score -= 0.25  # "Corona cases rising", "my toilet is flushing"
    if post.case_informative and not sentence_start:
        if cap:
            score += 0.05
        else:
            score -= 0.3 if common else 0.2
    elif not cap and common:
        score -= 0.1
    return score


def _station_evidence(post: Post, m, entry, nxt: str, named_place: bool) -> float:
    """A station named like a street ("Kings Hwy") is the street unless "station" follows; a station is
    the one serving a line the post names ("125 St on the A train")."""
    score = 0.0
    if post.toks[m.last_token] in STREET_SUFFIXES and nxt not in _STATION_WORDS:
        score -= 0.1
    if named_place and nxt not in _STATION_WORDS:
        score -= 0.2  # "Broadway" the street over the station of that name
    if entry.code and post.lines:
        score += _LINE_MATCH if post.lines.intersection(entry.code.split()) else -_LINE_MATCH
    return score


def _place_evidence(post: Post, m, entry, lon: float, lat: float) -> float:
    """The jurisdiction, a state written after the name ("Astoria, OR"), a context name that disagrees."""
    score = 0.0
    if post.bounds is not None:
        score += 0.05 if _in_bounds(lon, lat, post.bounds) else -0.3
    after = _STATE_ABBR_RE.match(post.text, m.end)
    if after and after.group(1) in _US_STATES:
        score += 0.15 if _regions_agree(entry.region, "US-" + after.group(1)) else -0.6
    if m.context_region and _regions_agree(entry.region, m.context_region) is False:
        score -= 0.1  # the name is also a country or state ("Jamaica")
    return score


def zip_readings(post: Post) -> list[list[_Reading]]:
    """ZIP codes as readings: a five-digit number that is a known ZIP, unless a count follows it."""
    out = []
    index, toks = post.index, post.toks
    for zm in post.zips:
        eid = index.zip_codes.get(zm.group(1))
        if eid is None:
            continue
        t = next((i for i, s in enumerate(post.starts) if s == zm.start()), None)
        if t is None:
            continue
        if t + 1 < len(toks) and toks[t + 1] in _NOT_ZIP_AFTER:
            continue
        score = _PRIOR["zip"]
        if t > 0 and toks[t - 1] in _ZIP_WORDS:
            score += 0.25
        elif post.cue_before(t) or (t > 0 and toks[t - 1] in index.zip_cues):
            score += 0.15
        lon, lat = index.rep_lonlat[eid]
        if post.bounds is not None:
            score += 0.05 if _in_bounds(lon, lat, post.bounds) else -0.3
        entry = index.entries[eid]
        out.append([_Reading(("zip", zm.start(), zm.end(), t), eid, "zip", score, lon, lat,
                             index.radius_m[eid], entry.geometry, entry.region, entry.priority)])
    return out


def apply_context_names(post: Post, readings_by_mention: list[list[_Reading]]) -> None:
    """States, countries and capitals named next to a reading ("Astoria, Oregon") or elsewhere in the post
    lift the readings in that region and lower the others."""
    contexts = [(mi, m.first_token, m.last_token, m.context_region) for mi, m in enumerate(post.mentions)
                if m.context_region]
    if not contexts:
        return
    for readings in readings_by_mention:
        for r in readings:
            m = post.mentions[r.mention] if isinstance(r.mention, int) else None
            last = m.last_token if m else r.mention[3]
            for ci, cfirst, _clast, region in contexts:
                if ci == r.mention:
                    continue
                agrees = _regions_agree(r.region, region)
                if agrees is None:
                    continue
                if cfirst == last + 1:
                    r.score += 0.15 if agrees else -0.6
                elif not agrees:
                    r.score -= 0.2


def resolve(readings_by_mention: list[list[_Reading]], min_confidence: float) -> list[list[_Reading]]:
    """Ambiguity within a mention (two far-apart places that fit equally well lose), then agreement across
    mentions (the best agreeing pair lifts both: "Astoria, Queens"); each list sorted best first."""
    best = []
    for readings in readings_by_mention:
        if not readings:
            continue
        readings.sort(key=lambda r: -r.score)
        top = readings[0]
        if len(readings) > 1 and top.score - readings[1].score < 0.15 and not _agree(top, readings[1]):
            top.score -= 0.3  # two far-apart places fit equally well ("Murray Hill")
        best.append(readings)
    if len(best) > 1:
        for i, ri in enumerate(best):
            for rj in best[i + 1:]:
                if ri[0].mention == rj[0].mention:
                    continue
                pair = next(((x, y) for x in ri for y in rj
                             if x.score >= min_confidence and y.score >= min_confidence and _agree(x, y)), None)
                if pair is not None:
                    x, y = pair
                    x.score += 0.1
                    y.score += 0.1
        for readings in best:
            readings.sort(key=lambda r: -r.score)
    return best


def choose(best: list[list[_Reading]], min_confidence: float) -> tuple[_Reading, float] | None:
    """The most specific confident reading, and its confidence (lower when the post also names an unrelated
    place); None below `min_confidence`."""
    chosen = max((r[0] for r in best), key=lambda r: r.score + 0.03 * _RANK.get(r.kind, 0), default=None)
    if chosen is None:
        return None
    confidence = chosen.score
    for readings in best:
        other = readings[0]
        if other is not chosen and other.score >= min_confidence and not _agree(chosen, other):
            confidence -= 0.1  # the post names two unrelated places
            break
    confidence = min(0.99, confidence)
    return (chosen, confidence) if confidence >= min_confidence else None


def _answer(post: Post, chosen: _Reading, best: list[list[_Reading]], confidence: float,
            min_confidence: float) -> Geotag:
    text, index = post.text, post.index
    refined = _street_within_area(chosen, best, min_confidence) if index.has_streets else None
    if refined is not None:
        street, geometry, radius = refined
        m = post.mentions[street.mention]
        return Geotag(_located(geometry, radius), radius, confidence, "text", (m.start, m.end), text[m.start:m.end],
                      "street")
    if isinstance(chosen.mention, tuple):
        span = (chosen.mention[1], chosen.mention[2])
    else:
        m = post.mentions[chosen.mention]
        span = (m.start, m.end)
    return Geotag(_located(chosen.geometry, chosen.radius_m), chosen.radius_m, confidence, "text", span,
                  text[span[0]:span[1]], chosen.kind)


def _located(g: BaseGeometry, radius_m: float) -> BaseGeometry:
    """A long line or a spread of points (a street, a bridge given as points) as its central point: zone
    matching weighs a line or points 1 in every zone they touch, but a point with its uncertainty as a
    circle, so a 5 km avenue is spread over the zones along it rather than counted whole in each.
    Short ones (a block, a crossing) keep their shape."""
    if g.geom_type in ("Point", "Polygon", "MultiPolygon") or radius_m <= _SHAPE_KEPT_M:
        return g
    return representative_point(g)


def _street_readings(post: Post) -> list[_Reading]:
    """Intersections and blocks (geo.street_parse) as readings; a crossing that repeats far apart (two
    streets that meet twice) is less sure, and so is one written without street types."""
    out = []
    text, toks, mentions, index, bounds = post.text, post.toks, post.mentions, post.index, post.bounds
    finds = street_finds(text, mentions, index) if len(mentions) >= 2 else []
    bare = bare_finds(text, toks, post.starts, post.ends, mentions, index) if len(toks) >= 3 else []
    for f in finds + bare:
        score = _PRIOR[f.kind] + (0.1 if post.cue_before(f.first_token) else 0.0) - (_BARE_DOUBT if f in bare else 0.0)
        if f.spread_m > 1_000:
            score -= 0.2
        p = representative_point(f.geometry)
        if bounds is not None:
            score += 0.05 if _in_bounds(p.x, p.y, bounds) else -0.3
        out.append(_Reading(("x", f.start, f.end, f.first_token), None, f.kind, score, p.x, p.y, f.radius_m,
                            f.geometry, index.entries[f.entry_id].region, 0.0))
    return out


def _street_within_area(chosen: _Reading, best: list[list[_Reading]], min_confidence: float):
    """A confident street named with the area it runs through ("Myrtle Ave in Bushwick") is placed on its
    stretch inside the area when that is tighter than the area: (street reading, geometry, radius)."""
    g = chosen.geometry
    if chosen.kind not in ("neighbourhood", "zip", "borough", "city") or g.geom_type not in ("Polygon", "MultiPolygon"):
        return None
    for readings in best:
        for r in readings:
            if r.kind != "street" or r.score < min_confidence or not isinstance(r.mention, int):
                continue
            inside = r.geometry.intersection(g)
            if inside.is_empty or inside.geom_type not in ("LineString", "MultiLineString"):
                continue
            radius = max(line_half_length_m(inside), INTERSECTION_UNCERTAINTY_M)
            if radius < chosen.radius_m:
                return r, inside, radius
    return None
