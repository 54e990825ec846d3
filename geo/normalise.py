"""Name normalisation: the canonical tokens that gazetteer names and post text are both folded to, so
"St. Albans" meets "Saint Albans" and "E 96th St" meets "East 96 Street".

Pure and cheap to import; geo.gazetteer builds its keys and reads post text with these.
"""

from __future__ import annotations

import re
import unicodedata

_TOKEN_RE = re.compile(r"[^\W_]+(?:['’`][^\W_]+)*|&")
# The same tokens for lower-cased ASCII text, where an ASCII class matches about twice as fast.
ASCII_TOKEN_RE = re.compile(r"[a-z0-9]+(?:['`][a-z0-9]+)*|&", re.ASCII)
_ORDINAL_RE = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
# Abbreviations are folded to one spelling on both sides (names and text), so "Saint Albans",
# "St. Albans" and "St Albans" meet, as do "31st Street" and "31 St". "st" serves both saint and
# street: the word order tells them apart and the matcher never needs to.
_CANON = {
    "&": "and", "saint": "st", "street": "st", "str": "st", "avenue": "ave", "av": "ave",
    "boulevard": "blvd", "road": "rd", "parkway": "pkwy", "square": "sq", "place": "pl",
    "drive": "dr", "lane": "ln", "expressway": "expy", "highway": "hwy", "fort": "ft",
    "mount": "mt", "heights": "hts", "terrace": "ter", "junction": "jct",
    # Street names as people write them: "Fifth Ave" and "5 Avenue", "Barclays Ctr" and "Barclays Center"
    # meet ("East 96 St" and "E 96th St" too: see _fold_directions).
    "center": "ctr", "centre": "ctr", "plaza": "plz",
    "court": "ct", "expwy": "expy", "pky": "pkwy", "bway": "broadway", "lex": "lexington", "turnpike": "tpke", "pk": "park",
    "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6", "seventh": "7",
    "eighth": "8", "ninth": "9", "tenth": "10", "eleventh": "11", "twelfth": "12",
}
STREET_SUFFIXES = frozenset({"st", "ave", "blvd", "rd", "pkwy", "pl", "dr", "ln", "expy", "hwy", "ter", "way", "bridge",
                             "tunnel", "ct", "tpke"})


_DIRECTIONS = {"east": "e", "west": "w", "north": "n", "south": "s"}


def _fold_directions(toks: list[str]) -> list[str]:
    """A direction before a numbered street is its initial ("East 96 St" -> "e 96 st"); elsewhere it is
    kept ("East Village")."""
    if _DIRECTIONS.keys().isdisjoint(toks):
        return toks
    last = len(toks) - 1
    return [_DIRECTIONS[t] if t in _DIRECTIONS and i < last and toks[i + 1][:1].isdigit() else t
            for i, t in enumerate(toks)]


_SPANISH_ORDINAL_RE = re.compile(r"^(\d+)(?:ra|ro|da|do|ta|to|va|vo|na|no|ma|mo|era|ero|er|a|o)$")
_SPANISH_TYPES = {"avenida": "ave", "calle": "st"}


def _spanish_streets(toks: list[str]) -> list[str]:
    """Spanish street forms as English ones, token for token so offsets stay: "3ra avenida" -> "3 ave",
    "avenida 3" / "avenida roosevelt" -> "3 ave" / "roosevelt ave", "calle 72" -> "72 st"."""
    if "avenida" not in toks and "calle" not in toks:
        return toks
    out = list(toks)
    for i, t in enumerate(toks):
        kind = _SPANISH_TYPES.get(t)
        if kind is None:
            continue
        before = _SPANISH_ORDINAL_RE.match(out[i - 1]) if i > 0 else None
        if before or (i > 0 and out[i - 1].isdigit()):
            out[i - 1] = before.group(1) if before else out[i - 1]
            out[i] = kind
        elif i + 1 < len(toks) and toks[i + 1] not in ("de", "del", "la", "el", "y"):
            after = _SPANISH_ORDINAL_RE.match(toks[i + 1])
            out[i], out[i + 1] = (after.group(1) if after else toks[i + 1]), kind
    return out


def fold_street_forms(toks: list[str]) -> list[str]:
    """Spanish street forms and directions before numbered streets folded, token for token."""
    return _fold_directions(_spanish_streets(toks))


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
    return " ".join(fold_street_forms([_canon_token(t) for t in _TOKEN_RE.findall(_fold(s))]))


def tokenise(text: str) -> tuple[list[str], list[int], list[int]]:
    """Canonical tokens of `text` with their start and end offsets in the original string."""
    low = text.lower()
    if text.isascii() and len(low) == len(text):
        raw = ASCII_TOKEN_RE.findall(low)
        return fold_street_forms(canon_all(raw)), *token_offsets(low, raw)
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
    return fold_street_forms(toks), starts, ends


_CANON_KEYS = frozenset(_CANON)
_NEEDS_CANON_RE = re.compile(r"['’`]|\d(?:st|nd|rd|th)\b")


def canon_all(raw: list[str], low: str | None = None) -> list[str]:
    """Each raw token in its canonical spelling; given the lower-cased text `low`, a text with nothing to
    fold is returned as it is."""
    if low is not None and _CANON_KEYS.isdisjoint(raw) and not _NEEDS_CANON_RE.search(low):
        return raw  # nothing to fold: the common case
    get = _CANON.get
    return [_canon_token(t) if (t[0].isdigit() or "'" in t or "’" in t or "`" in t) else get(t, t) for t in raw]


def token_offsets(low: str, raw: list[str]) -> tuple[list[int], list[int]]:
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

