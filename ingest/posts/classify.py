"""Incident classification of post text against a YAML lexicon (pure)."""

from __future__ import annotations

import functools
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
DEFAULT_LEXICON = Path(__file__).resolve().parents[2] / "data" / "lexicon.yaml"

# Entry kinds; a matched entry consumes its tokens whatever its kind.
TERM, NEGATION, BREAK, DAMPEN, BLOCK = "term", "negation", "break", "dampen", "block"
CONTEXT = "context"  # a word of a figurative-use class (song, team, phone, prices, ...)
ANCHOR = "anchor"  # incident context ("evacuated", "911", "sirens"): the post's incident words are literal
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

    category: str  # one of CATEGORIES or "none"; the primary category of a compound incident
    confidence: float  # 0-1; for "none", how sure we are that no incident is reported
    matched: tuple[str, ...]  # the lexicon phrases that scored for the category
    # Other categories that also cleared the threshold (a transformer that explodes and burns is a
    # fire first and an outage too), highest score first; never includes `category`.
    secondary: tuple[str, ...] = ()


_NOTHING = Classification(NONE, 1.0, ())  # shared by the many posts that match no term


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    """One compiled lexicon phrase, keyed by its first token."""

    phrase: str
    size: int  # number of tokens
    kind: str
    scores: tuple[tuple[str, float], ...] = ()  # (category, weight) for TERM
    factor: float = 1.0  # score multiplier for DAMPEN
    figurable: bool = False  # TERM often used figuratively: needs incident context near a CONTEXT word
    # TERM that starts with a negation cue ("no power", "not breathing"): it states an absence itself,
    # so an earlier cue does not negate it ("no heat, no lights"; "not moving, not breathing").
    absence: bool = False


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
    # category -> categories it outranks whenever both clear the threshold ("burning beats outage")
    precedence: Mapping[str, frozenset[str]] = field(default_factory=dict)
    figurative_window: int = 6  # a CONTEXT word this close (same clause) makes a figurable term figurative
    anchor: float = 1.0  # literal (non-figurable) evidence at least this strong overrides figurative context
    anchor_bonus: float = 0.0  # added to the leading literal category when an incident-context word occurs


