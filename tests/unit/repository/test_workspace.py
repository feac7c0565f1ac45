"""Each image installs one workspace member: its locked dependency closure is what ships."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
UV = Path(sys.executable).parent / "uv"


def closure(member: str) -> set[str]:
    """Third-party distributions `uv sync --package member` would install, from uv.lock."""
    done = subprocess.run(
        [str(UV), "export", "--package", member, "--frozen", "--no-dev", "--no-hashes", "--no-emit-workspace"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {line.split("==")[0] for line in done.stdout.splitlines() if line[:1].isalpha()}


def test_operator_image_carries_no_torch_or_ray() -> None:
    operator = closure("mt5db-operator")
    assert {"kopf", "kubernetes"} <= operator
    assert not {"torch", "ray", "scikit-learn", "ta-lib"} & operator


def test_api_image_carries_no_ml_stack() -> None:
    api = closure("mt5db-api")
    assert {"fastapi", "asyncpg", "uvicorn"} <= api
    assert not {"torch", "ray", "kopf", "scikit-learn", "ta-lib", "pandas", "joblib"} & api


def test_serving_carries_the_feature_function_and_the_api() -> None:
    """Serving runs in the training image: the feature function, the artifact loader, the API's auth."""
    serving = closure("mt5db-serving")
    assert {"scikit-learn", "ta-lib", "pandas", "fastapi", "asyncpg"} <= serving


def test_lock_is_current() -> None:
    """--frozen installs exactly uv.lock; this fails when a pyproject changed without re-locking."""
    done = subprocess.run([str(UV), "lock", "--check"], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_one_uv_version() -> None:
    """setup.sh, the image builds and the dev group all use pyproject's [tool.uv] required-version."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    pinned = project["tool"]["uv"]["required-version"].removeprefix("==")
    assert f"uv=={pinned}" in project["dependency-groups"]["dev"]
    done = subprocess.run([str(UV), "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.split()[1] == pinned
