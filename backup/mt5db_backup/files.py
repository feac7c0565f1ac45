"""The destination directory: dump names, their metadata files, atomic writes, listing a policy's dumps."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
METADATA_FORMAT = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def metadata_path(dump: Path) -> Path:
    return dump.with_suffix(".json")


def read_metadata(dump: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(metadata_path(dump).read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write beside the target, fsync, rename over it: a reader sees the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


@dataclass(frozen=True)
class DumpEntry:
    path: Path
    created: datetime
    metadata: dict[str, Any] | None

    @property
    def usable(self) -> bool:
        return self.metadata is not None and self.metadata.get("verified") is not False


def policy_pattern(policy: str) -> re.Pattern[str]:
    return re.compile(re.escape(policy) + r"-(\d{8}T\d{6}Z)\.(dump|json)")


def list_dumps(destination: Path, policy: str) -> list[DumpEntry]:
    """This policy's dumps, newest first (other files in the directory are never touched)."""
    pattern = policy_pattern(policy)
    entries: list[DumpEntry] = []
    for path in destination.iterdir():
        match = pattern.fullmatch(path.name)
        if match and match.group(2) == "dump" and path.is_file():
            entries.append(DumpEntry(path, parse_timestamp(match.group(1)), read_metadata(path)))
    return sorted(entries, key=lambda e: e.created, reverse=True)
