import random

import pytest

from dispatch import messages
from dispatch.messages import (
    ACK_ALPHABET,
    AckCodeGenerator,
    Reply,
    ReplyKind,
    format_window,
    gsm7_length,
    new_ack_code,
    parse_reply,
    render_sms,
    to_gsm7,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Astoria", "Astoria"),
        ("“Broad” ‘Channel’", "\"Broad\" 'Channel'"),
        ("Flood — 31st St – Astoria", "Flood - 31st St - Astoria"),
        ("wait…", "wait..."),
        ("São Paulo façade naïve", "Sao Paulo facade naive"),
        ("Łódź Œuvre Þorn", "Lodz OEuvre Thorn"),
        ("fire 🔥🚒 now", "fire  now"),
        ("ﬁre", "fire"),
        ("a\u00a0b\tc", "a b c"),
        ("zero\u200bwidth", "zerowidth"),
        # GSM-7 basic set is kept as is, accents included.
        ("Café Straße Ñandú Ørsted Ümit é É ü à", "Café Straße Ñandu Ørsted Ümit é É ü à"),
        ("@£$¥§¿¡ΔΩ", "@£$¥§¿¡ΔΩ"),
        # Extension table characters are GSM-7 too (two septets each).
        ("{x}[y]~\\^|€", "{x}[y]~\\^|€"),
        ("北京", "??"),
    ],
)
def test_to_gsm7(text, expected):
    assert to_gsm7(text) == expected


@pytest.mark.parametrize(
    "text, septets",
    [("", 0), ("abc", 3), ("é", 1), ("€", 2), ("{}", 4), ("a[b]c", 7), ("\n", 1)],
)
def test_gsm7_length(text, septets):
    assert gsm7_length(text) == septets


def test_gsm7_length_rejects_non_gsm():
    with pytest.raises(ValueError, match="'á'"):
        gsm7_length("á")


@pytest.mark.parametrize("window_s, text", [(45, "45s"), (600, "10m"), (7200, "2h"), (5400, "90m"), (90, "90s")])
def test_format_window(window_s, text):
    assert format_window(window_s) == text


@pytest.mark.parametrize("bad", [0, -60, 1.5])
def test_format_window_rejects(bad):
    with pytest.raises(ValueError):
        format_window(bad)


BASE = dict(
    severity="major", category="flood", zone_name="Astoria", zone_code="QN0101",
    evidence_count=7, window_s=600, ack_code="K7Q", link="https://x/a/123",
)


def test_render_sms_full_form():
    assert render_sms(**BASE) == "TOCSIN MAJOR Flood, Astoria (QN0101): 7 reports in 10 min. Reply ACK K7Q. https://x/a/123"


def test_render_sms_singular_and_no_link():
    text = render_sms(**{**BASE, "evidence_count": 1, "window_s": 7200, "link": None})
    assert text == "TOCSIN MAJOR Flood, Astoria (QN0101): 1 report in 2 h. Reply ACK K7Q."


def test_render_sms_shortens_zone_name_first():
    name = "Astoria Heights and Ditmars Steinway by the East River waterfront north of Queensboro"
    text = render_sms(**{**BASE, "zone_name": name, "link": "https://tocsin.example.org/a/1234567"})
    assert gsm7_length(text) <= 160
    assert "... (QN0101): 7 reports in 10 min. Reply ACK K7Q. https://tocsin.example.org/a/1234567" in text
    assert text.startswith("TOCSIN MAJOR Flood, Astoria Heights")


def test_render_sms_long_link_drops_link_keeps_evidence():
    text = render_sms(**{**BASE, "link": "https://x/" + "a" * 200})
    assert text == "TOCSIN MAJOR Flood, Astoria (QN0101): 7 reports in 10 min. Reply ACK K7Q."


def test_render_sms_absurd_head_keeps_ack_code():
    text = render_sms(**{**BASE, "category": "c" * 300})
    assert gsm7_length(text) <= 160
    assert text.endswith(" ACK K7Q.")


def _random_name(rng: random.Random) -> str:
    pool = (
        "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-'.,"
        "éèàüñÑÄßçáíóúâêîôûãõøåæœłžšč“”‘’—–…€{}[]~^|\\🔥🚒🌊北京\u200b\u00a0"
    )
    return "".join(rng.choice(pool) for _ in range(rng.randint(0, 220)))


@pytest.mark.parametrize("seed", range(5))
def test_render_sms_always_one_segment(seed):
    rng = random.Random(seed)
    gen = AckCodeGenerator()
    for i in range(400):
        ack = gen.code(rng.randint(0, 2_000_000))
        text = render_sms(
            severity=rng.choice(["minor", "major", "critical", "Extrême"]),
            category=rng.choice(["flood", "fire", "power_outage", "gas leak", "structural collapse"]),
            zone_name=_random_name(rng),
            zone_code=rng.choice(["QN0101", "BK12", "FDNY-BAT-49", "MN[07]"]),
            evidence_count=rng.randint(0, 100_000),
            window_s=rng.choice([45, 600, 3600, 5400, 86400]),
            ack_code=ack,
            link=rng.choice([None, "https://t.example/a/123", "https://tocsin.example.org/alerts/" + "9" * rng.randint(1, 150)]),
        )
        assert text == to_gsm7(text), text  # only GSM-7 characters
        assert gsm7_length(text) <= 160, (len(text), text)
        assert f"ACK {ack}." in text, text


