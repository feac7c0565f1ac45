"""Pydantic models: the OpenAPI contract and the slow paths (/candles, /metrics answers).

The ingest hot path never builds them per item (see the ingest package); they document the bodies
so clients and the fuzzer see them.

The candle field rules come from mt5db_core.market.candles, like the ingest validators' (symbol
pattern, count bound); tests/unit/api/test_schemas.py fails when the model and the validators
disagree.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from mt5db_core.market.candles import FLAGS_MAX, INT64_MAX, SYMBOL_PATTERN, VOLUME_MAX
from mt5db_core.market.timeframes import TIMEFRAMES

TIMEFRAME_VALUES = [t.name for t in TIMEFRAMES.values()] + [str(t.code) for t in TIMEFRAMES.values()]


class CandleIn(BaseModel):
    """One candle as the EA sends it (extra keys such as `meta` are accepted and ignored)."""

    model_config = ConfigDict(extra="allow", strict=True)

    ts: str = Field(
        description="bar time, ISO-8601; broker clock labelled Z", examples=["2025-03-12T14:07:00Z"]
    )
    symbol: str = Field(pattern=SYMBOL_PATTERN, examples=["AUDUSD"])
    timeframe: Literal[tuple(TIMEFRAME_VALUES)] = Field(examples=["M1"])  # type: ignore[valid-type]
    open: float = Field(gt=0, allow_inf_nan=False)
    high: float = Field(gt=0, allow_inf_nan=False)
    low: float = Field(gt=0, allow_inf_nan=False)
    close: float = Field(gt=0, allow_inf_nan=False)
    volume: int = Field(
        default=0, ge=0, le=VOLUME_MAX, description="tick volume (bounded so every resampled sum fits)"
    )
    spread: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="ask - bid in price units"
    )
    real_volume: int | None = Field(default=None, ge=0, le=INT64_MAX)
    meta: dict[str, Any] | None = None


class CandleBatchIn(BaseModel):
    """`{"items":[candle,...]}` (Rebuild default, PRO)."""

    items: list[CandleIn]


class CandleArrayIn(RootModel[list[CandleIn]]):
    """A bare JSON array of candles (tools, /ingest_batch)."""


class TickIn(BaseModel):
    """One tick as the EA sends it."""

    model_config = ConfigDict(extra="allow", strict=True)

    ts: str = Field(examples=["2025-03-12T14:08:31Z"])
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    bid: float = Field(gt=0, allow_inf_nan=False)
    ask: float = Field(gt=0, allow_inf_nan=False)
    last: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    volume: int = Field(default=0, ge=0)
    flags: int = Field(default=0, ge=0, le=FLAGS_MAX)
    digits: int | None = Field(default=None, ge=0, le=12)
    spread: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    meta: dict[str, Any] | None = None


class TickBatchIn(BaseModel):
    """`{"ticks":[tick,...]}`."""

    ticks: list[TickIn]


class ItemErrorOut(BaseModel):
    index: int
    reason: str
    field: str | None = None


class IngestResult(BaseModel):
    """The compact answer to every accepted ingest body (the EA greps `"inserted":N`)."""

    ok: bool
    received: int
    inserted: int
    updated: int
    duplicates: int
    rejected: int
    errors: list[ItemErrorOut]


class TickIngestResult(BaseModel):
    ok: bool
    received: int
    inserted: int
    rejected: int
    errors: list[ItemErrorOut]


class ErrorOut(BaseModel):
    detail: str
    request_id: str | None = None


class CandleOut(BaseModel):
    ts: str
    open: float
    high: float
    low: float
    close: float
    volume: int


class CandlesPage(BaseModel):
    """Candles ascending by ts; `source_timeframe` says what they were read or resampled from."""

    symbol: str
    timeframe: str
    source_timeframe: str | None
    count: int
    data: list[CandleOut]


class SeriesStats(BaseModel):
    symbol: str
    timeframe: str
    count: int
    first: str
    last: str
    last_arrival: str
    last_update: str
    gaps: int | None


class MetricsOut(BaseModel):
    series: list[SeriesStats]


class Health(BaseModel):
    status: str


# Named in the OpenAPI components so the request bodies can reference them (see app.py).
DOC_MODELS: list[type[BaseModel]] = [CandleIn, CandleBatchIn, CandleArrayIn, TickIn, TickBatchIn]


def body_ref(*names: str) -> dict[str, Any]:
    """openapi_extra documenting a JSON request body as anyOf the named component schemas."""
    refs = [{"$ref": f"#/components/schemas/{n}"} for n in names]
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"anyOf": refs}}}}}
