"""POST /ingest and /ingest_batch with the EA's own bytes (docs/ea-contract.md §13) and broken bodies."""

from __future__ import annotations

import orjson
import pytest

pytestmark = pytest.mark.postgres

EMPTY = b'{"ok":true,"received":0,"inserted":0,"updated":0,"duplicates":0,"rejected":0,"errors":[]}'


def counts(
    received: int, inserted: int = 0, updated: int = 0, duplicates: int = 0, errors: str = ""
) -> bytes:
    rejected = errors.count('"index"')
    return (
        f'{{"ok":true,"received":{received},"inserted":{inserted},"updated":{updated},'
        f'"duplicates":{duplicates},"rejected":{rejected},"errors":[{errors}]}}'
    ).encode()


def test_a_bare_candle_as_sent_then_resend_is_duplicate(client, clean, ea_body):
    body = ea_body("a_rebuild_bare_candle")
    first = client.post("/ingest", body)
    assert (first.status, first.body) == (200, counts(1, inserted=1))
    again = client.post("/ingest", body)
    assert (again.status, again.body) == (200, counts(1, duplicates=1))
    assert clean.sql("SELECT symbol, timeframe, ts, open, high, low, close, volume FROM market_data") == (
        "AUDUSD|M1|2025-03-12 14:07:00+00|0.63012|0.63025|0.63004|0.63019|41"
    )


def test_b_batch_with_jpy_pair(client, clean, ea_body):
    reply = client.post("/ingest", ea_body("b_rebuild_batch"))
    assert (reply.status, reply.body) == (200, counts(3, inserted=3))
    assert clean.sql("SELECT string_agg(symbol || ':' || close, ',' ORDER BY symbol) FROM market_data") == (
        "AUDUSD:0.63027,EURJPY:160.889,USDCAD:1.44214"
    )


def test_c_pro_forming_bar_floored_then_later_snapshot_merges(client, clean, ea_body):
    body = ea_body("c_pro_forming_h1")
    assert client.post("/ingest", body).body == counts(1, inserted=1)
    assert client.post("/ingest", body).body == counts(1, duplicates=1)
    later = body.replace(b'"ts":"2025-03-12T14:37:00Z"', b'"ts":"2025-03-12T14:52:00Z"')
    later = later.replace(b'"high":1.44262', b'"high":1.44300').replace(b'"low":1.44107', b'"low":1.44120')
    later = later.replace(b'"close":1.44231', b'"close":1.44288').replace(b'"volume":2174', b'"volume":3050')
    reply = client.post("/ingest", later)
    assert (reply.status, reply.body) == (200, counts(1, updated=1))
    # An older, smaller snapshot arriving late changes nothing: the merge is monotone.
    assert client.post("/ingest", body).body == counts(1, duplicates=1)
    assert clean.sql("SELECT ts, open, high, low, close, volume, spread FROM market_data") == (
        "2025-03-12 14:00:00+00|1.4415|1.443|1.44107|1.44288|3050|0.00017"
    )


def test_d_bare_array_numeric_code_and_sunday_w1_on_both_paths(client, clean, ea_body):
    body = ea_body("d_bare_array_h2_w1")
    assert client.post("/ingest_batch", body).body == counts(2, inserted=2)
    assert client.post("/ingest", body).body == counts(2, duplicates=2)
    assert clean.sql(
        "SELECT string_agg(timeframe || '@' || ts, ',' ORDER BY timeframe) FROM market_data"
    ) == ("H2@2025-03-12 12:00:00+00,W1@2025-03-09 00:00:00+00")


def test_bearer_auth_and_numeric_h1_code(clean, ea_body):
    c = clean.client()
    body = ea_body("a_rebuild_bare_candle").replace(b'"timeframe":"M1"', b'"timeframe":"16385"')
    reply = c.post("/ingest", body, key=None, headers={"Authorization": f"Bearer {clean.keys.ingest_read}"})
    assert (reply.status, reply.body) == (200, counts(1, inserted=1))
    assert clean.sql("SELECT timeframe, ts FROM market_data") == "H1|2025-03-12 14:00:00+00"


