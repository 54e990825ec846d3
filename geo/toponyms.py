"""Every place name in a text, each resolved to one gazetteer reading (pure).

`geo.geotag` answers "where is this post about?" with one place or none. Longer texts (news articles, the
geoparsing evaluation) need every mention: `toponyms()` uses the same `GazetteerIndex` matching, then
resolves each mention on its own with a simple, documented score:

- a prior for the kind, plus a population whisker (the index's `priority_bonus`, scaled up here because
  world gazetteers hold many small namesakes);
- the document's regions: countries, states and capitals named anywhere in the text, and the regions of
  unambiguous mentions, vote for readings in the same region ("Paris" near "Texas" is Paris, Texas);
- a qualifier right after the name ("Springfield, Illinois" or "Springfield, IL") decides strongly;
- `bounds` (w, s, e, n), when given, prefers readings inside the jurisdiction.

A country reading is placed at the centre of the bounding box of the gazetteer's own places in that
country, not at the entry's point (the world gazetteer puts a country at its capital): readers and
gold corpora mean the country as a whole, and Ankara is 250 km from the middle of Turkey. A state that
the index knows only as a context region ("Texas", "Kentucky") is placed the same way, from its places.

In case-informative text a mention must start with a capital letter or a digit, since news and posts
capitalise proper names ("turkey sandwich" is not Turkey). Coordinates are EPSG:4326, lon then lat.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from geo.gazetteer import GazetteerIndex

_PRIOR = {"country": 0.6, "state": 0.55, "city": 0.55, "borough": 0.6, "neighbourhood": 0.6, "zip": 0.5,
          "station": 0.6, "landmark": 0.6, "street": 0.5}
_QUALIFIER_RE = re.compile(r"\s*,\s*([A-Z]{2})\b")
_WORD_BEFORE_RE = re.compile(r"([A-Z][\w'’.-]*) $")  # a capitalised word right before the mention
_WORD_AFTER_RE = re.compile(r" ([A-Z][\w'’-]*)")
# Capitalised words that name places somewhere but are far more often something else in running text.
_NOT_PLACES = frozenset({
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "police", "university", "federal", "central", "union", "bank", "green", "republic", "officer", "most", "to",
    "of", "the", "college", "hospital", "church", "river", "national", "mission", "independence", "liberty",
    "victory", "progress", "hope", "providence", "reading", "mobile", "split", "nice", "bath", "deal",
})
_US_STATES = frozenset("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
                       "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split())


@dataclass(frozen=True)
class Toponym:
    """One place name in a text and the reading chosen for it."""

    start: int  # character offsets in the original text
    end: int
    text: str
    name: str  # the gazetteer entry's name
    kind: str
    lon: float
    lat: float
    score: float
    entry_id: int | None  # None for a state known only as a context region


def _agrees(region: str | None, other: str | None) -> bool:
    if not region or not other:
        return False
    return region == other or region.startswith(other + "-") or other.startswith(region + "-")


@lru_cache(maxsize=4)
def _region_centres(index: GazetteerIndex) -> dict[str, tuple[float, float]]:
    """Region code ("TR", "US-TX") -> (lon, lat) centre of the bounding box of the index's places there."""
    lons: dict[str, list[float]] = {}
    lats: dict[str, list[float]] = {}
    for e, (lon, lat) in zip(index.entries, index.rep_lonlat):
        if e.kind != "country" and e.region:
            for code in {e.region, e.region.split("-")[0]}:
                lons.setdefault(code, []).append(lon)
                lats.setdefault(code, []).append(lat)
    out = {}
    for cc, xs in lons.items():
        west, east = min(xs), max(xs)
        if east - west > 180:  # spans the antimeridian (Fiji, Russia's far east): measure eastwards
            xs = [x + 360 if x < 0 else x for x in xs]
            west, east = min(xs), max(xs)
        lon = (west + east) / 2
        out[cc] = (lon - 360 if lon > 180 else lon, (min(lats[cc]) + max(lats[cc])) / 2)
    return out


