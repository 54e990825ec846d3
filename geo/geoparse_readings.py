"""The readings of a post (pure): every gazetteer reading of each mention, ZIP code and street phrase,
each scored on the evidence around it. geo.geoparse weighs them against each other and chooses.
"""

from __future__ import annotations

from geo.gazetteer import STREET_SUFFIXES, GazetteerIndex
from geo.geoparse_words import (
    COMMON_WORDS,
    CUES,
    FIVE_DIGITS,
    NOT_ZIP_AFTER,
    SKIPPABLE,
    SPORTS,
    STATE_ABBR_RE,
    STATION_WORDS,
    US_STATES,
    ZIP_RE,
    ZIP_WORDS,
    lines_named,
)
from geo.points import representative_point
from geo.street_parse import bare_finds, house_number_before, may_have_bare, street_finds

# Prior that a mention of this kind, in a post, names that place.
_PRIOR = {"station": 0.7, "landmark": 0.7, "intersection": 0.85, "block": 0.8, "street": 0.55, "neighbourhood": 0.65,
          "zip": 0.6, "borough": 0.6, "city": 0.6, "state": 0.55, "country": 0.55}
# A house number before a street name makes it an address, and surely a street.
_ADDRESS_BONUS = 0.2
# A crossing written without street types ("5th and 42nd") is a little less sure than "5th Ave & 42nd St".
_BARE_DOUBT = 0.1
_AREAS = frozenset({"neighbourhood", "borough", "city"})
# A station whose code lists the lines that serve it (`gazetteer import-landmarks --code-col`) is lifted
# when it serves a line the post names, lowered when not.
_LINE_MATCH = 0.2


def _regions_agree(a: str | None, b: str | None) -> bool | None:
    if not a or not b:
        return None
    return a == b or a.startswith(b + "-") or b.startswith(a + "-")


def in_bounds(lon: float, lat: float, bounds) -> bool:
    """The point lies inside `bounds` (west, south, east, north)."""
    w, s, e, n = bounds
    return w <= lon <= e and s <= lat <= n


class Reading:
    """One gazetteer reading of one mention, with its running score."""

    __slots__ = ("mention", "entry_id", "kind", "score", "lon", "lat", "radius_m", "geometry", "region", "priority")

    def __init__(self, mention, entry_id, kind, score, lon, lat, radius_m, geometry, region, priority):
        self.mention, self.entry_id, self.kind, self.score = mention, entry_id, kind, score
        self.lon, self.lat, self.radius_m, self.geometry = lon, lat, radius_m, geometry
        self.region, self.priority = region, priority


class Post:
    """A post's text as the steps read it: tokens with their offsets, gazetteer mentions, ZIP codes."""

    def __init__(self, text: str, index: GazetteerIndex, bounds, mentions, toks, starts, ends, zips) -> None:
        self.text, self.index, self.bounds = text, index, bounds
        self.mentions, self.toks, self.starts, self.ends, self.zips = mentions, toks, starts, ends, zips
        self.case_informative = text != text.lower() and text != text.upper()
        self.sports_anywhere = not SPORTS.isdisjoint(toks)
        self._lines: frozenset[str] | None = None

    def cue_before(self, first: int) -> bool:
        """A cue word ("in", "near", "power out") before token `first`, skipping "the" and "of"."""
        j = first - 1
        while j >= 0 and self.toks[j] in SKIPPABLE:
            j -= 1
        return j >= 0 and self.toks[j] in CUES

    @property
    def lines(self) -> frozenset[str]:
        """Transit lines the post names (read when a station reading asks)."""
        if self._lines is None:
            self._lines = lines_named(self.text)
        return self._lines


def read_post(text: str, index: GazetteerIndex, bounds) -> Post | None:
    """The post's mentions and ZIP codes; None when it names nothing the gazetteer could place."""
    mentions, toks, starts, ends = index.find(text)
    zips = list(ZIP_RE.finditer(text)) if index.zip_codes and FIVE_DIGITS(text) else []
    if not mentions and not zips and not (index.has_streets and may_have_bare(toks, index)):
        return None
    if starts is None:
        starts, ends = index.offsets(text)
    return Post(text, index, bounds, mentions, toks, starts, ends, zips)


