"""Retention: keep the newest `keep_last` usable dumps no older than `max_age`, prune the rest."""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from mt5db_backup.files import list_dumps, metadata_path, parse_timestamp, policy_pattern
from mt5db_backup.outcome import EXIT_USAGE, BackupError

# Leftovers of a killed run (partial dumps, metadata without its dump) older than this are removed.
STALE_LEFTOVER = timedelta(hours=24)
_DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})(h|d)$")


def parse_duration(text: str) -> timedelta:
    """`30d`, `720h` (the BackupPolicy CRD's maxAge grammar)."""
    match = _DURATION_RE.fullmatch(text.strip())
    if not match:
        raise BackupError(
            f"--max-age {text!r}: expected a positive number of hours or days, e.g. 30d or 720h", EXIT_USAGE
        )
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


@dataclass
class Retention:
    kept: list[str] = field(default_factory=list)
    pruned: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _remove(path: Path, reason: str, outcome: Retention) -> None:
    """Remove one file (a dump goes with its metadata, the dump first); record it as one entry."""
    removed: list[str] = []
    for target in (path, metadata_path(path)) if path.suffix == ".dump" else (path,):
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:
            outcome.errors.append(f"{target.name}: {exc}")
            return
        removed.append(target.name)
    outcome.pruned.append({"file": path.name, "removed": " ".join(removed), "reason": reason})


def apply_retention(
    destination: Path, policy: str, keep_last: int, max_age: timedelta, protect: Path, now: datetime
) -> Retention:
    """Keep the newest `keep_last` usable dumps no older than `max_age`; never `protect`.

    A dump without readable metadata, or whose verification failed, is never one of the kept set
    and goes at the next successful run. Each dump goes together with its metadata (dump first, so
    no dump is ever left without metadata). Partial files and metadata without a dump are removed
    once older than STALE_LEFTOVER.
    """
    outcome = Retention()
    good = 0
    for entry in list_dumps(destination, policy):
        if entry.path == protect:
            good += 1
            outcome.kept.append(entry.path.name)
            continue
        if entry.metadata is None:
            reason = "no readable metadata"
        elif entry.metadata.get("verified") is False:
            reason = "failed verification"
        elif good >= keep_last:
            reason = f"beyond keep-last {keep_last}"
        elif now - entry.created > max_age:
            reason = f"older than max-age {_format_age(max_age)}"
        else:
            good += 1
            outcome.kept.append(entry.path.name)
            continue
        _remove(entry.path, reason, outcome)
    pattern = policy_pattern(policy)
    for path in destination.iterdir():
        match = pattern.fullmatch(path.name)
        if match and match.group(2) == "json" and not path.with_suffix(".dump").exists():
            if now - parse_timestamp(match.group(1)) > STALE_LEFTOVER:
                _remove(path, "metadata without a dump", outcome)
        elif path.name.startswith(f".{policy}-") and path.name.endswith(".partial"):
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > STALE_LEFTOVER.total_seconds():
                    _remove(path, "partial file of an interrupted run", outcome)
    return outcome


def _format_age(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"
