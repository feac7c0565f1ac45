"""The one apply primitive, `Children.ensure(desired, enabled)`, and garbage collection by selector.

Every child of every kind goes through here, whether the pass was started by a create/update/
resume handler, the drift timer or a child watcher (docs/operator.md, "Reconcile loop and
drift"):

* enabled: server-side apply with our field manager and force. That creates the child when it
  is absent and re-takes the fields we own when someone else changed them; fields we never set
  (the HPA's `replicas`) stay with their owners.
* an object of that name that is not ours is refused (`NotOwnedError`), never adopted and never
  deleted. Ours: controlled by this owner, or an orphan we made (our `managed-by` label and no
  controller, e.g. left by an older operator), which the apply adopts back, as a ReplicaSet
  adopts its orphaned pods. Someone else's object (another controller, or none and not our
  label) is left as it is;
* disabled: the child is deleted when it exists and is ours;
* `collect()`: children of a kind that match a label selector, are ours, and were not ensured in
  this pass are deleted (children whose names change, such as the migration Job per spec hash).

A `Children` lives for one pass of one owner: the live objects it reads are remembered for that
pass only, so a step that needs a child's live state (the StatefulSet's claim size) and `ensure`
share one GET.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import kopf

from mt5db_operator import constants as c
from mt5db_operator.context import Context
from mt5db_operator.kubeapi import ApiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ref:
    """Which object: enough to read, delete or refuse it."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Ref:
        md = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], md["namespace"], md["name"])

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class NotOwnedError(ApiError):
    """A child's name is taken by an object that is not ours (409, like a conflict)."""

    def __init__(self, ref: Ref, owner: str) -> None:
        super().__init__(
            409,
            f"{ref} exists and is neither controlled by {owner} nor made by the operator: refusing to adopt it",
        )
        self.ref = ref


class Children:
    """The children of one owner (a live custom object body) during one reconcile pass."""

    def __init__(self, ctx: Context, owner: dict[str, Any]) -> None:
        self.kube = ctx.kube
        self.metrics = ctx.metrics
        # Any: kopf.adopt is typed for Kopf's own Body; a plain body dict is what it reads.
        self.owner: Any = owner
        md = owner["metadata"]
        self.owner_uid = str(md.get("uid") or "")
        self.owner_name = f"{owner.get('kind', 'owner')} {md.get('namespace')}/{md['name']}"
        self.ensured: set[Ref] = set()
        self._live: dict[Ref, dict[str, Any] | None] = {}

    def live(self, ref: Ref) -> dict[str, Any] | None:
        """The child as the API server has it (read once per pass), or None when absent."""
        if ref not in self._live:
            self._live[ref] = self.kube.get(ref.api_version, ref.kind, ref.namespace, ref.name)
        return self._live[ref]

    def is_ours(self, obj: dict[str, Any]) -> bool:
        """Controlled by this owner (the ownerReference `kopf.adopt` sets), or an orphan we made."""
        md = obj.get("metadata", {})
        controllers = [r for r in md.get("ownerReferences") or [] if r.get("controller")]
        if controllers:
            return any(r.get("uid") == self.owner_uid for r in controllers)
        return (md.get("labels") or {}).get(c.LABEL_MANAGED_BY) == c.MANAGED_BY

    def ensure(
        self, desired: dict[str, Any] | Ref, enabled: bool = True, *, owned: bool = True
    ) -> dict[str, Any] | None:
        """Apply `desired` (returns the applied object), or delete it when not `enabled`.

        `owned=False` is for children that must outlive their owner (a backup claim): applied
        without an ownerReference and without the ownership check, and never deleted here.
        A disabled child may be given as a `Ref` (there is nothing to build).
        """
        ref = desired if isinstance(desired, Ref) else Ref.of(desired)
        if not enabled:
            self._delete_if_ours(ref)
            return None
        if isinstance(desired, Ref):
            raise TypeError(f"ensure({ref}) needs a manifest to apply")
        if owned:
            live = self.live(ref)
            if live is not None and not self.is_ours(live):
                raise NotOwnedError(ref, self.owner_name)
            kopf.adopt(desired, owner=self.owner)
        self.metrics.applies.labels(desired["kind"]).inc()
        applied = self.kube.apply(desired)
        self.ensured.add(ref)
        self._live[ref] = applied
        return applied

    def create_once(
        self, obj: dict[str, Any], *, field_manager: str = c.FIELD_MANAGER
    ) -> dict[str, Any] | None:
        """Adopt and POST; None when the object exists already (409), so racing creators converge
        on one object. For what is created once and never re-applied (generated Secrets), or
        created with a field another manager then owns (the API Deployment's first `replicas`)."""
        kopf.adopt(obj, owner=self.owner)
        created = self.kube.create(obj, field_manager=field_manager)
        if created is not None:
            self._live[Ref.of(obj)] = created
        return created

    def collect(self, api_version: str, kind: str, namespace: str, selector: str) -> None:
        """Delete this owner's children of `kind` matching `selector` that this pass did not ensure."""
        for obj in self.kube.list(api_version, kind, namespace, selector):
            ref = Ref.of({"apiVersion": api_version, "kind": kind, "metadata": obj["metadata"]})
            if ref in self.ensured or not self.is_ours(obj):
                continue
            if self.kube.delete(api_version, kind, namespace, ref.name, uid=obj["metadata"].get("uid")):
                log.info("deleted %s: superseded, no longer desired", ref)
            self._live[ref] = None

    def _delete_if_ours(self, ref: Ref) -> None:
        live = self.live(ref)
        if live is None:
            return
        if not self.is_ours(live):
            log.debug("leaving %s alone: not ours (%s)", ref, self.owner_name)
            return
        if self.kube.delete(
            ref.api_version, ref.kind, ref.namespace, ref.name, uid=live["metadata"].get("uid")
        ):
            log.info("deleted %s: no longer in the spec", ref)
        self._live[ref] = None
