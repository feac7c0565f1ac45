"""Lenient framing and decoding of request bodies (no database)."""

from __future__ import annotations

import math

import pytest

from mt5db_api.ingest.framing import BodyError, decode_body


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'\xef\xbb\xbf{"a":1}', {"a": 1}),
        (b'{"a":1}\x00\x00\n ', {"a": 1}),
        (b"[1,2]\r\n", [1, 2]),
    ],
)
def test_lenient_framing(raw, expected):
    assert decode_body(raw) == expected


def test_nan_and_infinity_tokens_parse_to_non_finite_floats():
    doc = decode_body(b'{"a":NaN,"b":Infinity,"c":-Infinity}')
    assert math.isnan(doc["a"]) and doc["b"] == math.inf and doc["c"] == -math.inf
    doc = decode_body(b'[{"a":nan,"b":inf,"c":-inf,"d":"nan"}]')
    assert math.isnan(doc[0]["a"]) and doc[0]["b"] == math.inf and doc[0]["c"] == -math.inf
    assert doc[0]["d"] == "nan"


@pytest.mark.parametrize(
    ("raw", "reason"), [(b"", "empty_body"), (b"{", "invalid_json"), (b"\xff", "invalid_json")]
)
def test_unusable_bodies(raw, reason):
    with pytest.raises(BodyError) as info:
        decode_body(raw)
    assert info.value.reason == reason
