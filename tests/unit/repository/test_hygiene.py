"""What the repository must never contain: this machine's paths, or secrets.

A secret scan that fails the build (the original system silenced its scanner instead).
Paths are derived at run time, so the test itself names none.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

SECRET_SHAPES = {
    "an mt5db API key": re.compile(r"mt5_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}"),
    "a private key block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a well-known default secret": re.compile(r"supersecretkey|changeme|admin:admin", re.IGNORECASE),
}


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(
        b"\0"
    )
    files = []
    for name in filter(None, names):
        path = REPO / name.decode()
        if path.name == "uv.lock" or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" not in data[:4096]:
            files.append(path)
    return files


def test_no_path_of_this_machine_is_committed() -> None:
    # A path counts only as a whole component: the checkout's parent "/x" must not flag "/xyz".
    machine_paths = [
        re.compile(re.escape(p) + r"(?![\w.-])") for p in {str(REPO.parent), str(Path.home())} - {"/"}
    ]
    offenders = [
        f"{path.relative_to(REPO)}: {needle.pattern}"
        for path in tracked_text_files()
        for needle in machine_paths
        if needle.search(path.read_text(errors="replace"))
    ]
    assert not offenders, offenders


def test_no_secret_is_committed() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {what}"
        for path in tracked_text_files()
        for what, shape in SECRET_SHAPES.items()
        if path != Path(__file__).resolve() and shape.search(path.read_text(errors="replace"))
    ]
    assert not offenders, offenders


def test_the_scan_would_catch_a_key() -> None:
    """The scanner is not vacuous: a generated key matches its shape."""
    from mt5db_core import apikeys

    assert SECRET_SHAPES["an mt5db API key"].search(apikeys.generate_key().secret_key)
    assert SECRET_SHAPES["a well-known default secret"].search('API_KEY = "supersecretkey"')
