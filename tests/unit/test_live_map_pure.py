"""The live map's pure pieces: NOTIFY payloads, query parsing, a client's bounded queue."""

import pytest

from db.errors import InvalidInput
from geo.geojson import parse_bbox
from ingest.observations import MAX_IDS, parse_ids
from tocsin.live import CLOSE_TOO_SLOW, LiveClient
from tocsin.live_feed import Message, parse_payload


@pytest.mark.parametrize("payload, expected", [
    ("obs:12", ("obs", [12])),
    ("evt:7", ("evt", [7])),
    ("obs:12,13,200", ("obs", [12, 13, 200])),
    ("obs:12,,13", None),
    ("obs:12,", None),
    ("obs:", None),
    ("obs:-1", None),
    ("xyz:3", None),
    ("", None),
    ("obs:1e3", None),
])
def test_parse_payload(payload, expected):
    assert parse_payload(payload) == expected


@pytest.mark.parametrize("text, expected", [
    ("-74.05,40.65,-73.85,40.85", (-74.05, 40.65, -73.85, 40.85)),
    (" -74 , 40 , -73 , 41 ", (-74.0, 40.0, -73.0, 41.0)),
])
def test_parse_bbox_accepts_west_south_east_north(text, expected):
    assert parse_bbox(text) == expected


@pytest.mark.parametrize("text", [
    "1,2,3",  # three numbers
    "a,b,c,d",  # not numbers
    "-73.85,40.65,-74.05,40.85",  # west > east
    "-74.05,40.85,-73.85,40.65",  # south > north
    "-74,91,-73,92",  # latitude out of range
    "nan,40,-73,41",  # not finite
])
def test_parse_bbox_refuses_and_quotes_the_value(text):
    with pytest.raises(InvalidInput) as info:
        parse_bbox(text)
    assert repr(text) in info.value.message
    assert info.value.details["field"] == "bbox"


def test_parse_ids():
    assert parse_ids("3, 1,2") == [3, 1, 2]
    with pytest.raises(InvalidInput, match="ids item 'x'"):
        parse_ids("1,x")
    with pytest.raises(InvalidInput, match=f"at most {MAX_IDS}"):
        parse_ids(",".join(["1"] * (MAX_IDS + 1)))


def test_a_client_that_falls_behind_is_closed_not_buffered_forever():
    client = LiveClient(max_queued=3)
    client.offer([Message("obs", i, "{}") for i in range(3)])
    assert len(client.queue) == 3 and client.close_code is None and client.wake.is_set()
    client.offer([Message("obs", 3, "{}")])
    assert len(client.queue) == 0 and client.close_code == CLOSE_TOO_SLOW
    client.offer([Message("obs", 4, "{}")])  # nothing more is queued for a closing client
    assert len(client.queue) == 0


def test_close_reasons_fit_the_protocol_limit():
    from tocsin.live import _reason

    assert _reason("short") == "short"
    cut = _reason("é" * 100)  # 200 bytes in UTF-8
    assert len(cut.encode()) <= 123 and set(cut) == {"é"}
