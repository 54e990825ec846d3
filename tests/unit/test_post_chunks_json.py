"""The stored JSON of a post (ingest.posts.chunks): compact, numpy numbers as numbers, repost marks added."""

import json

import numpy as np

from ingest.posts import chunks as post_chunks


def test_json_is_compact_and_keeps_numpy_numbers_numbers():
    out = post_chunks._json({"a": np.float64(0.25), "b": np.int64(3), "c": ("x", None), "d": "émoji 🔥"})
    assert json.loads(out) == {"a": 0.25, "b": 3, "c": ["x", None], "d": "émoji 🔥"}
    assert " " not in out.replace("émoji 🔥", "")


def test_repost_marks_are_added_to_the_stored_json():
    raw = post_chunks._json({"source": "t", "classification": {"category": "fire"}})
    assert json.loads(post_chunks._repost_marked(raw)) == {
        "source": "t", "classification": {"category": "fire"}, "counted": False, "reason": "repost"}
