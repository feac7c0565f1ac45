"""The shared labels: what every child carries, what selectors and garbage collection match on."""

from __future__ import annotations

from mt5db_operator import constants as c
from mt5db_operator.resources.labels import (
    db_client_labels,
    db_client_peer,
    labels,
    managed_selector,
    selector,
)


def test_every_child_label_set_carries_the_managed_by_label_and_its_selector() -> None:
    out = labels("demo", "api", **{"extra": "x"})
    assert out[c.LABEL_MANAGED_BY] == c.MANAGED_BY and out[c.LABEL_PART_OF] == c.PART_OF
    assert selector("demo", "api").items() <= out.items() and out["extra"] == "x"


def test_garbage_collection_selects_only_managed_children_of_one_component() -> None:
    assert managed_selector("demo", "migrate") == (
        "app.kubernetes.io/managed-by=mt5db-operator,"
        "app.kubernetes.io/instance=demo,app.kubernetes.io/component=migrate"
    )


def test_database_clients_carry_what_the_network_policy_admits() -> None:
    assert db_client_peer("demo").items() <= db_client_labels("demo", "backup").items()
