"""The API's own collectors: the capped per-symbol freshness gauge and the readiness gauge."""

from __future__ import annotations

import time

from prometheus_client import generate_latest

from mt5db_api.prometheus import ApiMetrics


def samples(metrics: ApiMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_freshness_keeps_the_newest_time_per_symbol_within_the_cap() -> None:
    metrics = ApiMetrics(lambda: None, max_symbols=2, symbol_ttl_s=3600)
    now = time.time()
    metrics.freshness.seen({"EURUSD", "GBPUSD"}, now - 10)
    metrics.freshness.seen({"EURUSD"}, now)
    metrics.freshness.seen({"USDJPY"}, now)  # over the cap: counted, not tracked
    got = samples(metrics, "ingest_symbol_last_received_timestamp_seconds")
    assert got == {(("symbol", "EURUSD"),): now, (("symbol", "GBPUSD"),): now - 10}
    assert samples(metrics, "ingest_symbols_untracked_total") == {(): 1}


def test_silent_symbols_are_forgotten_and_free_their_slot() -> None:
    metrics = ApiMetrics(lambda: None, max_symbols=1, symbol_ttl_s=60)
    now = time.time()
    metrics.freshness.seen({"EURUSD"}, now - 120)
    metrics.freshness.seen({"GBPUSD"}, now)  # EURUSD expired: its slot is reused
    assert samples(metrics, "ingest_symbol_last_received_timestamp_seconds") == {(("symbol", "GBPUSD"),): now}
    assert samples(metrics, "ingest_symbols_untracked_total") == {(): 0}


def test_db_ready_has_no_sample_until_the_first_readiness_check() -> None:
    metrics = ApiMetrics(lambda: None)
    assert samples(metrics, "db_ready") == {}
    assert b"db_ready" in generate_latest(metrics.registry)  # described, without a value
    metrics.db_ready.set(False)
    assert samples(metrics, "db_ready") == {(): 0.0}
    metrics.db_ready.set(True)
    assert samples(metrics, "db_ready") == {(): 1.0}