def tokens(text: str, vocab: frozenset[str] = frozenset()) -> list[str]:
    """Normalise text and split it into word tokens and clause-break punctuation."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        for mark in _ODD_APOSTROPHES:
            if mark in text:
                text = text.replace(mark, "'")
        # Accents are optional (people often type "apagon" for "apagón"): fold them away.
        decomposed = unicodedata.normalize("NFD", text)
        if len(decomposed) != len(text):
            text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
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
    secondary: tuple[str, ...] = ()
    if len(scores) == 1:
        best = next(iter(scores))
    else:
        ranked = sorted(scores, key=lambda c: (-scores[c], _ORDER[c]))
        best = ranked[0]
        cleared = [c for c in ranked if scores[c] * factor >= lexicon.threshold]
        if len(cleared) > 1:
            # A compound incident: the category that outranks the others by precedence leads even
            # when it scored less (the fire, not the outage it caused).
            for c in cleared:
                if best in lexicon.precedence.get(c, ()):
                    best = c
            secondary = tuple(c for c in cleared if c != best)
    top = scores[best] * factor
    if top < lexicon.threshold:
        return Classification(NONE, round(math.exp(-max(top, 0.0)), 3), ())
    positive = sum(s for s in scores.values() if s > 0) * factor
    confidence = (1.0 - math.exp(-top)) * min(1.0, top / positive)
    return Classification(best, round(confidence, 3), tuple(p for _, p in sorted(matched[best])), secondary)


def _score(
    toks: tuple[str, ...], lexicon: Lexicon,
) -> tuple[dict[str, float], dict[str, list[tuple[int, str]]], float]:
    """Scan tokens once: category scores, (position, phrase) per category, and the dampening factor."""
    entries, window = lexicon.entries, lexicon.window
    scores: dict[str, float] = {}
    matched: dict[str, list[tuple[int, str]]] = {}
    factor = 1.0
    negated_until = -1
    n = len(toks)
    resume = 0  # first token not consumed by an earlier match
    clause = 0  # clause number, for figurative context
    figurable: list[tuple[int, int, _Entry]] = []  # (position, clause, entry) awaiting context
    anchored = False  # an incident-context word was seen
    contexts: list[tuple[int, int]] = []  # (position, clause) of figurative-class words
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
            if i <= negated_until and not e.absence:
                follows = toks[end] if end < n else ""
                negated_until = end + window - 1 if follows in lexicon.continue_tokens else -1
            elif e.figurable:
                figurable.append((i, clause, e))
            else:
                for cat, w in e.scores:
                    scores[cat] = scores.get(cat, 0.0) + w
                    matched.setdefault(cat, []).append((i, e.phrase))
        elif kind is NEGATION:
            negated_until = end + window - 1
        elif kind is BREAK:
            negated_until = -1
            clause += 1
        elif kind is DAMPEN:
            factor = min(factor, e.factor)
        elif kind is CONTEXT:
            contexts.append((i, clause))
        elif kind is ANCHOR:
            anchored = True
    if anchored and scores:
        # Incident context lifts a weak literal cue ("something burning ... they're evacuating").
        best = max(scores, key=lambda c: (scores[c], -_ORDER[c]))
        if scores[best] > 0:
            scores[best] += lexicon.anchor_bonus
    if figurable:
        # A word like "fire" or "blew up" counts unless a figurative-class word sits near it in its
        # clause ("this track is fire", "my phone blew up") and nothing literal backs it up.
        literal = anchored or sum(v for v in scores.values() if v > 0) >= lexicon.anchor
        reach = lexicon.figurative_window
        for i, cl, e in figurable:
            if not literal and any(c == cl and abs(p - i) <= reach for p, c in contexts):
                continue
            for cat, w in e.scores:
                scores[cat] = scores.get(cat, 0.0) + w
                matched.setdefault(cat, []).append((i, e.phrase))
    return scores, matched, factor


def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """Read and compile a lexicon YAML file (default: data/lexicon.yaml in the repo).

    Compiling takes about 0.1 s, and every app, CLI run and replay loads the same file: the compiled
    lexicon (immutable) is kept for as long as the file's modification time and size stay the same."""
    path = Path(path) if path is not None else DEFAULT_LEXICON
    stat = path.stat()
    return _compiled(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _compiled(path: str, mtime_ns: int, size: int) -> Lexicon:  # the key's stat fields: a changed file misses
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    return compile_lexicon(raw, source=path)


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

    for cls, words in (raw.get("figurative_context") or {}).items():
        if not isinstance(words, list):
            raise ValueError(f"figurative_context class {cls!r} in {source} must be a list of phrases")
        for word in words:
            add(word, CONTEXT)
    for word in raw.get("incident_context", []):
        add(word, ANCHOR)
    figurable: set[tuple[str, ...]] = set()
    for phrase in raw.get("figurable", []):
        toks = tuple(tokens(str(phrase)))
        if kinds.get(toks) != TERM:
            raise ValueError(f"figurable phrase {phrase!r} in {source} is not a category term")
        figurable.add(toks)
    for n, combo in enumerate(raw.get("combos") or []):
        _add_combo(combo, n, kinds, scores, source)

    cues = {toks for toks, kind in kinds.items() if kind == NEGATION}
    index: dict[str, dict[int, dict[tuple[str, ...], _Entry]]] = {}
    for toks, kind in kinds.items():
        absence = kind == TERM and any(toks[:k] in cues for k in range(1, len(toks)))
        entry = _Entry(" ".join(toks), len(toks), kind, tuple(scores.get(toks, {}).items()),
                       factors.get(toks, 1.0), toks in figurable, absence)
        index.setdefault(toks[0], {}).setdefault(len(toks), {})[toks[1:]] = entry
    precedence: dict[str, frozenset[str]] = {}
    for cat, beaten in (raw.get("precedence") or {}).items():
        for c in [cat, *beaten]:
            if c not in CATEGORIES:
                raise ValueError(f"unknown category {c!r} in precedence of {source}")
        precedence[cat] = frozenset(beaten)
    fig_window = raw.get("figurative_window", 6)
    if not isinstance(fig_window, int) or fig_window < 1:
        raise ValueError(f"figurative_window {fig_window!r} in {source} must be an integer >= 1")
    return Lexicon(
        entries={first: tuple(sorted(by_size.items(), reverse=True)) for first, by_size in index.items()},
        threshold=threshold,
        window=window,
        continue_tokens=frozenset(str(w) for w in neg.get("continue", [])),
        vocab=frozenset(t for toks in kinds for t in toks if t not in _BREAKS),
        precedence=precedence,
        figurative_window=fig_window,
        anchor=_number(raw.get("anchor", threshold), "anchor", source),
        anchor_bonus=_number(raw.get("anchor_bonus", 0.0), "anchor_bonus", source),
    )


def _add_combo(combo: Any, n: int, kinds: dict, scores: dict, source: str) -> None:
    """Expand one combo (every `first` phrase, an optional `between` word, every `then` phrase) into
    category terms. Combos state a pattern once ("no"/"sin"/"lost" + a service noun is an outage)
    instead of listing its sentences. A phrase already in the lexicon keeps its own entry."""
    if not isinstance(combo, Mapping) or combo.get("category") not in CATEGORIES:
        raise ValueError(f"combo #{n} in {source} needs a category from {CATEGORIES}, got {combo!r}")
    weight = _number(combo.get("weight"), f"weight of combo #{n}", source)
    firsts, thens = combo.get("first") or [], combo.get("then") or []
    if not firsts or not thens:
        raise ValueError(f"combo #{n} in {source} needs non-empty 'first' and 'then' lists")
    for phrase in [*firsts, *thens, *(combo.get("between") or [])]:
        if not isinstance(phrase, str):  # YAML turns a bare no/on/yes into a bool
            raise ValueError(f"phrase {phrase!r} of combo #{n} in {source} must be a string; quote it")
    betweens = [()] + [tuple(tokens(b)) for b in combo.get("between") or []]
    heads = [tuple(tokens(f)) for f in firsts]
    tails = [tuple(tokens(t)) for t in thens]
    for part in [*heads, *tails]:
        if not part or any(t in _BREAKS for t in part):
            raise ValueError(f"combo #{n} in {source} has an empty or punctuated phrase")
    for head in heads:
        for mid in betweens:
            for tail in tails:
                toks = head + mid + tail
                if toks in kinds:
                    continue
                kinds[toks] = TERM
                scores[toks] = {combo["category"]: weight}


def _number(value: Any, what: str, source: str) -> float:
    """Return value as a float, or raise naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} {value!r} in {source} is not a number")
    return float(value)
