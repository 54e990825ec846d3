"""Incident classification of post text against a YAML lexicon (pure)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CATEGORIES = (
    "fire", "flood", "water_main", "gas_leak", "power_outage",
    "collision", "violence", "medical", "structural", "hazmat",
)
NONE = "none"
_ORDER = {c: i for i, c in enumerate(CATEGORIES)}  # ties go to the earlier category
DEFAULT_LEXICON = Path(__file__).resolve().parents[1] / "data" / "lexicon.yaml"

# Entry kinds; a matched entry consumes its tokens whatever its kind.
TERM, NEGATION, BREAK, DAMPEN, BLOCK = "term", "negation", "break", "dampen", "block"
_BREAKS = tuple(".!?;:,()\n")  # punctuation tokens that end a clause

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"(?<!\w)@\w+(?:[.-]\w+)*")  # Bluesky handles are dotted
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_TOKEN = re.compile(r"\w+|[.!?;:,()\n]")
_ODD_APOSTROPHES = ("\u2019", "\u2018", "\u00b4", "`")


@dataclass(frozen=True)
class Classification:
    """The incident category of one text, or "none"."""

    category: str  # one of CATEGORIES or "none"
    confidence: float  # 0-1; for "none", how sure we are that no incident is reported
    matched: tuple[str, ...]  # the lexicon phrases that scored for the category


_NOTHING = Classification(NONE, 1.0, ())  # shared by the many posts that match no term


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    """One compiled lexicon phrase, keyed by its first token."""

    phrase: str
    size: int  # number of tokens
    kind: str
    scores: tuple[tuple[str, float], ...] = ()  # (category, weight) for TERM
    factor: float = 1.0  # score multiplier for DAMPEN


# For one first token: (phrase size, {tokens after the first: entry}), longest size first.
_Candidates = tuple[tuple[int, dict[tuple[str, ...], _Entry]], ...]


@dataclass(frozen=True)
class Lexicon:
    """A compiled lexicon: phrase entries indexed by first token, then by the rest."""

    entries: Mapping[str, _Candidates] = field(repr=False)
    threshold: float
    window: int
    continue_tokens: frozenset[str]
    vocab: frozenset[str] = field(repr=False)  # every token of every phrase, for hashtag splitting


def tokens(text: str, vocab: frozenset[str] = frozenset()) -> list[str]:
    """Normalise text and split it into word tokens and clause-break punctuation."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        for mark in _ODD_APOSTROPHES:
            if mark in text:
                text = text.replace(mark, "'")
    # Guarded so the common plain post skips each regex pass.
    if "://" in text or "www." in text:
        text = _URL.sub(" ", text)
    if "@" in text:
        text = _MENTION.sub(" ", text)
    if "#" in text:
        text = _HASHTAG.sub(lambda m: _hashtag_words(m.group(1), vocab), text)
    text = text.lower()
    if "'" in text:
        text = text.replace("'", "")
    return _TOKEN.findall(text)


def _hashtag_words(body: str, vocab: frozenset[str]) -> str:
    """Split a hashtag into words: by case ("NYCFire"), else on lexicon words ("nycfire")."""
    if "_" in body:
        return " " + body.replace("_", " ") + " "
    if not (body.islower() or body.isupper()):
        return " " + " ".join(_CAMEL.findall(body)) + " "
    word = body.lower()
    return " " + (word if word in vocab else " ".join(_segment(word, vocab))) + " "


def _segment(word: str, vocab: frozenset[str]) -> list[str]:
    """Peel the longest known word (3+ letters) off the end of word, recursively."""
    for i in range(1, len(word) - 2):
        if word[i:] in vocab:
            head = word[:i]
            return ([head] if head in vocab or len(head) < 3 else _segment(head, vocab)) + [word[i:]]
    return [word]


def classify(text: str, lexicon: Lexicon) -> Classification:
    """Classify one post text into an incident category or "none"."""
    scores, matched, factor = _score(tuple(tokens(text, lexicon.vocab)), lexicon)
    if not scores:
        return _NOTHING
    if len(scores) == 1:
        best = next(iter(scores))
    else:
        best = max(scores, key=lambda c: (scores[c], -_ORDER[c]))
    top = scores[best] * factor
    if top < lexicon.threshold:
        return Classification(NONE, round(math.exp(-max(top, 0.0)), 3), ())
    positive = sum(s for s in scores.values() if s > 0) * factor
    confidence = (1.0 - math.exp(-top)) * (top / positive)
    return Classification(best, round(confidence, 3), tuple(matched[best]))


