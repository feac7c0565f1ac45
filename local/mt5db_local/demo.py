"""`mt5db demo`: the trading loop on one machine, every printed figure read from the live services.

LocalPostgres (embedded default) → migrate → keys → the API and serving on free loopback ports →
replay the shared EURUSD H1 export → `mt5db train --promote ifBetter` from the stored candles (fast
RandomForest settings) and the gate's decision → `/predict` (404: no champion) → a person promotes the
version anyway (recorded as a manual override) → serving hot-reloads it → `/predict` on the newest
bar → the model's signal (shadow, with the reasons) → a manual signal (POST /signals) → the dry-run
executor polls, fills at the next bar's open and acks → clean shutdown.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_CSV = Path("..") / "shared" / "data" / "EURUSD_H1_2021-10-18_2024-12-31.csv"
# Fast settings so the whole demo stays within a few minutes on two cores; the report's numbers
# are still every baseline on the same purged walk-forward folds (docs/training.md).
TRAIN_FAST = ["--horizons", "1,5,10", "--n-estimators", "60", "--folds", "8", "--bootstrap-reps", "300",
              "--no-leakage-check", "--n-jobs", "2"]  # fmt: skip
ACCOUNT = "7730215"


def _default_csv() -> Path:
    """../shared/data/... relative to the checkout root (or to the working directory)."""
    repo_root = Path(__file__).resolve().parents[2]
    for base in (repo_root, Path.cwd()):
        candidate = (base / DEFAULT_CSV).resolve()
        if candidate.is_file():
            return candidate
    return (repo_root / DEFAULT_CSV).resolve()


def _call(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback URL we built
        url, data=data, method=method, headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _get(url: str, key: str) -> Any:
    status, body = _call("GET", url, key)
    if status != 200:
        raise RuntimeError(f"GET {url} answered {status}: {body}")
    return body


def _say(text: str) -> None:
    print(text, flush=True)


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def _train(dsn: str, out: Path, log: Path) -> tuple[int, list[str]]:
    """The real `mt5db train` CLI as a child process; its full output goes to `log`."""
    argv = [sys.executable, "-m", "mt5db_core.cli", "train", "--model", "rf", "--database-url", dsn,
            "--symbol", "EURUSD", "--timeframe", "H1", "--run", "demo-rf", "--out", str(out),
            "--promote", "ifBetter", *TRAIN_FAST]  # fmt: skip
    shown = " ".join(["mt5db", *argv[3:]]).replace(dsn, "$MT5DB_DATABASE_URL")
    _say(f"   $ {shown}")
    env = {**os.environ, "MT5DB_RUN_NAME": "", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    log.write_text(done.stdout + done.stderr)
    return done.returncode, done.stdout.splitlines()


def run_demo(*, data_dir: str | None, keep: bool, csv: str | None, batch: int = 500) -> int:
    """Run the demo; returns the process exit code."""
    import asyncpg

    from mt5db_api.db import api_keys as keys_db
    from mt5db_api.db.migrations import migrate
    from mt5db_api.executor import run_executor
    from mt5db_api.replay import ReplayError, replay_file
    from mt5db_api.server import ThreadedServer
    from mt5db_api.settings import Settings
    from mt5db_core import apikeys
    from mt5db_core.cli import main as mt5db
    from mt5db_core.net import free_port
    from mt5db_local.postgres import LocalPostgres
    from mt5db_serving.server import ThreadedServing
    from mt5db_serving.settings import ServingSettings

    started_at = time.monotonic()
    csv_path = Path(csv).resolve() if csv else _default_csv()
    if not csv_path.is_file():
        print(f"error: history file not found: {csv_path} (pass --csv)", file=sys.stderr)
        return 2
    created = False
    if data_dir:
        base = Path(data_dir).resolve()
        created = not base.exists()
        base.mkdir(parents=True, exist_ok=True)
        pg = LocalPostgres(base)
    else:
        pg = LocalPostgres()  # its own temp directory, readable by the server user
        base = pg.base
        created = True
    _say(f"1. starting PostgreSQL {pg.bindir.parent.name} on 127.0.0.1:{pg.port} (data under {base})")
    try:
        pg.start()
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: PostgreSQL did not start: {exc}", file=sys.stderr)
        print(
            "hint: as root the cluster runs as the 'postgres' user, which must be able to enter --data-dir",
            file=sys.stderr,
        )
        pg.destroy()
        return 1
    api: ThreadedServer | None = None
    serving: ThreadedServing | None = None
    work = base / "demo-work"
    work.mkdir(parents=True, exist_ok=True)
    try:
        dsn = pg.create_database("mt5db")
        ea_key, admin_key = apikeys.generate_key(), apikeys.generate_key()

        async def prepare() -> Any:
            conn = await asyncpg.connect(dsn)
            try:
                report = await migrate(conn)
                await keys_db.insert_key(conn, key_id=ea_key.key_id, name="demo-ea", key_hash=ea_key.key_hash,
                                         scopes=["ingest", "read", "signals"])  # fmt: skip
                await keys_db.insert_key(conn, key_id=admin_key.key_id, name="demo-admin",
                                         key_hash=admin_key.key_hash, scopes=["admin"])  # fmt: skip
                return report
            finally:
                await conn.close()

        report = asyncio.run(prepare())
        _say(f"2. schema version {report.version}; timescaledb: {report.timescale}")
        for line in report.skipped:
            _say(f"   skipped: {line}")
        _say(
            f"3. keys: EA (ingest,read,signals) mt5_{ea_key.key_id}_{'*' * 12}, admin mt5_{admin_key.key_id}_{'*' * 12}"
        )
        api = ThreadedServer(Settings(database_url=dsn, port=free_port(), rate_limit_per_s=0)).start()  # type: ignore[arg-type]  # str -> SecretStr
        serving_settings = ServingSettings(
            database_url=dsn,  # type: ignore[arg-type]  # str -> SecretStr
            port=free_port(),
            rate_limit_per_s=0,
            signal_interval_s=1.0,
            reload_poll_s=1.0,
        )
        serving = ThreadedServing(serving_settings).start()
        _say(f"4. API on {api.url}, serving on {serving.url} (no model registered yet)")

        summary = asyncio.run(
            replay_file(
                csv_path, url=api.url, api_key=ea_key.secret_key, batch=batch, concurrency=4, progress=False
            )
        )
        _say(f"5. replay of {csv_path.name}: {summary.line()}")
        stats = _get(f"{api.url}/metrics?symbol=EURUSD", ea_key.secret_key)["series"]
        for s in stats:
            _say(f"   {s['symbol']} {s['timeframe']}: {s['count']} bars, {s['first']} → {s['last']}")

        _say("6. training a RandomForest from the stored candles, with the promotion gate (fast settings):")
        t0 = time.monotonic()
        rc, lines = _train(dsn, work / "runs" / "demo-rf", work / "train.log")
        if rc != 0:
            _say(f"   training failed (exit {rc}); its output is in {work / 'train.log'}")
            return 1
        for line in lines:
            if line.startswith(("run demo-rf", "registered:", "gate ")):
                _say(f"   {line}")
        _say(
            f"   ({time.monotonic() - t0:.0f} s; the full report: {work / 'runs' / 'demo-rf' / 'report.json'})"
        )

        status, body = _call("GET", f"{serving.url}/predict?symbol=EURUSD&timeframe=H1", ea_key.secret_key)
        _say(f"7. GET /predict → {status}: {body.get('reason', body)}")

        _say(
            "8. a person promotes the version anyway (recorded as a manual override; the gate's verdict stays):"
        )
        mt5db(["models", "promote", "rf_ret_EURUSD_H1:v1", "--database-url", dsn, "--actor", "demo",
               "--reason", "demo: show /predict and the shadow signals of a model that does not beat its baselines"])  # fmt: skip
        models = _wait(
            lambda: (m := _get(f"{serving.url}/models", ea_key.secret_key))["loaded"] and m,
            60,
            "the hot reload",
        )
        for loaded in models["loaded"]:
            _say(f"   serving hot-reloaded {loaded['version']} as {loaded['alias']}: sha256, feature set and smoke "
                 f"prediction checked, loaded in {loaded['load_seconds']:.2f} s, no restart")  # fmt: skip

        prediction = _get(f"{serving.url}/predict?symbol=EURUSD&timeframe=H1", ea_key.secret_key)
        returns = ", ".join(f"h={h}: {v:+.6f}" for h, v in prediction["returns"].items())
        _say(f"9. GET /predict: {prediction['model_version']} at the close of {prediction['bar_ts']} (the newest bar): "
             f"forecast log returns {returns}; signals use h={prediction['signal_horizon']} above "
             f"{prediction['threshold']:.2e}; out of distribution: {prediction['ood']}; model age "
             f"{prediction['model_age_s']:.0f} s")  # fmt: skip

        signals = _wait(
            lambda: _get(f"{api.url}/signals?source=model", ea_key.secret_key)["signals"],
            60,
            "the model's signal",
        )
        for s in signals:
            _say(f"10. the model's signal: {s['side']} {s['symbol']} {s['timeframe']} confidence {s['confidence']:.3f} "
                 f"sl {s['sl_pips']} tp {s['tp_pips']} pips → {s['delivery'].upper()}: {s['shadow_reason'] or 'live'}")  # fmt: skip

        page = _get(f"{api.url}/candles?symbol=EURUSD&timeframe=H1&limit=2", ea_key.secret_key)["data"]
        bar = page[0]["ts"]
        status, made = _call("POST", f"{api.url}/signals", admin_key.secret_key, {
            "symbol": "EURUSD", "timeframe": "H1", "side": "BUY", "confidence": 0.6, "ttl_sec": 300,
            "sl_pips": 20, "tp_pips": 40, "account_id": ACCOUNT,
            "meta": {"bar_ts": bar, "note": "manual: the model's signals are shadow, so a person posts one"},
        })  # fmt: skip
        if status != 201:
            raise RuntimeError(f"POST /signals answered {status}: {made}")
        _say(f"11. a MANUAL signal (POST /signals, admin): BUY EURUSD H1 for account {ACCOUNT} on bar {bar}, "
             f"id {made['id']}")  # fmt: skip

        _say(
            f"12. the dry-run executor polls /signals/next as account {ACCOUNT} (the shadow signal is never delivered):"
        )
        executed = asyncio.run(run_executor(url=api.url, api_key=ea_key.secret_key, account_id=ACCOUNT,
                                            symbols=["EURUSD"], timeframe="H1", idle_polls=2, interval_s=0.2))  # fmt: skip
        _say(f"   executor: {executed.line()}")
        final = _get(f"{api.url}/signals?symbol=EURUSD", ea_key.secret_key)["signals"]
        for s in final:
            _say(
                f"   {s['source']:<6} {s['delivery']:<6} {s['side']:<4} state {s['state']:<7} deliveries {s['deliveries']}"
            )
        ok = (summary.failed_requests == 0 and executed.count("FILLED") == 1 and executed.received == 1
              and all(s["deliveries"] == 0 for s in final if s["delivery"] == "shadow"))  # fmt: skip
        _say(f"13. the loop closed in {time.monotonic() - started_at:.0f} s: candles in, a gated model, a prediction, "
             f"signals (shadow and manual), an executor that filled and acked: {'OK' if ok else 'NOT OK'}")  # fmt: skip
        return 0 if ok else 1
    except (ReplayError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if serving is not None:
            serving.stop()
        if api is not None:
            api.stop()
        if keep:
            pg.stop()
            _say(f"14. stopped; data kept under {base}")
        else:
            pg.destroy()
            if created:
                shutil.rmtree(base, ignore_errors=True)
            _say("14. stopped and removed the demo database")
