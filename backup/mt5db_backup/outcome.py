"""How every backup run ends: exit codes, the one JSON result line, SIGTERM handling.

Exit codes: 0 done, 1 failed (dump, restore, verification or pruning), 2 usage error or not
implemented (S3 destinations), 3 refused for safety (a non-empty restore target without
--confirm). Every run prints one summary line per action and, last, one JSON line that the
operator parses from the CronJob's log.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3


class BackupError(Exception):
    """A failure with a message for the operator and the exit code to leave with."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def say(line: str) -> None:
    print(line, flush=True)


def emit_result(result: dict[str, Any]) -> None:
    """The last line of every run: one JSON object (for the operator to parse)."""
    print(json.dumps(result, sort_keys=True), flush=True)


def report(result: dict[str, Any], action: Callable[[dict[str, Any]], int]) -> int:
    """Run one action and always end with its JSON result line (also when terminated)."""
    name = result["action"]
    try:
        code = action(result)
    except BackupError as exc:
        print(f"{name}: FAILED {exc}", file=sys.stderr, flush=True)
        result["error"] = str(exc)
        code = exc.exit_code
    except Terminated as exc:
        print(f"{name}: FAILED {exc}", file=sys.stderr, flush=True)
        result.update(error=str(exc), exit_code=exc.code)
        emit_result(result)
        raise
    result["exit_code"] = code
    emit_result(result)
    return code


class Terminated(SystemExit):
    """SIGTERM arrived: unwinds like SystemExit (finally blocks run), exit status 128 + signal."""

    def __str__(self) -> str:
        return f"terminated by signal (exit {self.code}); partial files removed"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def cleanup_on_sigterm() -> Iterator[None]:
    """Kubernetes stops a Job with SIGTERM: turn it into SystemExit so `finally` blocks run.

    (subprocess.run kills its child on the way out, the partial dump is removed, the scratch
    database dropped.)
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
