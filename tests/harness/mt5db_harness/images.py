"""Images for the e2e node, without a daemon: the project's (images/build.sh), scratch images of
the node's own binaries (pause, CoreDNS, metrics-server, Traefik), and docker-archive exports
that containerd imports. Exports are cached by image ID outside the work tree.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mt5db_harness.tools import ToolMissing, cache_root, repo_root

PREFIX = "localhost/mt5db"


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    archive: Path
    seconds: float  # time spent building or exporting it in this run (0 when cached)


def _buildah(*args: str) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def require_buildah() -> None:
    if not shutil.which("buildah"):
        raise ToolMissing("buildah not found (Debian package buildah; `scripts/setup.sh test` installs it)")


def image_id(ref: str) -> str | None:
    done = subprocess.run(
        ["buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}", ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def archive(ref: str) -> tuple[Path, float]:
    """A docker-archive of `ref` (what `ctr images import` and `kind load image-archive` take),
    cached by image ID; older exports of the same repository are removed."""
    ident = image_id(ref)
    if ident is None:
        raise RuntimeError(f"no image {ref} in buildah's storage")
    name = ref.rsplit("/", 1)[-1].replace(":", "_")
    folder = cache_root() / "images" / "archives"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{ident[:12]}.tar"
    if path.exists():
        return path, 0.0
    started = time.monotonic()
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    _buildah("push", "--quiet", ref, f"docker-archive:{tmp}:{ref}")
    tmp.rename(path)
    for old in folder.glob(f"{name}-*.tar"):
        if old != path:
            old.unlink(missing_ok=True)
    return path, time.monotonic() - started


def project_images(targets: tuple[str, ...] = ("api", "training", "operator", "postgres")) -> dict[str, str]:
    """Build (or find unchanged) the project's images with images/build.sh; {target: ref}.

    The training image is the RandomForest-only variant (no torch), as everywhere in CI."""
    root = repo_root()
    if root is None:
        raise ToolMissing("images/build.sh needs a checkout")
    require_buildah()
    env = {**os.environ, "MT5DB_TRAINING_EXTRAS": ""}
    before = set(_buildah("containers", "--quiet").split())
    done = subprocess.run(
        ["bash", str(root / "images" / "build.sh"), *targets],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError("images/build.sh failed (its output is above)")
    # A build leaves nothing behind: a working container is a mount on the host.
    left = set(_buildah("containers", "--quiet").split()) - before
    if left:
        raise RuntimeError(f"images/build.sh left buildah containers (mounted): {sorted(left)}")
    refs = done.stdout.strip().splitlines()[-1].split()
    return dict(zip(targets, refs, strict=True))


def scratch_image(name: str, tag: str, binary: Path, entrypoint: list[str], user: str = "65532:65532") -> str:
    """A one-binary image FROM scratch (`/<binary name>`), tagged by version and content."""
    require_buildah()
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()[:10]
    ref = f"{PREFIX}/node/{name}:{tag}-{digest}"
    if image_id(ref):
        return ref
    ctr = _buildah("from", "--quiet", "scratch")
    try:
        _buildah("copy", "--quiet", "--chmod", "0755", ctr, str(binary), f"/{binary.name}")
        _buildah("config", "--entrypoint", str(entrypoint).replace("'", '"'), "--user", user, ctr)
        _buildah("commit", "--quiet", ctr, ref)
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True, check=False)
    return ref
