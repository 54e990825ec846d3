"""The hand-written NYC posts (tests/data/nyc_posts.jsonl) with the demo gazetteer and the lexicon.

The gazetteer is the demo's (neighbourhoods, boroughs, ZIPs) plus, when the shared data folder has them,
City Planning's arterials and major streets, the city's Points of Interest, subway stations and firehouses,
read through the same importers as `tocsin gazetteer import-streets/import-landmarks` (geo.street_import).

- within 1 km: among posts whose true location is known, the share geotagged to a point within 1 km of it
  (a refusal counts as a miss);
- located: among the same posts (they name a place), the share geotagged at all;
- refused: among posts that name no place, the share the geotagger refused;
- category macro-F1 over every label seen (the ten categories and "none"), via ingest.posts.classify_metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

POSTS = Path(__file__).resolve().parents[2] / "tests" / "data" / "nyc_posts.jsonl"
GEO_TEST = POSTS.with_name("geo_test.jsonl")  # street/landmark posts, never tuned on
GEO_DEV = POSTS.with_name("geo_dev.jsonl")  # street/landmark posts, tuned on


@dataclass(frozen=True)
class NycScore:
    located: int  # posts whose true location is known (they name a place)
    within_1km: int
    unplaced: int
    refused: int
    category_macro_f1: float
    per_label: list  # ingest.posts.classify_metrics.LabelScore
    found: int = 0  # of `located`, how many the geotagger placed anywhere
    streets: str = ""  # what street data the gazetteer had

    @property
    def within_1km_share(self) -> float:
        return self.within_1km / self.located if self.located else 0.0

    @property
    def located_share(self) -> float:
        return self.found / self.located if self.located else 0.0


def street_entries(data_dir: Path | None) -> tuple[list, str]:
    """Streets and landmarks from the shared data folder, when present, and a note of what was read."""
    from geo.street_import import read_landmarks, read_streets

    if data_dir is None:
        return [], "none"
    nyc = data_dir / "nyc"
    files = {
        "streets": nyc / "streets" / "DCM_ArterialsMajorStreets.shp",
        "poi": nyc / "streets" / "nyc_points_of_interest_doitt.csv",
        "stations": nyc / "gazetteer" / "MTA_subway_Stations.csv",
        "firehouses": nyc / "gazetteer" / "FDNY_Firehouse_Listing.csv",
    }
    out, read = [], []
    if files["streets"].exists():
        out += read_streets(files["streets"], region="US-NY")
        read.append("streets")
    if files["poi"].exists():
        out += read_landmarks(files["poi"], preset="nyc-poi", region="US-NY")
        read.append("poi")
    if files["stations"].exists():
        out += read_landmarks(files["stations"], name_col="Stop Name", kind="station", region="US-NY",
                              code_col="Daytime Routes")
        read.append("stations")
    if files["firehouses"].exists():
        out += read_landmarks(files["firehouses"], region="US-NY")
        read.append("firehouses")
    return out, "+".join(read) or "none"


def build_index(data_dir: Path | None):
    """The demo gazetteer plus the shared street data (geo.gazetteer_store.build_index derives crossings)."""
    from geo import gazetteer_builders
    from geo.gazetteer_store import build_index as build

    extra, note = street_entries(data_dir)
    return build(gazetteer_builders.build_demo_entries() + extra), note


@dataclass(frozen=True)
class GeoSetScore:
    name: str
    n: int
    found: int
    within_1km: int

    @property
    def located_share(self) -> float:
        return self.found / self.n if self.n else 0.0

    @property
    def within_share(self) -> float:
        return self.within_1km / self.found if self.found else 0.0


def score_geo_set(path: Path, index, name: str) -> GeoSetScore:
    """Street/landmark posts with known coordinates (tests/data/geo_test.jsonl, geo_dev.jsonl): the share
    located, and the share of those located within 1 km."""
    from geo import gazetteer_builders
    from geo.distance import haversine_m
    from geo.geotag import geotag

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    found = within = 0
    for row in rows:
        tag = geotag(row["text"], index, bounds=gazetteer_builders.NYC_BBOX)
        if tag is None:
            continue
        found += 1
        within += haversine_m(tag.point.x, tag.point.y, row["lon"], row["lat"]) <= 1000
    return GeoSetScore(name, len(rows), found, within)


def run(lexicon, data_dir: Path | None = None, index=None, note: str = "") -> NycScore:
    from geo import gazetteer_builders
    from geo.distance import haversine_m
    from geo.geotag import geotag
    from ingest.posts.classify import classify
    from ingest.posts.classify_metrics import macro_f1, per_label

    rows = [json.loads(line) for line in POSTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    if index is None:
        index, note = build_index(data_dir)
    located = within = unplaced = refused = found = 0
    pairs = []
    for row in rows:
        tag = geotag(row["text"], index, bounds=gazetteer_builders.NYC_BBOX)
        if row.get("lon") is not None:
            located += 1
            found += tag is not None
            if tag is not None and haversine_m(tag.point.x, tag.point.y, row["lon"], row["lat"]) <= 1000:
                within += 1
        elif row.get("place") is None:
            unplaced += 1
            refused += tag is None
        pairs.append((row["category"], classify(row["text"], lexicon).category))
    return NycScore(located, within, unplaced, refused, macro_f1(pairs), per_label(pairs), found, note)