def test_same_bar_twice_in_one_batch_is_merged_before_the_database(client, clean):
    snap1 = b'{"ts":"2025-03-12T14:00:00Z","symbol":"EURUSD","timeframe":"M5","open":1.1,"high":1.2,"low":1.0,"close":1.15,"volume":10}'
    snap2 = b'{"ts":"2025-03-12T14:03:00Z","symbol":"EURUSD","timeframe":"M5","open":1.1,"high":1.3,"low":1.05,"close":1.25,"volume":20}'
    reply = client.post("/ingest", b"[" + snap1 + b"," + snap1 + b"," + snap2 + b"]")
    assert reply.body == counts(3, inserted=1, updated=1, duplicates=1)
    assert clean.sql("SELECT open, high, low, close, volume FROM market_data") == "1.1|1.3|1|1.25|20"


def test_lenient_framing_bom_trailing_nul_and_whitespace(client, ea_body):
    body = b"\xef\xbb\xbf" + ea_body("a_rebuild_bare_candle") + b"\x00\x00\r\n "
    assert client.post("/ingest", body).body == counts(1, inserted=1)


def test_timestamp_forms_land_in_one_bucket(client, clean):
    base = '"symbol":"EURUSD","timeframe":"H4","open":1.1,"high":1.2,"low":1.0,"close":1.15,"volume":5'
    forms = ["2025-03-12T10:30:00Z", "2025-03-12T13:30:00+03:00", "2025-03-12T10:30:00.250Z",
             "2025-03-12T10:30:00", 1741775400000]  # fmt: skip
    items = ",".join(f'{{"ts":{orjson.dumps(f).decode()},{base}}}' for f in forms)
    reply = client.post("/ingest", f"[{items}]".encode())
    assert reply.body == counts(5, inserted=1, duplicates=4)
    assert clean.sql("SELECT ts FROM market_data") == "2025-03-12 08:00:00+00"


GOOD = '{"ts":"2025-03-12T14:07:00Z","symbol":"AUDUSD","timeframe":"M1","open":0.63012,"high":0.63025,"low":0.63004,"close":0.63019,"volume":41}'


def item(**changes: object) -> str:
    doc = orjson.loads(GOOD)
    for k, v in changes.items():
        if v is ...:
            doc.pop(k)
        else:
            doc[k] = v
    return orjson.dumps(doc).decode()


BAD_ITEMS = [
    (item(high=0.5), '{"index":0,"reason":"high_below_low"}'),
    (item(high=0.63013), '{"index":0,"reason":"high_below_open_close"}'),
    (item(low=0.63015), '{"index":0,"reason":"low_above_open_close"}'),
    (item(open="0.63012"), '{"index":0,"reason":"invalid_type","field":"open"}'),
    (item(close="NaN"), '{"index":0,"reason":"not_finite","field":"close"}'),
    (item(high="Infinity"), '{"index":0,"reason":"not_finite","field":"high"}'),
    (GOOD.replace("0.63025", "NaN"), '{"index":0,"reason":"not_finite","field":"high"}'),
    (GOOD.replace("0.63025", "Infinity"), '{"index":0,"reason":"not_finite","field":"high"}'),
    (GOOD.replace("0.63004", "-Infinity"), '{"index":0,"reason":"not_finite","field":"low"}'),
    (GOOD.replace("0.63025", "nan"), '{"index":0,"reason":"not_finite","field":"high"}'),
    (GOOD.replace("0.63025", "1" + "0" * 400), '{"index":0,"reason":"not_finite","field":"high"}'),
    (
        GOOD.replace('"volume":41', '"volume":' + "9" * 30),
        '{"index":0,"reason":"invalid_volume","field":"volume"}',
    ),
    (item(open=None), '{"index":0,"reason":"invalid_type","field":"open"}'),
    (item(open=True), '{"index":0,"reason":"invalid_type","field":"open"}'),
    (item(open=-1), '{"index":0,"reason":"not_positive","field":"open"}'),
    (item(close=...), '{"index":0,"reason":"missing_field","field":"close"}'),
    (item(ts=...), '{"index":0,"reason":"missing_field","field":"ts"}'),
    (item(symbol=...), '{"index":0,"reason":"missing_field","field":"symbol"}'),
    (item(timeframe=...), '{"index":0,"reason":"missing_field","field":"timeframe"}'),
    (item(volume=-5), '{"index":0,"reason":"negative_volume","field":"volume"}'),
    (item(volume=1.5), '{"index":0,"reason":"invalid_volume","field":"volume"}'),
    (item(volume="41"), '{"index":0,"reason":"invalid_volume","field":"volume"}'),
    (item(symbol="X" * 300), '{"index":0,"reason":"invalid_symbol","field":"symbol"}'),
    (item(symbol=""), '{"index":0,"reason":"invalid_symbol","field":"symbol"}'),
    (item(symbol="EUR USD"), '{"index":0,"reason":"invalid_symbol","field":"symbol"}'),
    (
        item(symbol="EUR'; DROP TABLE market_data;--"),
        '{"index":0,"reason":"invalid_symbol","field":"symbol"}',
    ),
    (item(timeframe="M7"), '{"index":0,"reason":"invalid_timeframe","field":"timeframe"}'),
    (item(timeframe="0"), '{"index":0,"reason":"invalid_timeframe","field":"timeframe"}'),
    (item(ts="2099-01-01T00:00:00Z"), '{"index":0,"reason":"ts_out_of_range","field":"ts"}'),
    (item(ts="1970-01-01T00:00:00Z"), '{"index":0,"reason":"ts_out_of_range","field":"ts"}'),
    (item(ts="2025.03.12 14:00"), '{"index":0,"reason":"invalid_ts","field":"ts"}'),
    (item(ts="yesterday"), '{"index":0,"reason":"invalid_ts","field":"ts"}'),
    (item(ts=1.5), '{"index":0,"reason":"invalid_ts","field":"ts"}'),
    (item(ts=["2025-03-12T14:07:00Z"]), '{"index":0,"reason":"invalid_ts","field":"ts"}'),
    (item(symbol=["AUDUSD"]), '{"index":0,"reason":"invalid_symbol","field":"symbol"}'),
    (item(timeframe={"tf": "M1"}), '{"index":0,"reason":"invalid_timeframe","field":"timeframe"}'),
    ("42", '{"index":0,"reason":"not_an_object"}'),
    ("[]", '{"index":0,"reason":"not_an_object"}'),
]


