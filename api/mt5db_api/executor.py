"""`mt5db executor --dry-run`: the executor EA's polling protocol, in Python, against the API.

The same loop as the MQL5 Executer (docs/ea-contract.md §11): poll `GET /signals/next` with the
account, symbols and timeframe; refuse a signal that expired on the way (its `meta.generated_at`
plus `ttl_sec` is past: acked REJECTED); never open the same id twice (a repeat is ignored); "fill"
it against the open of the bar after the signal's bar (`meta.bar_ts`, else the newest stored bar),
read from `GET /candles`, waiting up to `fill_wait_s` for that bar to exist; then ack with
`POST /signals/ack`, retrying until the API answers 200. Nothing reaches a broker: the fill
is simulated and the ticket is a counter. Like `mt5db replay`, a client over HTTP only.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from mt5db_core.market.timeframes import TIMEFRAMES

DRY_RUN_TICKETS = 9_000_000  # dry-run tickets count from here, so they never look like a broker's


class ExecutorError(Exception):
    """The API cannot be used (wrong key, unreachable): the message says why."""


@dataclass
class Outcome:
    """What the executor did with one delivered signal."""

    signal_id: str
    symbol: str
    side: str
    status: str  # FILLED | REJECTED | IGNORED (a repeated id)
    reason: str
    price: float | None = None
    bar_ts: str | None = None
    ticket: int | None = None
    ack_attempts: int = 0

    def line(self) -> str:
        if self.status == "FILLED":
            return (
                f"FILLED {self.side} {self.symbol} id={self.signal_id} at {self.price} (open of {self.bar_ts}), "
                f"dry-run ticket {self.ticket}; acked after {self.ack_attempts} attempt(s)"
            )
        if self.status == "IGNORED":
            return f"IGNORED {self.side} {self.symbol} id={self.signal_id}: {self.reason}"
        return f"REJECTED {self.side} {self.symbol} id={self.signal_id}: {self.reason}; acked after {self.ack_attempts} attempt(s)"


@dataclass
class Summary:
    polls: int = 0
    received: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def line(self) -> str:
        return (
            f"polls={self.polls} received={self.received} filled={self.count('FILLED')} "
            f"rejected={self.count('REJECTED')} ignored={self.count('IGNORED')}"
        )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def expired(signal: dict[str, Any], now: datetime) -> bool:
    """True when the signal's TTL has run out on the server's clock (`meta.generated_at`)."""
    generated = _parse_time((signal.get("meta") or {}).get("generated_at"))
    if generated is None:
        return False  # nothing to measure against: the server never delivers expired signals
    return now - generated > timedelta(seconds=int(signal.get("ttl_sec") or 0))


class DryRunExecutor:
    """Poll, fill against the next bar's open, ack; `seen` makes every id open at most once."""

    def __init__(
        self,
        session: Any,
        *,
        url: str,
        account_id: str,
        symbols: list[str],
        timeframe: str,
        fill_wait_s: float = 30.0,
        ack_timeout_s: float = 120.0,
        echo: bool = True,
    ) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.account_id = account_id
        self.symbols = symbols
        self.timeframe = timeframe
        self.fill_wait_s = fill_wait_s
        self.ack_timeout_s = ack_timeout_s
        self.echo = echo
        self.seen: set[str] = set()
        self.next_ticket = DRY_RUN_TICKETS

    async def _get(self, path: str, query: dict[str, Any]) -> tuple[int, Any]:
        async with self.session.get(f"{self.url}{path}?{urlencode(query)}") as resp:
            status = resp.status
            body = await resp.json(content_type=None) if status == 200 else await resp.text()
        if status == 401:
            raise ExecutorError("the API answered 401 unauthorized: check --api-key")
        if status == 403:
            raise ExecutorError(f"the key lacks a scope for {path} (needs signals and read)")
        return status, body

    async def poll(self) -> dict[str, Any] | None:
        """One `GET /signals/next`: the delivered signal, or None."""
        query = {
            "account_id": self.account_id,
            "symbols": ",".join(self.symbols),
            "timeframe": self.timeframe,
        }
        status, body = await self._get("/signals/next", query)
        if status != 200:
            return None  # 429/503: poll again later, like the EA
        signals = body.get("signals") or []
        return signals[0] if signals else None

    async def _bar_after(self, symbol: str, timeframe: str, bar_ts: datetime | None) -> dict[str, Any] | None:
        """The first stored bar after `bar_ts` (None: after the newest bar now), waiting for it."""
        width = TIMEFRAMES[timeframe].seconds
        if bar_ts is None:
            status, page = await self._get("/candles", {"symbol": symbol, "timeframe": timeframe, "limit": 1})
            if status != 200 or not page.get("data"):
                return None
            bar_ts = _parse_time(page["data"][-1]["ts"])
            assert bar_ts is not None
        start = (bar_ts + timedelta(seconds=width)).strftime("%Y-%m-%dT%H:%M:%SZ")
        deadline = time.monotonic() + self.fill_wait_s
        while True:
            status, page = await self._get(
                "/candles", {"symbol": symbol, "timeframe": timeframe, "start": start, "limit": 1}
            )
            if status == 200 and page.get("data"):
                bar: dict[str, Any] = page["data"][0]
                return bar
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(1.0)

    async def ack(self, body: dict[str, Any]) -> int:
        """POST /signals/ack until it answers 200; returns the attempts it took."""
        deadline = time.monotonic() + self.ack_timeout_s
        attempt, delay = 0, 0.5
        while True:
            attempt += 1
            try:
                async with self.session.post(f"{self.url}/signals/ack", json=body) as resp:
                    status = resp.status
                    await resp.read()
                if status == 200:
                    return attempt
                if status in (400, 401, 403):
                    raise ExecutorError(f"the API refused the ack with {status}")
            except (TimeoutError, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise ExecutorError(
                        f"ack {body['id']} not accepted within {self.ack_timeout_s:.0f}s: {exc}"
                    ) from exc
            if time.monotonic() >= deadline:
                raise ExecutorError(f"ack {body['id']} not accepted within {self.ack_timeout_s:.0f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def handle(self, signal: dict[str, Any]) -> Outcome:
        """Refuse, ignore or fill one delivered signal, and ack what was done."""
        sid, symbol, side = str(signal["id"]), str(signal["symbol"]), str(signal["side"])
        timeframe = str(signal.get("timeframe") or self.timeframe)
        if sid in self.seen:
            return Outcome(sid, symbol, side, "IGNORED", "this id was handled already (never opened twice)")
        self.seen.add(sid)
        ack: dict[str, Any] = {"id": sid, "symbol": symbol, "side": side, "account_id": self.account_id}
        if expired(signal, datetime.now(UTC)):
            outcome = Outcome(
                sid, symbol, side, "REJECTED", f"expired on arrival (ttl {signal.get('ttl_sec')}s)"
            )
        elif side == "NONE":
            outcome = Outcome(sid, symbol, side, "REJECTED", "side NONE: nothing to trade")
        else:
            bar_ts = _parse_time((signal.get("meta") or {}).get("bar_ts"))
            bar = await self._bar_after(symbol, timeframe, bar_ts)
            if bar is None:
                outcome = Outcome(
                    sid, symbol, side, "REJECTED", f"no next bar within {self.fill_wait_s:.0f}s"
                )
            else:
                self.next_ticket += 1
                outcome = Outcome(sid, symbol, side, "FILLED", "dry run", float(bar["open"]), bar["ts"],
                                  self.next_ticket)  # fmt: skip
                ack |= {"mt5_ticket": outcome.ticket, "price": outcome.price, "ts_exec": outcome.bar_ts}
        outcome.ack_attempts = await self.ack(
            ack | {"status": "FILLED" if outcome.status == "FILLED" else "REJECTED"}
        )
        return outcome

    async def run(self, *, polls: int | None, interval_s: float, idle_polls: int | None) -> Summary:
        """Poll `polls` times (None: forever), or until `idle_polls` empty polls in a row."""
        summary = Summary()
        idle = 0
        while polls is None or summary.polls < polls:
            summary.polls += 1
            signal = await self.poll()
            if signal is None:
                idle += 1
                if idle_polls is not None and idle >= idle_polls:
                    break
                await asyncio.sleep(interval_s)
                continue
            idle = 0
            summary.received += 1
            if self.echo:
                conf, sl, tp = signal.get("confidence"), signal.get("sl_pips"), signal.get("tp_pips")
                meta = json.dumps(signal.get("meta"), separators=(",", ":"))
                print(f"received {signal['side']} {signal['symbol']} {signal.get('timeframe')} id={signal['id']} "
                      f"confidence {conf} sl {sl} tp {tp} pips meta {meta}", flush=True)  # fmt: skip
            outcome = await self.handle(signal)
            summary.outcomes.append(outcome)
            if self.echo:
                print(outcome.line(), flush=True)
        return summary


async def run_executor(
    *,
    url: str,
    api_key: str,
    account_id: str,
    symbols: list[str],
    timeframe: str,
    polls: int | None = None,
    interval_s: float = 1.0,
    idle_polls: int | None = None,
    fill_wait_s: float = 30.0,
    echo: bool = True,
) -> Summary:
    """The dry-run executor over one keep-alive session (headers as the Executer sends them)."""
    import aiohttp

    headers = {
        "X-API-Key": api_key,
        "Accept": "application/json",
        "User-Agent": "mt5db-executor/0.1 (dry-run)",
    }
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as session:
        executor = DryRunExecutor(
            session, url=url, account_id=account_id, symbols=symbols, timeframe=timeframe,
            fill_wait_s=fill_wait_s, echo=echo,
        )  # fmt: skip
        try:
            return await executor.run(polls=polls, interval_s=interval_s, idle_polls=idle_polls)
        except aiohttp.ClientError as exc:
            raise ExecutorError(f"the API at {url} cannot be reached: {exc}") from exc