def mention_readings(post: Post, mi: int, m) -> list[Reading]:
    """Every gazetteer reading of mention `mi`, each scored on the evidence around it."""
    text, toks, starts, ends, index = post.text, post.toks, post.starts, post.ends, post.index
    nxt = ""
    if m.last_token + 1 < len(toks) and not text[m.end:starts[m.last_token + 1]].strip():
        nxt = toks[m.last_token + 1]  # the next word, unless punctuation separates them
    cue = post.cue_before(m.first_token)
    cap = text[m.start].isupper() or text[m.start].isdigit()
    # A capital at the start of a sentence says nothing about the word.
    sentence_start = not text[:m.start].rstrip() or text[:m.start].rstrip()[-1] in ".!?:\n\"'"
    common = m.key in COMMON_WORDS
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
        if longer_name and nxt not in STREET_SUFFIXES and not (kind == "station" and nxt in STATION_WORDS):
            score -= 0.45  # ("St George Terminal" is the station St George)
        if kind == "street" and house_number_before(toks, m.first_token):
            kind = "address"
            score += _ADDRESS_BONUS
        if kind == "station":
            score += _station_evidence(post, m, entry, nxt, named_area or named_street)
        elif kind == "landmark" and named_area and nxt not in STATION_WORDS:
            score -= 0.2  # "Park Slope" the area over a playground of that name
        if kind not in ("station", "landmark"):
            if nxt in ("fc", "afc"):
                score -= 0.6
            elif post.sports_anywhere:
                score -= 0.25
        lon, lat = index.rep_lonlat[eid]
        score += _place_evidence(post, m, entry, lon, lat)
        score += index.priority_bonus[eid]
        readings.append(Reading(mi, eid, kind, score, lon, lat, radius, entry.geometry, entry.region, entry.priority))
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
    if post.toks[m.last_token] in STREET_SUFFIXES and nxt not in STATION_WORDS:
        score -= 0.1
    if named_place and nxt not in STATION_WORDS:
        score -= 0.2  # "Broadway" the street over the station of that name
    if entry.code and post.lines:
        score += _LINE_MATCH if post.lines.intersection(entry.code.split()) else -_LINE_MATCH
    return score


def _place_evidence(post: Post, m, entry, lon: float, lat: float) -> float:
    """The jurisdiction, a state written after the name ("Astoria, OR"), a context name that disagrees."""
    score = 0.0
    if post.bounds is not None:
        score += 0.05 if in_bounds(lon, lat, post.bounds) else -0.3
    after = STATE_ABBR_RE.match(post.text, m.end)
    if after and after.group(1) in US_STATES:
        score += 0.15 if _regions_agree(entry.region, "US-" + after.group(1)) else -0.6
    if m.context_region and _regions_agree(entry.region, m.context_region) is False:
        score -= 0.1  # the name is also a country or state ("Jamaica")
    return score


def zip_readings(post: Post) -> list[list[Reading]]:
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
        if t + 1 < len(toks) and toks[t + 1] in NOT_ZIP_AFTER:
            continue
        score = _PRIOR["zip"]
        if t > 0 and toks[t - 1] in ZIP_WORDS:
            score += 0.25
        elif post.cue_before(t) or (t > 0 and toks[t - 1] in index.zip_cues):
            score += 0.15
        lon, lat = index.rep_lonlat[eid]
        if post.bounds is not None:
            score += 0.05 if in_bounds(lon, lat, post.bounds) else -0.3
        entry = index.entries[eid]
        out.append([Reading(("zip", zm.start(), zm.end(), t), eid, "zip", score, lon, lat,
                            index.radius_m[eid], entry.geometry, entry.region, entry.priority)])
    return out


def apply_context_names(post: Post, readings_by_mention: list[list[Reading]]) -> None:
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


def street_readings(post: Post) -> list[Reading]:
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
            score += 0.05 if in_bounds(p.x, p.y, bounds) else -0.3
        out.append(Reading(("x", f.start, f.end, f.first_token), None, f.kind, score, p.x, p.y, f.radius_m,
                           f.geometry, index.entries[f.entry_id].region, 0.0))
    return out