@pytest.mark.parametrize(
    ("bad", "error"), BAD_ITEMS, ids=[e.split('"reason":"')[1][:40] for _, e in BAD_ITEMS]
)
def test_bad_item_rejected_good_neighbour_stored(client, clean, bad, error):
    neighbour = GOOD.replace("AUDUSD", "USDCAD")
    reply = client.post("/ingest", f'{{"items":[{bad},{neighbour}]}}'.encode())
    assert reply.status == 200
    assert reply.body == counts(2, inserted=1, errors=error)
    assert clean.sql("SELECT string_agg(symbol, ',') FROM market_data") == "USDCAD"


def test_single_bad_item_still_200_and_nothing_stored(client, clean):
    reply = client.post("/ingest", item(high=0.5).encode())
    assert (reply.status, reply.body) == (200, counts(1, errors='{"index":0,"reason":"high_below_low"}'))
    assert clean.sql("SELECT count(*) FROM market_data") == "0"


@pytest.mark.parametrize("body", [b'{"items":[]}', b"[]"])
def test_empty_batch(client, body):
    reply = client.post("/ingest", body)
    assert (reply.status, reply.body) == (200, EMPTY)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (GOOD[:-20].encode(), "invalid_json"),
        (b'{"items":[' + GOOD.encode(), "invalid_json"),
        (b"", "empty_body"),
        (b"\x00\x00", "empty_body"),
        (b"not json at all", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'"a string"', "wrong_top_level_type"),
        (b"42", "wrong_top_level_type"),
        (b"null", "wrong_top_level_type"),
        (b'{"items":{"a":1}}', "items_not_an_array"),
    ],
)
def test_unusable_body_is_400_compact(client, clean, body, detail):
    reply = client.post("/ingest", body)
    assert (reply.status, reply.body) == (400, f'{{"detail":"{detail}"}}'.encode())
    assert clean.sql("SELECT count(*) FROM market_data") == "0"


def test_413_over_item_limit(api_factory):
    env = api_factory(max_items=3, rate_limit_per_s=0)
    c = env.client()
    reply = c.post("/ingest", ("[" + ",".join([GOOD] * 4) + "]").encode())
    assert (reply.status, reply.body) == (413, b'{"detail":"too_many_items","limit_items":3}')
    assert c.post("/ingest", ("[" + ",".join([GOOD] * 3) + "]").encode()).status == 200


def test_413_over_byte_limit(api_factory):
    env = api_factory(max_body_bytes=2048, rate_limit_per_s=0)
    reply = env.client().post("/ingest", ("[" + ",".join([GOOD] * 30) + "]").encode())
    assert (reply.status, reply.body) == (413, b'{"detail":"body_too_large","limit_bytes":2048}')


