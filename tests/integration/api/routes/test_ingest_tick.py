"""POST /ingest/tick: every tick kept (no dedupe on symbol+second), optional tick -> M1 derivation."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres


def test_e_two_ticks_same_second_both_kept_and_resend_kept_too(client, clean, ea_body):
    body = ea_body("e_ticks_same_second")
    reply = client.post("/ingest/tick", body)
    assert (reply.status, reply.body) == (
        200,
        b'{"ok":true,"received":2,"inserted":2,"rejected":0,"errors":[]}',
    )
    # A failed flush is resent with the same ticks: raw storage keeps them (arrival sequence).
    assert client.post("/ingest/tick", body).status == 200
    assert clean.sql("SELECT count(*), count(DISTINCT seq) FROM ticks") == "4|4"
    assert clean.sql("SELECT string_agg(bid::text, ',' ORDER BY seq) FROM ticks") == (
        "160.887,160.889,160.887,160.889"
    )
    assert clean.sql("SELECT meta->>'ea' FROM ticks LIMIT 1") == "PDC-Rebuild"
    assert clean.sql("SELECT count(*) FROM market_data") == "0"  # derivation is off by default


def test_bare_tick_and_bad_ticks(client, clean):
    tick = b'{"ts":"2025-03-12T14:08:31Z","symbol":"EURJPY","bid":160.887,"ask":160.905}'
    assert (
        client.post("/ingest/tick", tick).body
        == b'{"ok":true,"received":1,"inserted":1,"rejected":0,"errors":[]}'
    )
    bad = (
        b'{"ticks":[{"ts":"2025-03-12T14:08:31Z","symbol":"EURJPY","bid":160.9,"ask":160.8},'
        b'{"ts":"2025-03-12T14:08:31Z","symbol":"EURJPY","bid":NaN,"ask":160.8},'
        b'{"ts":"2025-03-12T14:08:31Z","symbol":"EURJPY","bid":160.8,"ask":160.9,"meta":"x"},'
        b'{"symbol":"EURJPY","bid":160.8,"ask":160.9}]}'
    )
    reply = client.post("/ingest/tick", bad)
    assert reply.body == (
        b'{"ok":true,"received":4,"inserted":0,"rejected":4,"errors":['
        b'{"index":0,"reason":"ask_below_bid"},{"index":1,"reason":"not_finite","field":"bid"},'
        b'{"index":2,"reason":"invalid_type","field":"meta"},{"index":3,"reason":"missing_field","field":"ts"}]}'
    )
    assert client.post("/ingest/tick", b'{"ticks":5}').body == b'{"detail":"ticks_not_an_array"}'


def test_m1_derived_from_ticks_idempotently_per_minute(api_factory):
    env = api_factory(derive_m1_from_ticks=True, rate_limit_per_s=0)
    c = env.client()

    def tick(ts: str, bid: float, ask: float) -> str:
        return f'{{"ts":"{ts}","symbol":"EURUSD","bid":{bid},"ask":{ask},"last":0.0,"volume":0,"flags":6}}'

    first = [tick("2025-03-12T14:08:01Z", 1.0, 1.2), tick("2025-03-12T14:08:01Z", 1.4, 1.6)]
    second = [tick("2025-03-12T14:08:30Z", 0.8, 1.0), tick("2025-03-12T14:08:59Z", 1.2, 1.4),
              tick("2025-03-12T14:09:00Z", 2.0, 2.2)]  # fmt: skip
    assert c.post("/ingest/tick", f'{{"ticks":[{",".join(first)}]}}'.encode()).status == 200
    assert env.sql(
        "SELECT open, high, low, close, volume FROM market_data WHERE ts = '2025-03-12 14:08Z'"
    ) == ("1.1|1.5|1.1|1.5|2")
    assert c.post("/ingest/tick", f'{{"ticks":[{",".join(second)}]}}'.encode()).status == 200
    # The minute is recomputed from all its ticks (mid = (bid+ask)/2), not from the partial batch.
    expected = (
        "2025-03-12 14:08:00+00|1.100000|1.500000|0.900000|1.300000|4|ticks\n"
        "2025-03-12 14:09:00+00|2.100000|2.100000|2.100000|2.100000|1|ticks"
    )
    query = (
        "SELECT ts, round(open::numeric, 6), round(high::numeric, 6), round(low::numeric, 6), "
        "round(close::numeric, 6), volume, source FROM market_data ORDER BY ts"
    )
    assert env.sql(query) == expected
    updated = env.sql("SELECT string_agg(updated_at::text, ',' ORDER BY ts) FROM market_data")
    # Re-sending the same batch adds raw ticks (kept) and recomputes; bars only grow in volume.
    assert c.post("/ingest/tick", f'{{"ticks":[{",".join(second[2:])}]}}'.encode()).status == 200
    assert env.sql("SELECT volume FROM market_data WHERE ts = '2025-03-12 14:09Z'") == "2"
    assert (
        env.sql(
            "SELECT string_agg(updated_at::text, ',' ORDER BY ts) FROM market_data WHERE ts < '2025-03-12 14:09Z'"
        )
        == updated.split(",")[0]
    )


def _tick(**extra: object) -> str:
    base = '"ts":"2025-03-12T14:08:31Z","symbol":"EURJPY","bid":160.8,"ask":160.9'
    return "{" + base + "".join(f',"{k}":{v}' for k, v in extra.items()) + "}"


def test_values_the_columns_cannot_hold_are_rejected_per_item_and_the_rest_stored(client, clean):
    """Issue 12 item 4: each of these answered 500 and stored nothing of the batch (flags is int4,
    jsonb refuses NUL, the JSON encoder refuses nesting over 254 and integers over 64 bits)."""
    deep = '{"a":' * 255 + "1" + "}" * 255  # 255 objects: over the encoder's 254
    ok_deep = '{"a":' * 254 + "1" + "}" * 254
    ticks = [
        _tick(flags=2**31),                                       # 0 over int4
        _tick(flags=2**31 - 1),                                   # 1 ok
        _tick(meta='{"ea":"x\\u0000y"}'),                          # 2 NUL in a value
        _tick(meta='{"\\u0000":1}'),                               # 3 NUL in a key
        _tick(meta='{"path":"C:\\\\u0000"}'),                       # 4 ok: a backslash, then text
        _tick(meta=deep),                                         # 5 too deep
        _tick(meta=ok_deep),                                      # 6 ok
        _tick(meta=f'{{"n":{2**64}}}'),                           # 7 over 64 bits
        _tick(bid="NaN"),                                         # 8 (makes the body take the lenient decoder)
        _tick(meta=f'{{"n":{2**64 - 1}}}'),                       # 9 ok
    ]  # fmt: skip
    reply = client.post("/ingest/tick", ('{"ticks":[' + ",".join(ticks) + "]}").encode())
    assert reply.status == 200, reply.body
    assert reply.json()["errors"] == [
        {"index": 0, "reason": "out_of_range", "field": "flags"},
        {"index": 2, "reason": "invalid_meta", "field": "meta"},
        {"index": 3, "reason": "invalid_meta", "field": "meta"},
        {"index": 5, "reason": "invalid_meta", "field": "meta"},
        {"index": 7, "reason": "invalid_meta", "field": "meta"},
        {"index": 8, "reason": "not_finite", "field": "bid"},
    ]
    assert reply.json()["inserted"] == 4
    assert clean.sql("SELECT string_agg(flags::text, ',' ORDER BY seq) FROM ticks") == f"{2**31 - 1},0,0,0"
    assert clean.sql("SELECT meta->>'path' FROM ticks WHERE meta ? 'path'") == "C:\\u0000"
    assert clean.sql("SELECT meta->>'n' FROM ticks WHERE meta ? 'n'") == str(2**64 - 1)
