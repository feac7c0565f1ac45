"""The typed specs: defaults and every derived name in one place."""

from __future__ import annotations

from mt5db_operator import constants as c

from .helpers import stack


def test_defaults_and_names_come_from_the_spec() -> None:
    s = stack()
    assert s.database.image == c.DEFAULT_DB_IMAGE
    assert s.api.min_replicas == 2 and s.api.max_replicas == 4
    assert s.pvc_retention == "Retain"
    assert s.api_name() == "demo-api"
    assert s.db_host() == "demo-db-0.demo-db.trading.svc"
    assert s.db_secret_name() == "demo-db-credentials"
