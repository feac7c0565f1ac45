"""What the repository must never contain: this machine's paths, or secrets.

A secret scan that fails the build (the original system silenced its scanner instead).
Paths are derived at run time, so the test itself names none.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

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


# Folders the Filesystem Hierarchy Standard gives every Linux machine: manifests and docs name them
# legitimately (an emptyDir at /tmp), so a checkout's parent that is one of them says nothing about
# this machine; the checkout's own path then does.
STANDARD_FOLDERS = frozenset(
    {"/tmp", "/var/tmp", "/home", "/root", "/opt", "/srv", "/mnt", "/media", "/usr", "/usr/local",
     "/usr/src", "/var", "/var/lib", "/run", "/dev/shm"}
)  # fmt: skip


def machine_paths(repo: Path, home: Path) -> list[re.Pattern[str]]:
    """Paths that exist only on this machine: the checkout's parent (where every checkout of this
    machine lives) unless that is a standard folder, else the checkout itself; and the home folder
    unless that is a standard one. A path counts only as a whole component on both sides."""
    parent = str(repo.parent)
    candidates = {parent if parent not in STANDARD_FOLDERS else str(repo), str(home)}
    return [
        re.compile(r"(?<![\w.-])" + re.escape(p) + r"(?![\w.-])")
        for p in candidates - STANDARD_FOLDERS - {"/"}
    ]


def offenders(files: list[Path], needles: list[re.Pattern[str]]) -> list[str]:
    return [
        f"{path.relative_to(REPO)}: {needle.pattern}"
        for path in files
        for needle in needles
        if needle.search(path.read_text(errors="replace"))
    ]


def test_no_path_of_this_machine_is_committed() -> None:
    assert not (found := offenders(tracked_text_files(), machine_paths(REPO, Path.home()))), found


@pytest.mark.parametrize("parent", [("tmp",), ("var", "tmp"), ("home", "newcomer", "src")])
def test_a_checkout_under_any_folder_passes_and_its_path_is_caught(parent: tuple[str, ...]) -> None:
    """Issue 12 item 16: a newcomer's clone under the temp folder (which the chart names as an
    emptyDir mount) flagged every manifest; the checkout's own path must still be caught.
    (Paths are joined at run time so that this file names none of them.)"""
    checkout = Path("/", *parent, "mt5-trading-db")
    needles = machine_paths(checkout, Path("/", "home", "newcomer"))
    assert not offenders(tracked_text_files(), needles)
    assert any(n.search(f"see {checkout}/docs/api.md") for n in needles)
    assert not any(n.search("mountPath: /tmp") or n.search("/var/tmpfs") for n in needles)


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
