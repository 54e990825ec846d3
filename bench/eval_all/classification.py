"""Classifier evaluation on CrisisLexT6, CrisisLexT26 and disaster_response_messages.

Relevance: a text is predicted relevant when `classify()` gives a category other than "none".
- CrisisLexT6: gold relevant = `on-topic` (four events, about 10k tweets each).
- CrisisLexT26: gold relevant = `Related and informative` (the "informative" class; `Not applicable`
  rows are skipped).
The headline `relevance_f1` pools true/false positives and negatives over both collections.

Per category on disaster_response_messages (validation split, multi-label). A message is gold-positive for
a Tocsin category when any of its mapped columns is 1; predicted-positive when `classify()` returns it:

    fire                         -> fire
    floods                       -> flood
    electricity                  -> power_outage
    buildings                    -> structural   (damaged or collapsed buildings)
    medical_help, medical_products -> medical
    security                     -> violence     (looting, attacks, insecurity)

water_main, gas_leak, collision and hazmat have no column there (its `water` means drinking water needed,
`transport` means transport needs), so they are not scored on this set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.eval_all import corpora

DRM_MAPPING = {
    "fire": ("fire",),
    "flood": ("floods",),
    "power_outage": ("electricity",),
    "structural": ("buildings",),
    "medical": ("medical_help", "medical_products"),
    "violence": ("security",),
}


@dataclass(frozen=True)
class Counts:
    name: str
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    def __add__(self, other: Counts) -> Counts:
        return Counts(f"{self.name}+{other.name}", self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                      self.tn + other.tn)


def count(name: str, pairs) -> Counts:
    """Counts from (gold: bool, predicted: bool) pairs."""
    tp = fp = fn = tn = 0
    for gold, pred in pairs:
        if gold and pred:
            tp += 1
        elif pred:
            fp += 1
        elif gold:
            fn += 1
        else:
            tn += 1
    return Counts(name, tp, fp, fn, tn)


def _relevant(text: str, lexicon) -> bool:
    from ingest.classify import NONE, classify

    return classify(text, lexicon).category != NONE


def relevance(data_dir: Path, lexicon) -> list[Counts] | None:
    """Relevance counts for T6 and T26; None when the CrisisLex folder is absent."""
    root = data_dir / "crisislex"
    if not root.is_dir():
        return None
    t6 = [(r["label"] == "on-topic", _relevant(r["tweet"], lexicon))
          for f in sorted((root / "T6").glob("*.csv")) for r in corpora.csv_rows(f) if r.get("label")]
    t26 = [(r["Informativeness"] == "Related and informative", _relevant(r["Tweet Text"], lexicon))
           for f in sorted((root / "T26").glob("*.csv")) for r in corpora.csv_rows(f)
           if r.get("Informativeness") and r["Informativeness"] != "Not applicable"]
    return [count("CrisisLexT6 on-topic", t6), count("CrisisLexT26 informative", t26)]


def per_category(data_dir: Path, lexicon) -> list[Counts] | None:
    """Per-category counts on disaster_response_messages; None when the folder is absent."""
    from ingest.classify import classify

    path = data_dir / "disaster_response_messages" / "disaster_response_validation.csv"
    if not path.exists():
        return None
    rows = corpora.csv_rows(path)
    predicted = [classify(r["message"], lexicon).category for r in rows]
    return [count(cat, ((any(r.get(c) == "1" for c in cols), p == cat) for r, p in zip(rows, predicted)))
            for cat, cols in DRM_MAPPING.items()]
