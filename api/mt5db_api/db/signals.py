"""SQL for the signal tables (docs/ea-contract.md §11): signals, their deliveries, acks, feedback.

Every time here is the server's clock (`now()`): a signal is expired once now − ts > ttl_sec, and
the TTL is never measured against broker-clock candle times.

The lease (`lease_next`) is one statement, committed before the answer is sent: it picks the newest
pending live candidate with `FOR UPDATE SKIP LOCKED` (concurrent pollers skip a row another one is
taking), records the delivery in `signal_deliveries` whose primary key (signal, account) makes
"at most once per (account, id)" a constraint rather than a hope, and moves a targeted signal to
SENT. A broadcast signal stays PENDING for the other accounts until it expires.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from mt5db_core.market.tables import ORDER_FEEDBACK, SIGNAL_ACKS, SIGNAL_DELIVERIES, SIGNALS

SIDES = ("BUY", "SELL", "CLOSE", "NONE")
ACK_STATUSES = ("FILLED", "REJECTED")
LEGACY_ACK_STATUS = "ACKED"  # the old {"keys":[...]} form names no status

# The columns an EA receives (§11.1), in its order.
WIRE_COLUMNS = "id, symbol, timeframe, side, confidence, ttl_sec, sl_pips, tp_pips, meta"

_LEASE = f"""
WITH candidate AS (
    SELECT s.id FROM {SIGNALS} s
    WHERE s.state = 'PENDING' AND s.delivery = 'live'
      AND s.symbol = ANY($1::text[]) AND s.timeframe = $2
      AND (s.account_id IS NULL OR s.account_id = $3)
      AND s.expires_at > now()
      AND NOT EXISTS (SELECT 1 FROM {SIGNAL_DELIVERIES} d WHERE d.signal_id = s.id AND d.account_id = $4)
    ORDER BY s.ts DESC
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), delivered AS (
    INSERT INTO {SIGNAL_DELIVERIES} (signal_id, account_id)
    SELECT id, $4 FROM candidate
    ON CONFLICT DO NOTHING
    RETURNING signal_id
), sent AS (
    UPDATE {SIGNALS} SET state = 'SENT', sent_at = now()
    WHERE id IN (SELECT signal_id FROM delivered) AND account_id IS NOT NULL
    RETURNING id
)
SELECT {", ".join(f"s.{c.strip()}" for c in WIRE_COLUMNS.split(","))}
FROM {SIGNALS} s JOIN delivered ON s.id = delivered.signal_id
"""  # noqa: S608 - constant table names; values are bound


async def lease_next(conn: Any, *, symbols: list[str], timeframe: str, account_id: str | None) -> Any:
    """The newest pending live signal for this poller, leased to it, or None (one statement)."""
    return await conn.fetchrow(_LEASE, symbols, timeframe, account_id, account_id or "")


async def insert_signal(
    conn: Any,
    *,
    symbol: str,
    timeframe: str,
    side: str,
    confidence: float,
    ttl_sec: int,
    sl_pips: int,
    tp_pips: int,
    meta: dict[str, Any],
    delivery: str,
    source: str,
    signal_id: uuid.UUID | None = None,
    account_id: str | None = None,
    shadow_reason: str | None = None,
    model_version_id: int | None = None,
    bar_ts: Any = None,
) -> Any:
    """Insert a signal; returns its (id, ts, expires_at), or None when it exists already (the same
    id, or the same model's signal for the same bar: one per (version, series, bar))."""
    return await conn.fetchrow(
        f"""
        INSERT INTO {SIGNALS} (id, symbol, timeframe, side, confidence, ttl_sec, sl_pips, tp_pips, meta,
            account_id, ts, expires_at, delivery, source, shadow_reason, model_version_id, bar_ts)
        VALUES ($1, $2, $3, $4, $5, $6::integer, $7, $8, $9::jsonb, $10, now(), now() + $6::integer * interval '1 second',
            $11, $12, $13, $14, $15)
        ON CONFLICT DO NOTHING
        RETURNING id, ts, expires_at
        """,  # noqa: S608 - constant table name; values are bound
        signal_id or uuid.uuid4(),
        symbol,
        timeframe,
        side,
        confidence,
        ttl_sec,
        sl_pips,
        tp_pips,
        json.dumps(meta),
        account_id,
        delivery,
        source,
        shadow_reason,
        model_version_id,
        bar_ts,
    )


_ACK = f"""
WITH known AS (
    SELECT id FROM {SIGNALS} WHERE id = $1
), recorded AS (
    INSERT INTO {SIGNAL_ACKS} (signal_id, status, symbol, side, mt5_ticket, price, ts_exec, account_id, body)
    SELECT id, $2, $3, $4, $5, $6, $7, $8, $9::jsonb FROM known
    ON CONFLICT DO NOTHING
    RETURNING signal_id
), acked AS (
    UPDATE {SIGNALS} SET state = 'ACKED', acked_at = now()
    WHERE id IN (SELECT signal_id FROM recorded) AND state <> 'ACKED'
    RETURNING id
)
SELECT (SELECT count(*) FROM known) AS known, (SELECT count(*) FROM recorded) AS recorded
"""  # noqa: S608 - constant table names; values are bound


async def record_ack(
    conn: Any,
    *,
    signal_id: uuid.UUID,
    status: str,
    symbol: str | None,
    side: str | None,
    mt5_ticket: int | None,
    price: float | None,
    ts_exec: str | None,
    account_id: str | None,
    body: dict[str, Any],
) -> tuple[bool, bool]:
    """(known, recorded): a repeated (id, status, account) records nothing and changes nothing."""
    row = await conn.fetchrow(
        _ACK, signal_id, status, symbol, side, mt5_ticket, price, ts_exec, account_id, json.dumps(body)
    )
    return bool(row["known"]), bool(row["recorded"])


async def latest_live(conn: Any, symbol: str) -> Any:
    """The newest live signal of a symbol (the legacy read-only view; never a shadow signal)."""
    return await conn.fetchrow(
        f"SELECT id, side, ts FROM {SIGNALS} WHERE symbol = $1 AND delivery = 'live' ORDER BY ts DESC LIMIT 1",  # noqa: S608 - constant
        symbol,
    )


async def recent(
    conn: Any, *, symbol: str | None, delivery: str | None, source: str | None, limit: int
) -> list[Any]:
    """The newest signals, live and shadow alike, with their state and why a shadow one is shadow."""
    return list(
        await conn.fetch(
            f"""
            SELECT s.id, s.symbol, s.timeframe, s.side, s.confidence, s.ttl_sec, s.sl_pips, s.tp_pips, s.meta,
                   s.account_id, s.ts, s.expires_at, s.state, s.delivery, s.source, s.shadow_reason,
                   s.model_version_id, s.bar_ts,
                   (SELECT count(*) FROM {SIGNAL_DELIVERIES} d WHERE d.signal_id = s.id) AS deliveries
            FROM {SIGNALS} s
            WHERE ($1::text IS NULL OR s.symbol = $1) AND ($2::text IS NULL OR s.delivery = $2)
              AND ($3::text IS NULL OR s.source = $3)
            ORDER BY s.ts DESC LIMIT $4
            """,  # noqa: S608 - constant table names; values are bound
            symbol,
            delivery,
            source,
            limit,
        )
    )


async def store_feedback(conn: Any, body: dict[str, Any]) -> int:
    """Keep a feedback object exactly as sent; returns its id."""
    feedback_id: int = await conn.fetchval(
        f"INSERT INTO {ORDER_FEEDBACK} (body) VALUES ($1::jsonb) RETURNING id",  # noqa: S608 - constant
        json.dumps(body),
    )
    return feedback_id


async def expire_due(conn: Any) -> dict[str, int]:
    """Mark pending signals past their TTL as EXPIRED; returns how many per delivery (live/shadow)."""
    rows = await conn.fetch(
        f"""
        WITH expired AS (
            UPDATE {SIGNALS} SET state = 'EXPIRED', expired_at = now()
            WHERE state = 'PENDING' AND expires_at <= now()
            RETURNING delivery
        )
        SELECT delivery, count(*) AS n FROM expired GROUP BY delivery
        """  # noqa: S608 - constant table name
    )
    return {r["delivery"]: int(r["n"]) for r in rows}


async def unacked_deliveries(conn: Any, older_than_s: float) -> int:
    """Deliveries of the last day older than `older_than_s` that no ack answered (an EA took a
    signal and never said what it did with it)."""
    count: int = await conn.fetchval(
        f"""
        SELECT count(*) FROM {SIGNAL_DELIVERIES} d
        WHERE d.delivered_at > now() - interval '1 day'
          AND d.delivered_at < now() - $1 * interval '1 second'
          AND NOT EXISTS (
              SELECT 1 FROM {SIGNAL_ACKS} a
              WHERE a.signal_id = d.signal_id AND (a.account_id IS NULL OR a.account_id = d.account_id
                                                   OR d.account_id = '')
          )
        """,  # noqa: S608 - constant table names; values are bound
        float(older_than_s),
    )
    return count
