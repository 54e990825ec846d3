"""SMS text for responders: GSM-7 transliteration, one-segment rendering, ack codes, reply parsing.

Pure: values in, values out. The MQTT payload lives elsewhere.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from alerts.ackcodes import ACK_ALPHABET, AckCodeGenerator, is_ack_code, new_ack_code  # noqa: F401

SEGMENT_SEPTETS = 160

# GSM 03.38 basic character set (one septet each). ESC (0x1B) is deliberately absent:
# it only ever introduces an extension character.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: ESC + char, so two septets each.
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")

# Characters NFKD cannot reduce to GSM-7. Anything left after this table and NFKD is
# dropped when it is a symbol (emoji, dingbats) and replaced by "?" when it is a letter or digit.
_TRANSLITERATE = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "´": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "«": '"', "»": '"',
    "\u2039": "'", "\u203a": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u00ad": "",
    "\u2026": "...", "\u2022": "*", "\u00b7": ".", "\u2027": ".",
    "\t": " ", "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "",
    "Œ": "OE", "œ": "oe", "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ð": "D", "ð": "d",
    "Þ": "Th", "þ": "th", "ı": "i", "ç": "c", "°": " deg", "×": "x", "÷": "/",
    "¢": "c", "™": "TM", "©": "(c)", "®": "(R)", "½": "1/2", "¼": "1/4", "¾": "3/4",
    "№": "No", "\u2190": "<-", "\u2192": "->", "\u2264": "<=", "\u2265": ">=", "\u2248": "~",
}


def _gsm_char(ch: str) -> bool:
    return ch in GSM7_BASIC or ch in GSM7_EXTENDED


def to_gsm7(text: str) -> str:
    """Return `text` with every character outside GSM-7 (basic + extension) transliterated or dropped.

    GSM-7 characters are kept as they are, so é, É, ñ, ü and ß survive (they are in the basic
    set), while á, ê, ç, ō and friends lose their accents. Emoji and other symbols are dropped.
    """
    out: list[str] = []
    for ch in text:
        if _gsm_char(ch):
            out.append(ch)
            continue
        if ch in _TRANSLITERATE:
            out.append(_TRANSLITERATE[ch])
            continue
        # Compatibility decomposition strips accents (á -> a + U+0301) and folds ligatures (ﬁ -> fi).
        decomposed = "".join(
            c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
        )
        if decomposed and all(_gsm_char(c) for c in decomposed):
            out.append(decomposed)
            continue
        category = unicodedata.category(ch)
        if category[0] in "LN":
            out.append("?")
        elif category[0] == "Z":
            out.append(" ")
        # Symbols (emoji), marks, controls, format characters: dropped.
    return "".join(out)


def gsm7_length(text: str) -> int:
    """Length of `text` in GSM-7 septets; extension-table characters count two."""
    n = 0
    for i, ch in enumerate(text):
        if ch in GSM7_BASIC:
            n += 1
        elif ch in GSM7_EXTENDED:
            n += 2
        else:
            raise ValueError(f"character {ch!r} at index {i} is not GSM-7; pass the text through to_gsm7 first")
    return n


def format_window(window_s: int | float) -> str:
    """Render a window as 45s, 10m or 2h, using the largest unit that divides it exactly."""
    if window_s <= 0 or window_s != int(window_s):
        raise ValueError(f"window_s {window_s!r} must be a positive whole number of seconds")
    window_s = int(window_s)
    if window_s % 3600 == 0:
        return f"{window_s // 3600}h"
    if window_s % 60 == 0:
        return f"{window_s // 60}m"
    return f"{window_s}s"


def window_words(window_s: int | float) -> str:
    """A window in words for a person: "10 min", "2 h", "45 s", "1 h 30 min"."""
    if window_s <= 0 or window_s != int(window_s):
        raise ValueError(f"window_s {window_s!r} must be a positive whole number of seconds")
    window_s = int(window_s)
    hours, rest = divmod(window_s, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    parts += [f"{seconds} s"] if seconds else []
    return " ".join(parts)


# Categories as a responder reads them; one not listed reads as its id with spaces ("heat_wave" -> "Heat wave").
CATEGORY_WORDS = {
    "fire": "Fire", "flood": "Flood", "gas_leak": "Gas leak", "power_outage": "Power outage",
    "water_main": "Water main break", "collision": "Collision", "violence": "Violence", "medical": "Medical",
    "structural": "Structural collapse", "hazmat": "Hazardous materials", "other": "Utility incident",
}


def category_words(category: str) -> str:
    return CATEGORY_WORDS.get(category, category.replace("_", " ").strip().capitalize())


_ELLIPSIS = "..."
_MIN_ZONE_NAME = 8  # below this a shortened name stops being recognisable; drop it instead


def _truncate(text: str, max_septets: int) -> str:
    """Longest prefix of `text` plus "..." that fits in `max_septets` (empty when nothing fits)."""
    if gsm7_length(text) <= max_septets:
        return text
    budget = max_septets - len(_ELLIPSIS)
    if budget <= 0:
        return ""
    out, used = [], 0
    for ch in text:
        cost = gsm7_length(ch)
        if used + cost > budget:
            break
        out.append(ch)
        used += cost
    return "".join(out).rstrip(" ,.-") + _ELLIPSIS


def render_sms(
    *,
    severity: str,
    category: str,
    zone_name: str | None,
    zone_code: str,
    evidence_count: int,
    window_s: int | float,
    ack_code: str,
    link: str | None,
) -> str:
    """Render one alert as a single GSM-7 segment (at most 160 septets).

    Full form: ``TOCSIN MAJOR Flood, Astoria (QN0101): 7 reports in 10 min. Reply ACK K7Q. https://x/a/123``
    (the category and the window in words: `category_words`, `window_words`).

    When that is too long, parts give way in this order, stopping as soon as it fits:

    1. the zone name is shortened with "..." (down to 8 characters);
    2. "Reply ACK K7Q." becomes "ACK K7Q.";
    3. the evidence ("7 reports in 10 min") is dropped;
    4. the link is dropped;
    5. the zone name is dropped (the zone code stays);
    6. the head (severity, category, zone code) is cut with "...".

    Parts given up on the way are put back when they fit again once a later part is gone.

    The ack code is never dropped or cut.
    """
    if evidence_count < 0:
        raise ValueError(f"evidence_count {evidence_count} is negative")
    severity_t = to_gsm7(severity.upper()).strip()
    category_t = to_gsm7(category_words(category)).strip()
    code_t = to_gsm7(zone_code).strip()
    name_t = " ".join(to_gsm7(zone_name or "").split())
    link_t = to_gsm7(link or "").strip()
    ack_t = to_gsm7(ack_code).strip()
    if not ack_t:
        raise ValueError(f"ack_code {ack_code!r} is empty after GSM-7 transliteration")
    noun = "report" if evidence_count == 1 else "reports"
    evidence_t = f"{evidence_count} {noun} in {window_words(window_s)}"

    def build(name: str, *, reply: bool, evidence: bool, with_link: bool, head: str | None = None) -> str:
        if head is None:
            where = f"{name} ({code_t})" if name and code_t else name or code_t
            head = " ".join(p for p in ("TOCSIN", severity_t, category_t) if p)
            head = f"{head}, {where}" if where else head
        text = head + (f": {evidence_t}." if evidence else ".")
        text += f" Reply ACK {ack_t}." if reply else f" ACK {ack_t}."
        if with_link and link_t:
            text += f" {link_t}"
        return text

    def fits(text: str) -> bool:
        return gsm7_length(text) <= SEGMENT_SEPTETS

    text = build(name_t, reply=True, evidence=True, with_link=True)
    if fits(text):
        return text

    # Step 1: shorten the zone name as little as needed.
    overflow = gsm7_length(text) - SEGMENT_SEPTETS
    if name_t:
        target = gsm7_length(name_t) - overflow
        if target >= _MIN_ZONE_NAME:
            return build(_truncate(name_t, target), reply=True, evidence=True, with_link=True)
    short_name = _truncate(name_t, _MIN_ZONE_NAME) if name_t else ""

    # Steps 2-5: with the name at its shortest, give up the other parts one by one. Once it
    # fits, put back any part given up earlier that fits again (a long link should not cost
    # the evidence), then let the name grow back into the room that is left.
    drops = ("reply", "evidence", "link", "name")

    def attempt(keep: dict[str, bool], name: str | None = None) -> str:
        if name is None:
            name = short_name if keep["name"] else ""
        return build(name, reply=keep["reply"], evidence=keep["evidence"], with_link=keep["link"])

    for i in range(len(drops)):
        keep = {part: part not in drops[: i + 1] for part in drops}

        if not fits(attempt(keep)):
            continue
        for part in reversed(drops[:i]):
            if fits(attempt({**keep, part: True})):
                keep[part] = True
        text = attempt(keep)
        if keep["name"] and name_t:
            room = SEGMENT_SEPTETS - gsm7_length(text)
            text = attempt(keep, _truncate(name_t, gsm7_length(short_name) + room))
        return text

    # Step 6: absurdly long severity/category/code. Keep the tail " ACK <code>." whole.
    tail = f" ACK {ack_t}."
    room = SEGMENT_SEPTETS - gsm7_length(tail)
    if room < 0:
        raise ValueError(f"ack_code {ack_code!r} alone does not fit in one SMS segment")
    head = build("", reply=False, evidence=False, with_link=False)[: -len(tail)]
    return _truncate(head, room) + tail


# --- Replies ---------------------------------------------------------------------------------


class ReplyKind(enum.StrEnum):
    ACK = "ack"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Reply:
    kind: ReplyKind
    code: str | None = None


# Twilio's default opt-out / opt-in / help keywords. Twilio acts on them only when the whole
# message is the keyword, and so do we: "stop the water" is not an opt-out.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_MAX_CODE_LENGTH = 8


def parse_reply(body: str) -> Reply:
    """Classify an inbound SMS: "ACK K7Q", "K7Q", " Ack: k7q ", STOP, START, HELP, or unknown.

    "ACK <token>" is an ack even when the token is not a code we issued, so that the caller
    can answer "unknown code"; a bare token is an ack only when it has the shape of a code.
    """
    tokens = [t.upper() for t in _TOKEN.findall(body or "")]
    if len(tokens) == 1:
        word = tokens[0]
        if word in OPT_OUT_WORDS:
            return Reply(ReplyKind.OPT_OUT)
        if word in OPT_IN_WORDS:
            return Reply(ReplyKind.OPT_IN)
        if word in HELP_WORDS:
            return Reply(ReplyKind.HELP)
        if is_ack_code(word) and len(word) <= _MAX_CODE_LENGTH:
            return Reply(ReplyKind.ACK, word)
    if len(tokens) >= 2 and tokens[0] in {"ACK", "ACKNOWLEDGE", "ACKNOWLEDGED"}:
        if len(tokens[1]) <= _MAX_CODE_LENGTH:
            return Reply(ReplyKind.ACK, tokens[1])
    return Reply(ReplyKind.UNKNOWN)
