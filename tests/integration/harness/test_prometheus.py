"""Real Prometheus scrapes a local endpoint; promtool fails a wrong rule expectation."""

import http.server
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mt5db_core.net import free_port
from mt5db_harness.prometheus import LocalPrometheus

pytestmark = pytest.mark.prometheus


@pytest.fixture
def metrics_port() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"# TYPE smoke_value gauge\nsmoke_value 42\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()


def test_scrapes_a_local_port_and_answers_a_query(prometheus: LocalPrometheus, metrics_port: int) -> None:
    prometheus.scrape("smoke", metrics_port)
    result = prometheus.wait_for_series('smoke_value{job="smoke"}')
    assert result, "Prometheus never scraped the smoke target"
    assert float(result[0]["value"][1]) == 42.0


RULES = textwrap.dedent(
    """
    groups:
    - name: smoke
      rules:
      - alert: ValueTooHigh
        expr: smoke_value > 10
        for: 1m
        labels: {severity: warning}
    """
)


def _rule_test(expected_alerts: str) -> str:
    return textwrap.dedent(
        f"""
        rule_files: [rules.yml]
        evaluation_interval: 1m
        tests:
        - interval: 1m
          input_series:
          - series: smoke_value
            values: 42x5
          alert_rule_test:
          - eval_time: 3m
            alertname: ValueTooHigh
            exp_alerts: {expected_alerts}
        """
    )


def test_promtool_passes_a_right_and_fails_a_wrong_expectation(
    prometheus: LocalPrometheus, tmp_path: Path
) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    assert prometheus.promtool("check", "rules", str(tmp_path / "rules.yml")).returncode == 0

    right = tmp_path / "right.yml"
    right.write_text(_rule_test("[{exp_labels: {severity: warning}}]"))
    ok = prometheus.promtool("test", "rules", str(right))
    assert ok.returncode == 0, ok.stdout + ok.stderr

    wrong = tmp_path / "wrong.yml"
    wrong.write_text(_rule_test("[]"))
    failed = prometheus.promtool("test", "rules", str(wrong))
    assert failed.returncode != 0
    assert "ValueTooHigh" in failed.stdout + failed.stderr
