"""db.input_guard: what PostgreSQL text and the JSON parser cannot take, found before they see it."""

import json

import pytest
from pydantic import BaseModel, ValidationError

from db.input_guard import MalformedBody, SafeStr, check_json_body, json_depth_exceeds, text_problem


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth, too_deep", [(1, False), (64, False), (65, True), (200_000, True)])
def test_depth_counts_brackets(depth, too_deep):
    assert json_depth_exceeds(nested(depth)) is too_deep


def depth_of(value) -> int:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    return 0 if children is None else 1 + max((depth_of(c) for c in children), default=0)


def test_depth_agrees_with_the_parser_on_mixed_objects_and_arrays():
    doc = {"a": [{"b": [{"c": [1, {"d": []}]}]}], "e": "[[[[{{{{"}
    for _ in range(10):
        doc = {"k": [doc, "]]]}}}"]}
    raw = json.dumps(doc).encode()
    depth = depth_of(json.loads(raw))
    assert depth == 28
    assert not json_depth_exceeds(raw, depth) and json_depth_exceeds(raw, depth - 1)


@pytest.mark.parametrize("raw, too_deep", [
    (b'["' + b"[" * 100 + b'"]', False),              # brackets inside a string do not count
    (b'["\\"' + b"[" * 100 + b'"]', False),           # nor after an escaped quote
    (b'["\\\\"' + b", " + nested(100) + b"]", True),  # an escaped backslash ends the string
    (b"]" * 100 + b"[" * 10, False),                  # stray closers never go below zero
])
def test_depth_skips_strings(raw, too_deep):
    assert json_depth_exceeds(raw, 64) is too_deep


def test_ndjson_counts_each_line_on_its_own():
    malformed_lines = b"\n".join([b'{"a": [1'] * 100)  # each line unclosed: 2 levels, 200 as one document
    assert json_depth_exceeds(malformed_lines) is True
    assert json_depth_exceeds(malformed_lines, per_line=True) is False
    assert json_depth_exceeds(malformed_lines + b"\n" + nested(65), per_line=True) is True


def test_check_json_body_names_the_problem():
    assert check_json_body('{"a": "café"}'.encode()) == '{"a": "café"}'
    with pytest.raises(MalformedBody, match=r"not valid UTF-8: byte 0xe9 at offset 10"):
        check_json_body(b'{"a": "caf\xe9"}')
    with pytest.raises(MalformedBody, match="JSON nested deeper than 64 levels"):
        check_json_body(nested(65))


@pytest.mark.parametrize("value, problem", [
    ("plain", None), ("café ☕", None), ("a\x00b", "NUL"), ("a\ud800", "lone surrogate"),
])
def test_text_problem(value, problem):
    found = text_problem(value)
    assert (found is None) if problem is None else (problem in found)


def test_safe_str_is_a_validation_error_naming_the_field():
    class Model(BaseModel):
        name: SafeStr

    assert Model(name="Ana").name == "Ana"
    with pytest.raises(ValidationError) as info:
        Model(name="A\x00na")
    assert info.value.errors()[0]["loc"] == ("name",) and "NUL" in info.value.errors()[0]["msg"]
