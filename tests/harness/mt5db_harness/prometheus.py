"""A real Prometheus on loopback (Debian's binary), plus promtool, for tests.

Scrape jobs are added at run time by rewriting the config and asking Prometheus to reload
(`--web.enable-lifecycle`), so one server serves the whole test session.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from mt5db_core.net import free_port, wait_for_http
from mt5db_harness.tools import prometheus_binaries


class LocalPrometheus:
    def __init__(self, base_dir: Path | None = None, scrape_interval: str = "1s") -> None:
        self.prometheus_bin, self.promtool_bin = prometheus_binaries()
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="mt5db-prom-"))
        self.port = free_port()
        self.scrape_interval = scrape_interval
        self.jobs: dict[str, dict[str, Any]] = {}
        self.rule_files: list[Path] = []
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        # JSON is valid YAML: no YAML dependency in the core package.
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": list(self.jobs.values()),
        }
        (self.base / "prometheus.yml").write_text(json.dumps(config, indent=2))

    def start(self, timeout: float = 30.0) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self._write_config()
        log = (self.base / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(
            [
                str(self.prometheus_bin),
                f"--config.file={self.base / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.base / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_http(f"{self.url}/-/ready", timeout)

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalPrometheus:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def reload(self) -> None:
        self._write_config()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback
            pass

    def scrape(
        self,
        job: str,
        port: int,
        path: str = "/metrics",
        host: str = "127.0.0.1",
        labels: dict[str, str] | None = None,
        honor_labels: bool = False,
    ) -> None:
        """Point a scrape job at a local port and reload; `labels` are attached to the target
        (e.g. the `namespace` a ServiceMonitor-discovered target would carry); `honor_labels`
        keeps the scraped labels where they clash with the target's (ServiceMonitor honorLabels)."""
        target: dict[str, Any] = {"targets": [f"{host}:{port}"], "labels": labels or {}}
        self.jobs[job] = {
            "job_name": job, "metrics_path": path, "static_configs": [target], "honor_labels": honor_labels,
        }  # fmt: skip
        self.reload()

    def label_values(self, label: str, match: str) -> list[str]:
        """What Grafana's label_values(match, label) variable query lists."""
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/label/{label}/values?{query}", timeout=10) as r:  # noqa: S310
            body = json.load(r)
        values: list[str] = body["data"]
        return values

    def load_rules(self, *paths: Path) -> None:
        self.rule_files = list(paths)
        self.reload()

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector (raises on a query error)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for_series(self, expr: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Poll an instant query until it returns at least one series."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.25)

    def promtool(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run promtool (check rules, test rules, ...); the caller inspects returncode/output."""
        return subprocess.run([str(self.promtool_bin), *args], capture_output=True, text=True, check=False)