def test_ack_codes_unique_over_10000_sequential():
    gen = AckCodeGenerator()
    codes = [gen.code(seq) for seq in range(10_000)]
    assert len(set(codes)) == len(codes)
    assert all(3 <= len(c) <= 4 and set(c) <= set(ACK_ALPHABET) for c in codes)
    assert not set("0O1IL") & set("".join(codes))


def test_ack_codes_never_reused_across_length_growth():
    gen = AckCodeGenerator()
    space3 = len(ACK_ALPHABET) ** 3
    window = range(space3 - 5_000, space3 + 5_000)  # the switch from 3 to 4 characters
    codes = [gen.code(seq) for seq in window]
    assert len(set(codes)) == len(codes)
    assert {len(c) for c in codes} == {3, 4}
    # The whole 3-character space is used exactly once before growing.
    assert len({gen.code(seq) for seq in range(space3)}) == space3


def test_ack_codes_deterministic_and_invertible():
    gen = AckCodeGenerator()
    for seq in [0, 1, 2, 999, 21_951, 21_952, 500_000, 636_607, 636_608, 10**7]:
        code = gen.code(seq)
        assert new_ack_code(seq) == code
        assert gen.sequence_of(code) == seq
        assert gen.sequence_of(code.lower()) == seq


def test_ack_codes_look_unordered():
    codes = [new_ack_code(seq) for seq in range(50)]
    assert codes != sorted(codes)


def test_ack_codes_depend_on_key():
    assert AckCodeGenerator(b"a").code(7) != AckCodeGenerator(b"b").code(7) or AckCodeGenerator(b"a").code(8) != AckCodeGenerator(b"b").code(8)


def test_ack_code_rejects_negative():
    with pytest.raises(ValueError):
        new_ack_code(-1)


def test_ack_codes_cannot_be_reply_keywords():
    keywords = messages.OPT_OUT_WORDS | messages.OPT_IN_WORDS | messages.HELP_WORDS | {"ACK"}
    assert not any(messages.is_ack_code(word) for word in keywords)


@pytest.mark.parametrize(
    "body, expected",
    [
        ("ACK K7Q", Reply(ReplyKind.ACK, "K7Q")),
        ("K7Q", Reply(ReplyKind.ACK, "K7Q")),
        ("ack k7q", Reply(ReplyKind.ACK, "K7Q")),
        (" Ack: k7q ", Reply(ReplyKind.ACK, "K7Q")),
        ("ACK K7Q thanks, on my way", Reply(ReplyKind.ACK, "K7Q")),
        ("ack-k7qm", Reply(ReplyKind.ACK, "K7QM")),
        ("ACK ZZZZZZ", Reply(ReplyKind.ACK, "ZZZZZZ")),
        ("ACK hello", Reply(ReplyKind.ACK, "HELLO")),  # unknown code: the caller says so
        ("STOP", Reply(ReplyKind.OPT_OUT)),
        ("stop", Reply(ReplyKind.OPT_OUT)),
        (" Stop. ", Reply(ReplyKind.OPT_OUT)),
        ("STOPALL", Reply(ReplyKind.OPT_OUT)),
        ("unsubscribe", Reply(ReplyKind.OPT_OUT)),
        ("CANCEL", Reply(ReplyKind.OPT_OUT)),
        ("End", Reply(ReplyKind.OPT_OUT)),
        ("quit", Reply(ReplyKind.OPT_OUT)),
        ("START", Reply(ReplyKind.OPT_IN)),
        ("unstop", Reply(ReplyKind.OPT_IN)),
        ("yes", Reply(ReplyKind.OPT_IN)),
        ("HELP", Reply(ReplyKind.HELP)),
        ("stop the water", Reply(ReplyKind.UNKNOWN)),
        ("ACK", Reply(ReplyKind.UNKNOWN)),
        ("hello", Reply(ReplyKind.UNKNOWN)),
        ("ok", Reply(ReplyKind.UNKNOWN)),
        ("", Reply(ReplyKind.UNKNOWN)),
        ("   ", Reply(ReplyKind.UNKNOWN)),
        ("👍", Reply(ReplyKind.UNKNOWN)),
    ],
)
def test_parse_reply(body, expected):
    assert parse_reply(body) == expected


@pytest.mark.parametrize("window_s, words", [(600, "10 min"), (7200, "2 h"), (45, "45 s"), (5400, "1 h 30 min")])
def test_windows_and_categories_read_as_words(window_s, words):
    from dispatch.messages import category_words, window_words

    assert window_words(window_s) == words
    assert category_words("gas_leak") == "Gas leak" and category_words("heat_wave") == "Heat wave"