def test_errors_list_is_capped_but_rejected_counts_all(client):
    reply = client.post("/ingest", ("[" + ",".join(["1"] * 150) + "]").encode()).json()
    assert reply["rejected"] == 150
    assert len(reply["errors"]) == 100


def test_response_is_compact_for_the_ea_grep(client, ea_body):
    reply = client.post("/ingest", ea_body("b_rebuild_batch"))
    assert b'"inserted":3' in reply.body and b'"duplicates":0' in reply.body and b" " not in reply.body
    assert reply.headers["content-type"] == "application/json"
    assert len(reply.headers["x-request-id"]) == 16


def _batch(start: int, n: int) -> bytes:
    items = [orjson.loads(GOOD) | {"ts": f"2025-03-{10 + (start + i) // 1440:02d}T{(start + i) // 60 % 24:02d}:{(start + i) % 60:02d}:00Z"}
             for i in range(n)]  # fmt: skip
    return orjson.dumps({"items": items})


def test_large_batches_try_a_copy_and_fall_back_to_the_merge(api_factory):
    env = api_factory(rate_limit_per_s=0, optimistic_insert_min_items=64)
    c = env.client()
    assert c.post("/ingest", _batch(0, 100)).body == counts(100, inserted=100)
    # Same keys again: the optimistic COPY hits a unique violation; the merge answers, nothing is lost.
    assert c.post("/ingest", _batch(0, 100)).body == counts(100, duplicates=100)
    assert c.post("/ingest", _batch(50, 100)).body == counts(100, inserted=50, duplicates=50)
    changed = _batch(100, 100).replace(b'"volume":41', b'"volume":99')
    assert c.post("/ingest", changed).body == counts(100, updated=50, inserted=50)
    assert env.sql("SELECT count(*), sum(volume) FROM market_data") == f"200|{100 * 41 + 100 * 99}"
    text = c.get("/prometheus", key=None).body.decode()
    assert "ingest_optimistic_fallbacks_total 1.0" in text  # then paused for the next large batches


def test_optimistic_path_can_be_switched_off(api_factory):
    env = api_factory(rate_limit_per_s=0, optimistic_insert_min_items=0)
    c = env.client()
    assert c.post("/ingest", _batch(0, 100)).body == counts(100, inserted=100)
    assert c.post("/ingest", _batch(0, 100)).body == counts(100, duplicates=100)
    assert "ingest_optimistic_fallbacks_total 0.0" in c.get("/prometheus", key=None).body.decode()


@pytest.mark.parametrize(
    "price", [0.30000000000000004, 1e-07, 123456789.12345679, 1.7976931348623157e308, 5e-324]
)
def test_prices_round_trip_bit_exact(client, clean, price):
    body = orjson.dumps({"ts": "2025-03-12T14:07:00Z", "symbol": "NULL", "timeframe": "M1", "open": price,
                         "high": price, "low": price, "close": price, "volume": 1})  # fmt: skip
    assert client.post("/ingest", body).body == counts(1, inserted=1)
    assert clean.sql("SELECT symbol, open::text FROM market_data") == f"NULL|{price!r}"


def test_a_bad_item_in_a_large_batch_is_reported_and_its_neighbours_stored(client, clean):
    docs = orjson.loads(_batch(0, 300))["items"]
    docs[137]["high"] = docs[137]["low"] / 2  # high < low: a plain-looking batch with one bad bar
    docs[200]["spread"] = 0.00012  # extras on some bars only: a second COPY row layout
    docs[201]["real_volume"] = 2**63 - 1
    reply = client.post("/ingest", orjson.dumps({"items": docs}))
    assert reply.body == counts(300, inserted=299, errors='{"index":137,"reason":"high_below_low"}')
    assert (
        clean.sql("SELECT count(*), count(spread), max(real_volume) FROM market_data") == f"299|1|{2**63 - 1}"
    )
    assert clean.sql("SELECT count(*) FROM market_data WHERE ts = '2025-03-10 02:17:00+00'") == "0"


@pytest.mark.parametrize("path", ["/ingest", "/ingest_batch", "/ingest/tick"])
@pytest.mark.parametrize("body", [b'{"a":' * 100_000, b"[" * 100_000, b'{"items":[' + b"[" * 100_000])
def test_deeply_nested_json_is_400_not_500(client, path, body):
    """Issue 12 item 6: 100,000 levels answered 500 (the column-wise decoder's RecursionError)."""
    reply = client.post(path, body)
    assert (reply.status, reply.body) == (400, b'{"detail":"invalid_json"}')
