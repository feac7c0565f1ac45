"""`mt5db replay`: stream an MT5 history export or EA JSONL file through /ingest like an EA would.

Inputs: an MT5 history export (`Date,Time,Open,High,Low,Close,Volume` or the terminal's
tab-separated export, dates like 2021.10.18, broker clock; read by mt5db_core.market.mt5files) or
the EA's JSONL files (PDC_fallback_*, PDC_batch_fallback_*, PDC_outbound_*: each line a candle, an
{"items":[...]} body, or {"ts","kind","body"}). Headers follow the Rebuild EA:
X-API-Key, Content-Type/Accept application/json, X-Client-ReqId (+1 per request), X-Client-Items.
Safe to re-run: the server's idempotent merge turns a second replay into duplicates.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mt5db_core.market.mt5files import HistoryFormatError, read_bars, series_from_name
from mt5db_core.market.timeframes import canonical

# A refused connection fails at once; an address that never answers fails after this long.
CONNECT_TIMEOUT_S = 5.0


class ReplayError(Exception):
    """The file or the API cannot be used; the message says why."""


@dataclass
class ReplaySummary:
    """Totals summed from the API's own answers."""

    requests: int = 0
    failed_requests: int = 0
    received: int = 0
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"received={self.received} inserted={self.inserted} updated={self.updated} "
            f"duplicates={self.duplicates} rejected={self.rejected} requests={self.requests} "
            f"failed_requests={self.failed_requests} seconds={self.seconds:.2f} candles_per_s={self.rate:.0f}"
        )


def _price(value: float) -> float:
    """A price as replay has always sent it: rounded to five decimals (FX quotes have five)."""
    return round(value, 5)


def csv_candles(path: Path, symbol: str, timeframe: str) -> Iterator[dict[str, Any]]:
    """Candles from an MT5 history export; `ts` keeps the broker clock and gets the EA's `Z` label."""
    try:
        for bar in read_bars(path):
            yield {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(bar.ts)), "symbol": symbol,
                "timeframe": timeframe, "open": _price(bar.open), "high": _price(bar.high),
                "low": _price(bar.low), "close": _price(bar.close), "volume": bar.volume,
            }  # fmt: skip
    except HistoryFormatError as exc:
        raise ReplayError(str(exc)) from None


