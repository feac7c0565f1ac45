"""Lenient body framing and JSON decoding: what an MQL5 buffer carries around the JSON is dropped.

docs/ea-contract.md §12 ("Parsing"): an author's collector build produced 149 consecutive
`422 JSON decode error: Extra data` from one trailing byte, and faulty builds emit bare NaN/Infinity
tokens that strict parsers refuse for the whole body. So a UTF-8 BOM and trailing NUL bytes and
whitespace are stripped, and those tokens parse to non-finite floats that the per-item checks then
reject one item at a time.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

# Lower-case nan/inf tokens from faulty builds; only where a JSON value starts (after : , [).
_lower_tokens = re.compile(rb"([:,\[]\s*)(-?)(nan|inf|infinity)(?=\s*[,\]}])", re.IGNORECASE)


class BodyError(Exception):
    """The body as a whole cannot be used: 400 (or 413) with a compact reason."""

    def __init__(self, reason: str, status: int = 400, **extra: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.extra = extra


def frame(raw: bytes) -> bytes:
    """The body without a UTF-8 BOM and trailing NUL/whitespace (MQL5 buffers carry both)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.rstrip(b"\x00 \t\r\n")


def _constant(token: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[token]


def decode_body(raw: bytes) -> Any:
    """Parse a request body leniently: strip a UTF-8 BOM and trailing NUL/whitespace, accept
    NaN/Infinity tokens (they become non-finite floats that per-item checks reject)."""
    raw = frame(raw)
    if not raw:
        raise BodyError("empty_body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("invalid_json") from None
    try:
        return json.loads(text, parse_constant=_constant)
    except (ValueError, RecursionError):
        pass
    fixed = _lower_tokens.sub(_fix_token, raw)
    try:
        return json.loads(fixed.decode("utf-8"), parse_constant=_constant)
    except (ValueError, RecursionError):
        raise BodyError("invalid_json") from None


def _fix_token(m: re.Match[bytes]) -> bytes:
    word = b"NaN" if m.group(3).lower() == b"nan" else b"Infinity"
    sign = m.group(2) if word == b"Infinity" else b""
    return m.group(1) + sign + word
