"""The custom object a pass works for: read live, then reported on through one status patch.

Shared by the three kinds: each pass starts from the live object (so every trigger is equal),
and ends with `Owner.write_status`, which writes phase, message, conditions and
`observedGeneration` together, skips the write when nothing changed, and posts an Event on
every phase transition (docs/operator.md, "Status contract").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf

from mt5db_operator import constants as c
from mt5db_operator.constants import Phase
from mt5db_operator.context import Context
from mt5db_operator.specs import Meta
from mt5db_operator.status import Condition, status_patch

TERMINAL = (Phase.SUCCEEDED, Phase.FAILED)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def read_live(ctx: Context, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One of our custom objects, or None when absent or being deleted."""
    body = ctx.kube.get(c.API_VERSION, kind, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    return body


class Owner:
    """A live TradingStack, TrainingRun or BackupPolicy body and what a pass reports on it."""

    def __init__(self, ctx: Context, kind: str, body: dict[str, Any]) -> None:
        self.ctx = ctx
        self.kind = kind
        self.body = body

    @classmethod
    def read(cls, ctx: Context, kind: str, namespace: str, name: str) -> Owner | None:
        body = read_live(ctx, kind, namespace, name)
        return None if body is None else cls(ctx, kind, body)

    @property
    def meta(self) -> Meta:
        return Meta.from_body(self.body)

    @property
    def spec(self) -> Any:
        return self.body.get("spec")

    @property
    def status(self) -> dict[str, Any]:
        """The status as it was when the pass began."""
        return self.body.get("status") or {}

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        body: Any = self.body  # kopf.event is typed for Kopf's own Body; a plain dict is what it reads
        kopf.event(body, type="Warning" if warning else "Normal", reason=reason, message=message)

    def write_status(
        self,
        *,
        phase: str,
        message: str,
        conditions: list[Condition],
        extra: dict[str, Any] | None = None,
    ) -> None:
        """One merge-patch of `/status` (skipped when nothing changed); an Event on a phase change."""
        old = self.status
        md = self.body["metadata"]
        patch = status_patch(
            old,
            phase=phase,
            message=message,
            conditions=conditions,
            generation=int(md.get("generation") or 0),
            now=now_iso(),
            extra=extra,
        )
        if patch is None:
            return
        self.ctx.kube.patch_status(c.API_VERSION, self.kind, md["namespace"], md["name"], patch)
        if old.get("phase") != phase:
            self.event(
                phase,
                f"phase {old.get('phase') or 'None'} -> {phase}: {message}"[:1000],
                warning=phase in (Phase.FAILED, Phase.DEGRADED),
            )
