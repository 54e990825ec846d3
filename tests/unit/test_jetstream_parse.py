"""The Jetstream connector's pure parts: message parsing, the pre-filter, URLs and backoff."""

import json
import random
from datetime import UTC, datetime

import pytest

from ingest.posts import jetstream
from tests.fakes.jetstream_server import account_event, delete_event, identity_event, like_event, post_event

T = 1_725_911_162_329_308


def test_post_create_becomes_a_normalised_post():
    time_us, post = jetstream.parse_event(json.dumps(post_event(
        "did:plc:abc", "3l3qo2vutsw2b", T, "Fire on 5th Ave", langs=["en"], created_at="2024-09-09T19:46:02.102Z")))
    assert time_us == T
    assert post == {
        "source": "bluesky", "external_id": "at://did:plc:abc/app.bsky.feed.post/3l3qo2vutsw2b",
        "author": "did:plc:abc", "text": "Fire on 5th Ave", "lang": "en", "langs": ["en"],
        "created_at": datetime(2024, 9, 9, 19, 46, 2, 102000, tzinfo=UTC),
        "url": "https://bsky.app/profile/did:plc:abc/post/3l3qo2vutsw2b",
    }


@pytest.mark.parametrize("event", [
    like_event("did:plc:abc", "3k", T),
    delete_event("did:plc:abc", "3k", T),
    identity_event("did:plc:abc", T),
    account_event("did:plc:abc", T),
    post_event("did:plc:abc", "3k", T, "   "),  # nothing to read
])
def test_other_events_only_advance_the_cursor(event):
    assert jetstream.parse_event(json.dumps(event)) == (T, None)


@pytest.mark.parametrize("message", ["not json", "[1, 2]", json.dumps({"kind": "commit"}),
                                     json.dumps({"time_us": "123", "kind": "identity"})])
def test_garbage_is_ignored(message):
    assert jetstream.parse_event(message) == (None, None)


def test_created_at_falls_back_to_jetstream_time():
    _, post = jetstream.parse_event(json.dumps(post_event("did:plc:a", "3k", T, "smoke", created_at="yesterday")))
    assert post["created_at"] == datetime.fromtimestamp(T / 1_000_000, UTC)


@pytest.mark.parametrize("text, langs, kept", [
    ("Huge FIRE in Astoria", ["en"], True),
    ("Basement flooding again", ["en-US"], True),  # stems: flood -> flooding; region subtags ignored
    ("Water main break on 5th", None, True),  # no declared language: kept
    ("Lovely sunset", ["en"], False),  # no keyword
    ("fire em Lisboa", ["pt"], False),  # a language we did not ask for
    ("fire in Montreal", ["fr", "en"], True),  # one of its languages is wanted
    ("this is a ceasefire", ["en"], False),  # stems match at the start of a word only
])
def test_filter(text, langs, kept):
    f = jetstream.PostFilter(["fire", "flood", "water main"], ["en"])
    assert f.keep({"text": text, "langs": langs}) is kept


def test_subscribe_url_asks_for_posts_and_the_cursor():
    url = jetstream.subscribe_url("wss://js.example/subscribe?compress=false", cursor=T)
    assert url == f"wss://js.example/subscribe?compress=false&wantedCollections=app.bsky.feed.post&cursor={T}"
    assert jetstream.subscribe_url("ws://127.0.0.1:1", cursor=None) == \
        "ws://127.0.0.1:1/subscribe?wantedCollections=app.bsky.feed.post"
    with pytest.raises(ValueError, match="'https://js.example'"):
        jetstream.subscribe_url("https://js.example", cursor=None)


def test_backoff_is_jittered_exponential_and_capped():
    rng = random.Random(1)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 60.0), (500, 60.0)]:
        delays = [jetstream.backoff_s(attempt, base_s=0.5, max_s=60.0, rng=rng) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) > ceiling / 2  # spread over the range, not a constant
    with pytest.raises(ValueError, match="-1"):
        jetstream.backoff_s(-1, base_s=0.5, max_s=60.0)
