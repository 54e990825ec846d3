"""Normalised posts (pure): per-item validation, batch bodies, author hashing and repost fingerprints."""

import json

import pytest

from db.errors import InvalidInput
from ingest.posts import parse as posts

GOOD = {"source": "bluesky", "external_id": "at://x/1", "author": "did:plc:abc", "text": "Street flooding",
        "created_at": "2026-11-25T21:00:00Z"}


def test_a_good_post_with_coordinates_and_place():
    [p] = posts.parse_items([{**GOOD, "coordinates": [-73.92, 40.76], "langs": ["en"],
                              "place": {"name": "Astoria", "bbox": [-73.93, 40.75, -73.91, 40.77]}}])
    assert isinstance(p, posts.PostIn)
    assert p.coordinates == (-73.92, 40.76) and p.place.bbox == (-73.93, 40.75, -73.91, 40.77)
    assert p.created_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("change, needle", [
    ({"coordinates": [-200, 40]}, "longitude -200.0 is outside [-180, 180]"),
    ({"coordinates": [40.7, -173.9]}, "longitude"),
    ({"coordinates": [-73.9, 140.7]}, "latitude 140.7 is outside [-90, 90]"),
    ({"coordinates": [-73.9]}, "coordinates"),
    ({"created_at": "2026-11-25T21:00:00"}, "created_at: Input should have timezone info"),
    ({"created_at": "yesterday"}, "created_at"),
    ({"source": "Has Spaces"}, "source"),
    ({"external_id": ""}, "external_id"),
    ({"text": "x" * 10_001}, "text"),
    ({"place": {"bbox": [-73.9, 40.8, -74.0, 40.7]}}, "bbox [-73.9, 40.8, -74.0, 40.7] is not [west, south, east, north]"),
    ({"place": {"polygon": {"type": "Point", "coordinates": [0, 0]}}}, "polygon type 'Point'"),
    ({"place": {"polygon": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}}}, "at least 4 positions"),
    ({"place": {}}, "place needs a name, a bbox or a polygon"),
])
def test_bad_items_are_rejected_naming_the_field(change, needle):
    [r] = posts.parse_items([{**GOOD, **change}])
    assert isinstance(r, posts.Rejected) and r.index == 0
    assert needle in r.error


def test_missing_fields_are_named():
    [r] = posts.parse_items([{"source": "x"}])
    assert all(f in r.error for f in ("external_id", "author", "text"))


def test_one_bad_item_does_not_sink_the_others():
    out = posts.parse_items([GOOD, 42, {**GOOD, "coordinates": [0, 99]}, {**GOOD, "external_id": "2"}])
    assert [type(x).__name__ for x in out] == ["PostIn", "Rejected", "Rejected", "PostIn"]
    assert out[1].error == "item must be a JSON object, got int"
    assert out[2].index == 2


def test_split_body_json_array_and_ndjson():
    assert posts.split_body(json.dumps([GOOD, GOOD]).encode(), ndjson=False) == [GOOD, GOOD]
    body = (json.dumps(GOOD) + "\n\n{oops\n" + json.dumps(GOOD) + "\n").encode()
    items = posts.split_body(body, ndjson=True)
    assert items[0] == GOOD and items[2] == GOOD
    assert isinstance(items[1], posts.Rejected) and items[1].index == 1 and "line 3" in items[1].error


@pytest.mark.parametrize("body, needle", [
    (b"{}", "must be a JSON array of posts, got a JSON dict"),
    (b"[1,", "body is not valid JSON"),
])
def test_split_body_refuses_a_body_that_is_not_an_array(body, needle):
    with pytest.raises(InvalidInput, match=needle):
        posts.split_body(body, ndjson=False)


def test_split_body_limit():
    with pytest.raises(InvalidInput, match="batch has 4 posts; the limit is 3"):
        posts.split_body(b"[1, 2, 3, 4]", ndjson=False, max_items=3)


@pytest.mark.parametrize("secret", ["k1", "", "é" * 40, "x" * 64, "y" * 65, "z" * 200])
def test_author_keys_are_the_hmac_of_each_author(secret):
    import hmac

    authors = ["did:plc:abc", "@carol.example.com", "", "ünïcode ☃", "did:plc:abc"]
    keys = posts.author_keys(authors, secret=secret)
    assert set(keys) == set(authors)
    for a in authors:
        expected = hmac.new(secret.encode(), a.encode(), "sha256").hexdigest()
        assert keys[a] == expected == posts.author_key(a, secret=secret)


def test_author_key_is_keyed_and_stable():
    a = posts.author_key("did:plc:abc", secret="k1")
    assert a == posts.author_key("did:plc:abc", secret="k1")
    assert a != posts.author_key("did:plc:abc", secret="k2")
    assert a != posts.author_key("did:plc:abd", secret="k1")
    assert "abc" not in a and len(a) == 64
    # HMAC-SHA256, not a bare hash of the handle that anyone could recompute.
    import hashlib

    assert a != hashlib.sha256(b"did:plc:abc").hexdigest()


@pytest.mark.parametrize("a, b, same", [
    ("Street flooding in Astoria!", "street   FLOODING in astoria", True),
    ("Flooding in Astoria https://t.co/abc", "Flooding in Astoria https://t.co/xyz", True),
    ("Ｆｌｏｏｄｉｎｇ", "flooding", True),
    ("Flooding in Astoria", "Flooding in Astoria again", False),
])
def test_fingerprint_compares_normalised_text(a, b, same):
    assert (posts.text_fingerprint("k", a) == posts.text_fingerprint("k", b)) is same


def test_fingerprint_depends_on_the_author():
    assert posts.text_fingerprint("alice", "fire") != posts.text_fingerprint("bob", "fire")


@pytest.mark.parametrize("text", [
    "Street FLOODING on 5th Ave!!", "see https://t.co/AbC and www.Example.com/x now", "ﬁre in the Straße",
    "Ｆｕｌｌ width ＦＩＲＥ", "no_links_here but_under_scores", "émoji 🔥 fire", "", "   ", "HTTP://CAPS.example",
])
def test_normalised_text_is_what_the_plain_definition_gives(text):
    """The fast paths (ASCII skips NFKC, a text without a link skips the link pass) change nothing."""
    import re
    import unicodedata

    folded = unicodedata.normalize("NFKC", text).casefold()
    plain = " ".join(re.findall(r"[^\W_]+", re.sub(r"https?://\S+|www\.\S+", " ", folded)))
    assert posts.normalise_text(text) == plain
