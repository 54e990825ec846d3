"""Classification metrics over (gold, predicted) label pairs (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelScore:
    """Precision, recall and F1 of one label, with its gold support."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


def per_label(pairs: Iterable[tuple[str, str]], labels: Iterable[str] | None = None) -> list[LabelScore]:
    """Score each label; labels default to every label seen in gold or predicted, sorted."""
    tp: Counter[str] = Counter()
    gold: Counter[str] = Counter()
    pred: Counter[str] = Counter()
    for g, p in pairs:
        gold[g] += 1
        pred[p] += 1
        if g == p:
            tp[g] += 1
    wanted = sorted(gold.keys() | pred.keys()) if labels is None else list(labels)
    out = []
    for label in wanted:
        precision = tp[label] / pred[label] if pred[label] else 0.0
        recall = tp[label] / gold[label] if gold[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(LabelScore(label, precision, recall, f1, gold[label]))
    return out


def macro_f1(pairs: Iterable[tuple[str, str]], labels: Iterable[str] | None = None) -> float:
    """Unweighted mean F1 over labels (default: every label seen in gold or predicted, "none" included)."""
    scores = per_label(pairs, labels)
    if not scores:
        raise ValueError("macro_f1 needs at least one (gold, predicted) pair or label, got none")
    return sum(s.f1 for s in scores) / len(scores)