def _sentence_start(text: str, at: int) -> bool:
    head = text[max(0, at - 3):at].rstrip()
    return at == 0 or not head or head[-1] in ".!?:\n\"'“‘"


def toponyms(text: str, index: GazetteerIndex, *, bounds: tuple[float, float, float, float] | None = None,
             min_score: float = 0.5) -> list[Toponym]:
    """All place names found in `text` with their best reading, in text order; weak readings are dropped."""
    mentions, _toks, _starts, _ends = index.find(text)
    if not mentions:
        return []
    case_informative = text != text.lower() and text != text.upper()
    # Regions the document talks about: context names, and mentions with a single reading.
    doc_regions: Counter[str] = Counter()
    for m in mentions:
        if m.context_region:
            doc_regions[m.context_region] += 1
        elif len(m.entry_ids) == 1 and index.entries[m.entry_ids[0]].region:
            doc_regions[index.entries[m.entry_ids[0]].region] += 1
    out = []
    for i, m in enumerate(mentions):
        first = text[m.start]
        if case_informative and not (first.isupper() or first.isdigit()):
            continue
        if m.key in _NOT_PLACES:
            continue
        if not m.entry_ids:
            centre = _region_centres(index).get(m.context_region) if m.context_region and "-" in m.context_region \
                else None
            if centre is not None:
                out.append(Toponym(m.start, m.end, text[m.start:m.end], text[m.start:m.end], "state", *centre,
                                   _PRIOR["state"], None))
            continue
        nxt = mentions[i + 1] if i + 1 < len(mentions) else None
        prev = mentions[i - 1] if i > 0 else None
        # Part of a longer proper name we do not know ("European Union", "Plymouth County", "Ocean City")?
        before = _WORD_BEFORE_RE.search(text, max(0, m.start - 40), m.start)
        after = _WORD_AFTER_RE.match(text, m.end)
        longer_name = (
            (before is not None and not (prev is not None and prev.end == before.end())
             and not _sentence_start(text, before.start()))
            or (after is not None and not (nxt is not None and nxt.start == after.start(1))))
        sentence_start = _sentence_start(text, m.start)
        # "Paris, Texas" / "Paris, TX": the qualifier right after the name.
        qualifier = None
        if nxt is not None and nxt.context_region and not text[m.end:nxt.start].strip(" ,"):
            qualifier = nxt.context_region
        else:
            q = _QUALIFIER_RE.match(text, m.end)
            if q and q.group(1) in _US_STATES:
                qualifier = "US-" + q.group(1)
        best = None
        for eid in m.entry_ids:
            entry = index.entries[eid]
            score = _PRIOR.get(entry.kind, 0.5) + 5 * index.priority_bonus[eid]
            if longer_name:
                score -= 0.3
            if sentence_start and m.first_token == m.last_token:
                score -= 0.05  # "Most ...", "Reading the report": a capital that says nothing
            if qualifier is not None:
                score += 0.3 if _agrees(entry.region, qualifier) else -0.5
            votes = sum(n for region, n in doc_regions.items() if _agrees(entry.region, region))
            if m.context_region and _agrees(entry.region, m.context_region):
                votes -= 1  # a country or capital does not vote for itself
            score += 0.1 * math.log2(1 + max(votes, 0))
            lon, lat = index.rep_lonlat[eid]
            if bounds is not None:
                w, s, e, n = bounds
                score += 0.1 if (w <= lon <= e and s <= lat <= n) else -0.2
            if best is None or score > best[0]:
                best = (score, eid, lon, lat)
        score, eid, lon, lat = best
        if score < min_score:
            continue
        entry = index.entries[eid]
        if entry.kind == "country" and entry.code:
            lon, lat = _region_centres(index).get(entry.code, (lon, lat))
        out.append(Toponym(m.start, m.end, text[m.start:m.end], entry.name, entry.kind, lon, lat, round(score, 3), eid))
    return out