def jsonl_bodies(path: Path) -> Iterator[list[Any]]:
    """Candle lists from EA JSONL files, one per line (bare candle, items body or outbound record)."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip().lstrip(b"\xef\xbb\xbf").rstrip(b"\x00")
            if not line:
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                print(f"warning: {path.name}:{number}: not JSON, skipped", file=sys.stderr)
                continue
            if isinstance(doc, dict) and "body" in doc and "kind" in doc:
                if str(doc.get("kind", "")).startswith("tick"):
                    continue  # tick bodies belong to /ingest/tick; candles only here
                doc = doc["body"]
            if isinstance(doc, dict) and "items" in doc and isinstance(doc["items"], list):
                yield doc["items"]
            elif isinstance(doc, list):
                yield doc
            elif isinstance(doc, dict):
                yield [doc]


def batches(path: Path, *, batch: int, symbol: str | None, timeframe: str | None) -> Iterator[list[Any]]:
    """Request-sized candle lists from either file kind."""
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        pending: list[Any] = []
        for items in jsonl_bodies(path):
            pending.extend(items)
            while len(pending) >= batch:
                yield pending[:batch]
                pending = pending[batch:]
        if pending:
            yield pending
        return
    inferred_symbol, inferred_tf = series_from_name(path)
    symbol = symbol or inferred_symbol
    timeframe = canonical(timeframe) if timeframe else inferred_tf
    if not symbol or not timeframe:
        raise ReplayError(f"cannot infer symbol/timeframe from {path.name!r}; pass --symbol and --timeframe")
    chunk: list[Any] = []
    for candle in csv_candles(path, symbol, timeframe):
        chunk.append(candle)
        if len(chunk) >= batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _count_lines(path: Path) -> int:
    if not path.is_file():
        raise ReplayError(f"{path} is not a file")
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


async def replay_file(
    file: str | Path,
    *,
    url: str,
    api_key: str,
    batch: int = 500,
    symbol: str | None = None,
    timeframe: str | None = None,
    concurrency: int = 4,
    progress: bool = True,
) -> ReplaySummary:
    """Post the file's candles to {url}/ingest; the summary adds up the API's answers."""
    import aiohttp

    path = Path(file)
    total_lines = max(_count_lines(path) - 1, 1)
    summary = ReplaySummary()
    queue: asyncio.Queue[tuple[int, list[Any]] | None] = asyncio.Queue(maxsize=concurrency * 2)
    endpoint = url.rstrip("/") + "/ingest"
    started = time.monotonic()
    sent_items = 0

    def show() -> None:
        if not progress:
            return
        done = min(sent_items / total_lines, 1.0)
        bar = "#" * int(done * 30)
        rate = summary.received / max(time.monotonic() - started, 1e-9)
        sys.stderr.write(f"\r[{bar:<30}] {sent_items}/{total_lines} candles {rate:,.0f}/s")
        sys.stderr.flush()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sent_items
        while True:
            job = await queue.get()
            if job is None:
                return
            req_id, items = job
            body = orjson.dumps({"items": items})
            headers = {"X-Client-ReqId": str(req_id), "X-Client-Items": str(len(items))}
            answer: dict[str, Any] | None = None
            for attempt in range(5):  # 429/503: wait like the PRO EA (>= 1.5 s, doubling)
                async with session.post(endpoint, data=body, headers=headers) as resp:
                    status = resp.status
                    text = await resp.read()
                summary.statuses[status] = summary.statuses.get(status, 0) + 1
                if status in (429, 503) and attempt < 4:
                    await asyncio.sleep(1.5 * 2**attempt)
                    continue
                if status == 200:
                    answer = orjson.loads(text)
                break
            summary.requests += 1
            sent_items += len(items)
            if answer is None:
                summary.failed_requests += 1
            else:
                for key in ("received", "inserted", "updated", "duplicates", "rejected"):
                    setattr(summary, key, getattr(summary, key) + int(answer.get(key, 0)))
            show()

    base_headers = {
        "X-API-Key": api_key, "Content-Type": "application/json", "Accept": "application/json",
        "User-Agent": "mt5db-replay/0.1",
    }  # fmt: skip
    timeout = aiohttp.ClientTimeout(total=30, sock_connect=CONNECT_TIMEOUT_S)

    async def produce() -> None:
        for job in enumerate(batches(path, batch=batch, symbol=symbol, timeframe=timeframe), 1):
            await queue.put(job)
        for _ in workers:
            await queue.put(None)

    async with aiohttp.ClientSession(headers=base_headers, timeout=timeout) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(max(1, concurrency))]
        producer = asyncio.create_task(produce())
        # A worker that dies (the API is not listening) must stop the producer, which would
        # otherwise wait forever on the full queue.
        await asyncio.wait([producer, *workers], return_when=asyncio.FIRST_EXCEPTION)
        for task in (producer, *workers):
            task.cancel()
        results = await asyncio.gather(producer, *workers, return_exceptions=True)
    summary.seconds = time.monotonic() - started
    if progress:
        sys.stderr.write("\n")
    for result in results:
        if isinstance(result, ReplayError):  # the file cannot be read
            raise result
        if isinstance(result, aiohttp.ClientConnectionError | TimeoutError) and summary.requests == 0:
            raise ReplayError(f"cannot connect to the API at {url}: {result}") from result
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise ReplayError(f"request failed: {type(result).__name__}: {result}") from result
    if summary.statuses.get(401):
        raise ReplayError("the API answered 401 unauthorized: check --api-key")
    return summary
