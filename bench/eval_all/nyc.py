"""The hand-written NYC posts (tests/data/nyc_posts.jsonl) with the demo gazetteer and the lexicon.

- within 1 km: among posts whose true location is known, the share geotagged to a point within 1 km of it
  (a refusal counts as a miss);
- refused: among posts that name no place, the share the geotagger refused;
- category macro-F1 over every label seen (the ten categories and "none"), via ingest.classify_metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

POSTS = Path(__file__).resolve().parents[2] / "tests" / "data" / "nyc_posts.jsonl"


@dataclass(frozen=True)
class NycScore:
    located: int
    within_1km: int
    unplaced: int
    refused: int
    category_macro_f1: float
    per_label: list  # ingest.classify_metrics.LabelScore

    @property
    def within_1km_share(self) -> float:
        return self.within_1km / self.located if self.located else 0.0


def run(lexicon) -> NycScore:
    from geo import gazetteer
    from geo import gazetteer_builders
    from geo.distance import haversine_m
    from geo.geotag import geotag
    from ingest.classify import classify
    from ingest.classify_metrics import macro_f1, per_label

    rows = [json.loads(line) for line in POSTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    index = gazetteer.GazetteerIndex(gazetteer_builders.build_demo_entries())
    located = within = unplaced = refused = 0
    pairs = []
    for row in rows:
        tag = geotag(row["text"], index, bounds=gazetteer_builders.NYC_BBOX)
        if row.get("lon") is not None:
            located += 1
            if tag is not None and haversine_m(tag.point.x, tag.point.y, row["lon"], row["lat"]) <= 1000:
                within += 1
        elif row.get("place") is None:
            unplaced += 1
            refused += tag is None
        pairs.append((row["category"], classify(row["text"], lexicon).category))
    return NycScore(located, within, unplaced, refused, macro_f1(pairs), per_label(pairs))