def _score(
    toks: tuple[str, ...], lexicon: Lexicon,
) -> tuple[dict[str, float], dict[str, list[str]], float]:
    """Scan tokens once: category scores, phrases per category, and the dampening factor."""
    entries, window = lexicon.entries, lexicon.window
    scores: dict[str, float] = {}
    matched: dict[str, list[str]] = {}
    factor = 1.0
    negated_until = -1
    n = len(toks)
    resume = 0  # first token not consumed by an earlier match
    for i in [i for i, t in enumerate(toks) if t in entries]:
        if i < resume:
            continue
        for size, by_rest in entries[toks[i]]:
            e = by_rest.get(toks[i + 1:i + size])
            if e is not None:
                break
        else:
            continue
        resume = end = i + e.size
        kind = e.kind
        if kind is TERM:
            if i <= negated_until:
                follows = toks[end] if end < n else ""
                negated_until = end + window - 1 if follows in lexicon.continue_tokens else -1
            else:
                for cat, w in e.scores:
                    scores[cat] = scores.get(cat, 0.0) + w
                    matched.setdefault(cat, []).append(e.phrase)
        elif kind is NEGATION:
            negated_until = end + window - 1
        elif kind is BREAK:
            negated_until = -1
        elif kind is DAMPEN:
            factor = min(factor, e.factor)
    return scores, matched, factor


def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """Read and compile a lexicon YAML file (default: data/lexicon.yaml in the repo)."""
    path = Path(path) if path is not None else DEFAULT_LEXICON
    with path.open(encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    return compile_lexicon(raw, source=str(path))


def compile_lexicon(raw: Any, *, source: str = "<lexicon>") -> Lexicon:
    """Compile a parsed lexicon mapping (see data/lexicon.yaml for the format)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("categories"), Mapping):
        raise ValueError(f"lexicon {source} needs a 'categories' mapping, got {type(raw).__name__}")
    neg = raw.get("negation") or {}
    window = neg.get("window", 4)
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"negation window {window!r} in {source} must be an integer >= 1")
    threshold = _number(raw.get("threshold", 1.0), "threshold", source)
    if threshold <= 0:
        raise ValueError(f"threshold {threshold!r} in {source} must be > 0")

    kinds: dict[tuple[str, ...], str] = {}
    scores: dict[tuple[str, ...], dict[str, float]] = {}
    factors: dict[tuple[str, ...], float] = {}

    def add(phrase: Any, kind: str) -> tuple[str, ...]:
        if not isinstance(phrase, str):  # YAML turns a bare no/on/yes into a bool
            raise ValueError(f"phrase {phrase!r} in {source} must be a string; quote it")
        toks = tuple(tokens(phrase))
        if not toks or any(t in _BREAKS for t in toks):
            raise ValueError(f"phrase {phrase!r} in {source} must be words without punctuation")
        if kinds.setdefault(toks, kind) != kind:
            raise ValueError(f"phrase {phrase!r} in {source} is both {kinds[toks]} and {kind}")
        return toks

    for cat, terms in raw["categories"].items():
        if cat not in CATEGORIES:
            raise ValueError(f"unknown category {cat!r} in {source}; expected one of {CATEGORIES}")
        if not isinstance(terms, Mapping):
            raise ValueError(f"category {cat!r} in {source} must map phrases to weights, got {terms!r}")
        for phrase, weight in terms.items():
            per_cat = scores.setdefault(add(phrase, TERM), {})
            per_cat[cat] = per_cat.get(cat, 0.0) + _number(weight, f"weight of {phrase!r}", source)
    for cue in neg.get("cues", []):
        add(cue, NEGATION)
    for word in neg.get("breaks", []):
        add(word, BREAK)
    for mark in _BREAKS:
        kinds[(mark,)] = BREAK
    for phrase in [*neg.get("neutral", []), *raw.get("figurative", [])]:
        add(phrase, BLOCK)
    for group, spec in (raw.get("dampeners") or {}).items():
        factor = _number(spec.get("factor"), f"factor of dampener {group!r}", source)
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"factor {factor!r} of dampener {group!r} in {source} must be in [0, 1]")
        for cue in spec.get("cues", []):
            toks = add(cue, DAMPEN)
            factors[toks] = min(factor, factors.get(toks, 1.0))

    index: dict[str, dict[int, dict[tuple[str, ...], _Entry]]] = {}
    for toks, kind in kinds.items():
        entry = _Entry(" ".join(toks), len(toks), kind, tuple(scores.get(toks, {}).items()),
                       factors.get(toks, 1.0))
        index.setdefault(toks[0], {}).setdefault(len(toks), {})[toks[1:]] = entry
    return Lexicon(
        entries={first: tuple(sorted(by_size.items(), reverse=True)) for first, by_size in index.items()},
        threshold=threshold,
        window=window,
        continue_tokens=frozenset(str(w) for w in neg.get("continue", [])),
        vocab=frozenset(t for toks in kinds for t in toks if t not in _BREAKS),
    )


def _number(value: Any, what: str, source: str) -> float:
    """Return value as a float, or raise naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} {value!r} in {source} is not a number")
    return float(value)
