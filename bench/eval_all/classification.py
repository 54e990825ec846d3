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

Per event (`relevance_by_event`): every CrisisLex event on its own, with its type (T26 from its
event_description.json, T6 from its file name) and whether that type is in Tocsin's taxonomy (floods,
fires, explosions, collapses, shootings, bombings, crashes; not earthquakes, storms, haze or meteors).
Leave-one-event-out: the pooled relevance F1 over the in-taxonomy events with each one left out in
turn, so a gain on one event cannot hide a loss on the others (the lexicon is not learned from these
events, so this measures spread, not overfitting of a trained model).
"""

from __future__ import annotations

import json
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
    from ingest.posts.classify import NONE, classify

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
    from ingest.posts.classify import classify

    path = data_dir / "disaster_response_messages" / "disaster_response_validation.csv"
    if not path.exists():
        return None
    rows = corpora.csv_rows(path)
    predicted = [classify(r["message"], lexicon).category for r in rows]
    return [count(cat, ((any(r.get(c) == "1" for c in cols), p == cat) for r, p in zip(rows, predicted)))
            for cat, cols in DRM_MAPPING.items()]


# Event types (lower case, matched as substrings) that map to a Tocsin category.
IN_TAXONOMY = ("flood", "fire", "explosion", "collapse", "shooting", "bombing", "crash", "derail")


@dataclass(frozen=True)
class EventCounts:
    event: str
    type: str
    in_taxonomy: bool
    counts: Counts


def _event_type(csv_path: Path, event: str) -> str:
    desc = csv_path.with_name(f"{event}-event_description.json")
    if desc.exists():
        try:
            return json.loads(desc.read_text(encoding="utf-8"))["categorization"]["type"]
        except (ValueError, KeyError, TypeError):
            pass
    return event.split("_")[-1]  # T6: "2013_Alberta_Floods" -> "Floods"


def relevance_by_event(data_dir: Path, lexicon) -> list[EventCounts] | None:
    """Relevance counts per CrisisLex event (T6 then T26); None when the folder is absent."""
    root = data_dir / "crisislex"
    if not root.is_dir():
        return None
    out = []
    for f in sorted((root / "T6").glob("*.csv")):
        event = f.stem.removesuffix("-ontopic_offtopic")
        pairs = [(r["label"] == "on-topic", _relevant(r["tweet"], lexicon)) for r in corpora.csv_rows(f)
                 if r.get("label")]
        out.append((f, event, pairs))
    for f in sorted((root / "T26").glob("*-tweets_labeled.csv")):
        event = f.stem.removesuffix("-tweets_labeled")
        pairs = [(r["Informativeness"] == "Related and informative", _relevant(r["Tweet Text"], lexicon))
                 for r in corpora.csv_rows(f)
                 if r.get("Informativeness") and r["Informativeness"] != "Not applicable"]
        out.append((f, event, pairs))
    result = []
    for f, event, pairs in out:
        kind = _event_type(f, event)
        result.append(EventCounts(event, kind, any(k in kind.lower() for k in IN_TAXONOMY), count(event, pairs)))
    return result


def pooled(counts: list[Counts], name: str = "pooled") -> Counts:
    return sum(counts[1:], counts[0]) if counts else Counts(name, 0, 0, 0, 0)


def leave_one_event_out(events: list[EventCounts]) -> list[tuple[str, float]]:
    """(left-out event, pooled F1 of the other in-taxonomy events), for each in-taxonomy event."""
    inside = [e for e in events if e.in_taxonomy]
    return [(e.event, pooled([o.counts for o in inside if o is not e]).f1) for e in inside if len(inside) > 1]
