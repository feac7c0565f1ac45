"""The real helm binary renders a trivial chart; kubectl is the official client."""

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.helm


def test_helm_template_renders_a_trivial_chart(helm: Path, tmp_path: Path) -> None:
    chart = tmp_path / "smoke"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: smoke\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    done = subprocess.run(
        [str(helm), "template", "rel", str(chart), "--set", "greeting=hi"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "name: rel-cm" in done.stdout
    assert 'greeting: "hi"' in done.stdout

    lint = subprocess.run([str(helm), "lint", str(chart)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout


def test_helm_lint_fails_a_broken_chart(helm: Path, tmp_path: Path) -> None:
    chart = tmp_path / "broken"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text("kind: ConfigMap\nmetadata: {{ .Values.missing.key }}\n")
    lint = subprocess.run([str(helm), "lint", str(chart)], capture_output=True, text=True, check=False)
    assert lint.returncode != 0


def test_kubectl_is_the_official_client(kubectl: Path) -> None:
    done = subprocess.run(
        [str(kubectl), "version", "--client", "-o", "json"], capture_output=True, text=True, check=True
    )
    client = json.loads(done.stdout)["clientVersion"]
    assert client["major"] == "1"
    assert int(client["minor"].rstrip("+")) >= 35
