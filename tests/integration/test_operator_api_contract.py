"""The operator and the API agree on the first API key: the migration Job the operator builds,
with its env resolved from the Secrets it builds (as a kubelet would), registers the key's hash
through the real `mt5db migrate`; the key from the operator's other Secret then works against a
live API with the scopes an EA needs, and only the hash is in the database."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest

from mt5db_core import apikeys
from mt5db_core.net import free_port, wait_for_http
from mt5db_local.postgres import LocalPostgres
from mt5db_operator.credentials import generate_db_passwords
from mt5db_operator.resources import tradingstack as builders
from mt5db_operator.specs import Meta, TradingStackSpec

pytestmark = pytest.mark.postgres

MT5DB = [sys.executable, "-m", "mt5db_core.cli"]


def resolve_env(
    container: dict[str, Any], secrets: dict[str, dict[str, str]], database_url: str
) -> dict[str, str]:
    """A container's env as the kubelet would set it; the DB URL points at the test cluster."""
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            if var["name"] == "MT5DB_DATABASE_URL":
                env[var["name"]] = database_url
            else:
                env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def test_first_api_key_from_operator_secrets_works_against_the_api(
    postgres: LocalPostgres, database_url: str
) -> None:
    stack = TradingStackSpec.parse({}, Meta(name="demo", namespace="trading", uid="u1", generation=1))
    key = apikeys.generate_key()  # the operator's one-time generation step
    key_secret = builders.build_api_key_secret(stack, key.secret_key, key.key_id)
    hash_secret = builders.build_api_key_hash_secret(stack, key.key_id, key.key_hash)
    credentials = builders.build_db_credentials_secret(stack, generate_db_passwords())
    secrets = {s["metadata"]["name"]: s["stringData"] for s in (key_secret, hash_secret, credentials)}

    job = builders.build_migrate_job(stack)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["mt5db", "migrate"]
    env = resolve_env(container, secrets, database_url)
    assert key.secret_key not in env.values(), "the migration Job must never see the key itself"

    for attempt in ("registered", "already registered"):  # the Job may run again: idempotent
        done = subprocess.run([*MT5DB, *container["command"][1:], *container.get("args", [])],
                              env={**os.environ, **env}, capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"bootstrap key {key.key_id}: {attempt}" in done.stdout

    stored = postgres.psql(
        f"SELECT key_hash || ' ' || array_to_string(scopes, ',') FROM api_keys WHERE key_id = '{key.key_id}'",  # noqa: S608 - a hex id we generated
        database=database_url.rsplit("/", 1)[1],
    )
    assert stored == f"{key.key_hash} {','.join(sorted(builders.EA_KEY_SCOPES.split(',')))}"
    assert key.secret_key not in stored

    # The API runs as the application role the migration just set up, as in the Deployment.
    parts = urlsplit(database_url)
    app = secrets[stack.db_credentials_secret()]
    app_url = urlunsplit(
        parts._replace(netloc=f"{app['app-username']}:{app['app-password']}@{parts.hostname}:{parts.port}")
    )
    port = free_port()
    api = subprocess.Popen([*MT5DB, "api", "--database-url", app_url, "--port", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", 30)
        candle = b'{"ts":"2025-03-12T14:00:00Z","symbol":"EURUSD","timeframe":"H1","open":1.08,"high":1.09,"low":1.07,"close":1.085,"volume":10}'
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/ingest", data=candle, method="POST",
            headers={"Content-Type": "application/json", "X-API-Key": secrets[stack.api_key_secret()]["api-key"]},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            assert response.status == 200
            assert orjson.loads(response.read())["inserted"] == 1
        tick = b'{"ticks":[{"ts":"2025-03-12T14:00:01Z","symbol":"EURUSD","bid":1.08,"ask":1.0801}]}'
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/ingest/tick", data=tick, method="POST",
            headers={"Content-Type": "application/json", "X-API-Key": secrets[stack.api_key_secret()]["api-key"]},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            assert response.status == 200
    finally:
        api.terminate()
        api.wait(timeout=15)


def test_migrate_refuses_retention_shorter_than_the_training_window(database_url: str) -> None:
    env = {"MT5DB_RETENTION_DAYS": "30", "MT5DB_TRAINING_WINDOW_DAYS": "365"}
    done = subprocess.run([*MT5DB, "migrate", "--database-url", database_url],
                          env={**os.environ, **env}, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "would delete training data" in done.stderr
