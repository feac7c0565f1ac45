"""TradingStack builders, without a cluster."""

from __future__ import annotations

import copy
from typing import Any

from mt5db_core.paths import PUBLIC_PATHS
from mt5db_operator import constants as c
from mt5db_operator.resources import tradingstack as ts

from ..helpers import META, assert_child, assert_hardened, stack


def test_builders_are_deterministic() -> None:
    s = stack(api={"image": "reg/api:1.2.3"})
    assert ts.build_db_statefulset(s) == ts.build_db_statefulset(s)
    assert ts.build_migrate_job(s) == ts.build_migrate_job(copy.deepcopy(s))
    assert ts.build_api_deployment(s) == ts.build_api_deployment(s)


def test_statefulset_pvc_template_retention_and_hardening() -> None:
    s = stack(database={"storage": {"size": "50Gi", "storageClassName": "fast"}}, pvcRetention="Delete")
    sts = ts.build_db_statefulset(s)
    assert_child(sts, "StatefulSet", "demo-db")
    spec = sts["spec"]
    assert spec["serviceName"] == "demo-db"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert_hardened(spec["template"]["spec"])
    env = {e["name"]: e for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "demo-db-credentials",
        "key": "password",
    }


def test_a_plain_postgresql_image_is_not_asked_to_preload_timescaledb() -> None:
    def settings(**database: Any) -> dict[str, str]:
        args = ts.build_db_statefulset(stack(database=database))["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
        return dict(a.split("=", 1) for a in args[2::2])

    default = settings()
    assert default["shared_preload_libraries"] == "timescaledb"
    plain = settings(image="postgres:15", timescale={"enabled": False})
    assert not any(k.startswith("timescaledb") or k == "shared_preload_libraries" for k in plain)
    assert plain["max_worker_processes"] == default["max_worker_processes"]


def test_headless_service_selects_the_database_pods() -> None:
    s = stack()
    svc = ts.build_db_service(s)
    assert_child(svc, "Service", "demo-db")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == ts.build_db_statefulset(s)["spec"]["selector"]["matchLabels"]


def test_deployment_omits_replicas_for_the_hpa_and_never_goes_below_capacity() -> None:
    s = stack(api={"image": "reg/api:2.0.0", "minReplicas": 3, "maxReplicas": 7})
    dep = ts.build_api_deployment(s)
    assert_child(dep, "Deployment", "demo-api")
    assert "replicas" not in dep["spec"]
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = dep["spec"]["template"]["spec"]
    assert_hardened(pod)
    container = pod["containers"][0]
    assert container["command"] == ["mt5db", "api"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert ts.build_api_deployment(s, replicas=0)["spec"]["replicas"] == 0
    hpa = ts.build_api_hpa(s)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 7)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "demo-api"


def test_api_reads_the_dsn_from_the_secret_never_inline() -> None:
    env = {e["name"]: e for e in ts.api_env(stack())}
    assert env["MT5DB_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "demo-db-credentials",
        "key": "app-uri",  # the application role: no DDL
    }
    ext = {
        e["name"]: e for e in ts.api_env(stack(database={"external": {"secretName": "dsn", "key": "url"}}))
    }
    assert ext["MT5DB_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "dsn", "key": "url"}


def test_pdb_never_blocks_a_drain_of_one_replica() -> None:
    pdb = ts.build_api_pdb(stack(api={"minReplicas": 1, "maxReplicas": 1}))
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {
        c.LABEL_INSTANCE: "demo", c.LABEL_COMPONENT: "api"}}}  # fmt: skip


def test_ingress_only_with_a_host_and_tls_when_asked() -> None:
    assert ts.build_api_ingress(stack()) is None
    ing = ts.build_api_ingress(
        stack(api={"ingress": {"host": "x.example.com", "className": "nginx", "tlsSecretName": "t"}})
    )
    assert ing is not None
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"hosts": ["x.example.com"], "secretName": "t"}]
    assert "kubernetes.io/ingress.class" not in ing["metadata"].get("annotations", {})


def test_network_policy_admits_only_this_stacks_db_clients() -> None:
    s = stack()
    np = ts.build_db_network_policy(s)
    peer = np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peer == {c.LABEL_STACK: "demo", c.LABEL_DB_CLIENT: "true"}
    api_labels = ts.build_api_deployment(s)["spec"]["template"]["metadata"]["labels"]
    job_labels = ts.build_migrate_job(s)["spec"]["template"]["metadata"]["labels"]
    assert peer.items() <= api_labels.items() and peer.items() <= job_labels.items()


def test_migration_job_gets_only_the_key_hash_and_changes_name_with_the_image() -> None:
    a = ts.build_migrate_job(stack(api={"image": "reg/api:1.0.0"}))
    b = ts.build_migrate_job(stack(api={"image": "reg/api:1.0.1"}))
    assert a["metadata"]["name"] != b["metadata"]["name"]
    assert a["metadata"]["name"].startswith("demo-migrate-")
    container = a["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["mt5db", "migrate", "--wait", "300"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["MT5DB_BOOTSTRAP_KEY_HASH"] == {"name": "demo-api-key-hash", "key": "key-hash"}
    assert all(ref["name"] != "demo-api-key" for ref in refs.values()), (
        "the key itself never leaves its Secret"
    )
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MT5DB_RETENTION_DAYS"] == "730" and env["MT5DB_TRAINING_WINDOW_DAYS"] == "365"


def test_secrets_shape_passwords_they_are_given() -> None:
    s = stack()
    creds = ts.build_db_credentials_secret(
        s, {"password": "p1", "readonly-password": "p2", "superuser-password": "p3", "app-password": "p4"}
    )
    host = "demo-db-0.demo-db.trading.svc:5432"
    assert creds["stringData"]["uri"] == f"postgresql://mt5db:p1@{host}/mt5db?sslmode=prefer"
    assert creds["stringData"]["app-uri"] == f"postgresql://mt5db_app:p4@{host}/mt5db?sslmode=prefer"
    assert (
        creds["stringData"]["readonly-uri"] == f"postgresql://mt5db_readonly:p2@{host}/mt5db?sslmode=prefer"
    )
    key = ts.build_api_key_secret(s, "mt5_abcd1234_xyz", "abcd1234")
    hashed = ts.build_api_key_hash_secret(s, "abcd1234", "f" * 64)
    assert key["stringData"]["api-key"] == "mt5_abcd1234_xyz"
    assert "api-key" not in hashed["stringData"] and hashed["stringData"]["key-hash"] == "f" * 64


def test_database_image_changes_that_are_refused() -> None:
    base = "timescale/timescaledb-ha:pg16.6-ts2.17.2-all"
    assert ts.refused_db_image_change(base, "timescale/timescaledb-ha:pg16.8-ts2.18.0-all") is None
    assert "major 16 -> 17" in (
        ts.refused_db_image_change(base, "timescale/timescaledb-ha:pg17.2-ts2.17.2-all") or ""
    )
    assert "downgrade 2.17.2 -> 2.16.1" in (
        ts.refused_db_image_change(base, "timescale/timescaledb-ha:pg16.6-ts2.16.1") or ""
    )
    assert ts.refused_db_image_change(base, "registry/custom@sha256:" + "a" * 64) is None


def test_serving_is_off_by_default_and_routed_through_the_api_ingress_when_on() -> None:
    off = stack(api={"ingress": {"host": "t.example.com"}})
    assert not off.serving.enabled
    paths = ts.build_api_ingress(off)["spec"]["rules"][0]["http"]["paths"]  # type: ignore[index]
    assert "/predict" not in {p["path"] for p in paths}
    on = stack(
        api={"ingress": {"host": "t.example.com"}, "rateLimit": {"requestsPerSecond": 80}},
        serving={
            "enabled": True,
            "replicas": 2,
            "image": "reg/training:1.0.0",
            "signals": {"ttlSeconds": 60},
        },
    )
    paths = ts.build_api_ingress(on)["spec"]["rules"][0]["http"]["paths"]  # type: ignore[index]
    assert [(p["path"], p["pathType"], p["backend"]["service"]["name"]) for p in paths] == [
        ("/predict", "Exact", "demo-serving"),
        *((path, "Exact", "demo-api") for path in PUBLIC_PATHS),
    ]
    dep = ts.build_serving_deployment(on)
    assert_child(dep, "Deployment", "demo-serving")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert_hardened(pod)
    (container,) = pod["containers"]
    assert container["command"] == ["mt5db", "serve"] and container["image"] == "reg/training:1.0.0"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["MT5DB_DATABASE_URL"] == {"secretKeyRef": {"name": "demo-db-credentials", "key": "app-uri"}}
    assert (env["MT5DB_SIGNAL_TTL_S"], env["MT5DB_RATE_LIMIT_PER_S"], env["MT5DB_PORT"]) == (
        "60",
        "80",
        "8000",
    )
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels[c.LABEL_DB_CLIENT] == "true" and labels[c.LABEL_STACK] == "demo"  # the DB lets it in
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    svc = ts.build_serving_service(on)
    assert_child(svc, "Service", "demo-serving")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert (
        ts.build_serving_deployment(stack(serving={"enabled": True}, suspend=True))["spec"]["replicas"] == 0
    )


def test_ingress_routes_only_the_public_paths() -> None:
    ing = ts.build_api_ingress(stack(api={"ingress": {"host": "x.example.com"}}))
    assert ing is not None
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["pathType"]) for p in paths] == [(p, "Exact") for p in PUBLIC_PATHS]
    routed = {p["path"] for p in paths}
    assert not routed & {"/", "/prometheus", "/docs", "/redoc", "/openapi.json"}


def test_api_network_policy_admits_the_controller_monitoring_and_the_stack() -> None:
    s = stack(api={"ingress": {"host": "x.example.com", "controllerNamespace": "edge"}},
              monitoring={"namespace": "obs"})  # fmt: skip
    np = ts.build_api_network_policy(s)
    assert np["spec"]["podSelector"]["matchLabels"].items() <= (
        ts.build_api_deployment(s)["spec"]["template"]["metadata"]["labels"].items()
    )
    (rule,) = np["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": ts.API_PORT}]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {c.LABEL_STACK: "demo"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "obs"}}},
    ]
    # Without an Ingress nothing outside the stack but the scrape gets in.
    bare = ts.build_api_network_policy(stack())["spec"]["ingress"][0]["from"]
    assert [p.get("namespaceSelector") for p in bare][1:] == [
        {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    ]


def test_each_workload_connects_as_its_own_role() -> None:
    """Owner for the migration (which sets the other roles' passwords), the application role for
    the API, the read-only role for training; an external database has its one DSN for all."""
    from mt5db_operator.resources import trainingrun as tr
    from mt5db_operator.specs import TrainingRunSpec

    def refs(env: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
        return {
            e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in env if "valueFrom" in e
        }  # fmt: skip

    s = stack()
    job = refs(ts.build_migrate_job(s)["spec"]["template"]["spec"]["containers"][0]["env"])
    assert job["MT5DB_DATABASE_URL"] == ("demo-db-credentials", "uri")
    assert job["MT5DB_APP_PASSWORD"] == ("demo-db-credentials", "app-password")
    assert job["MT5DB_READONLY_PASSWORD"] == ("demo-db-credentials", "readonly-password")
    assert refs(ts.api_env(s))["MT5DB_DATABASE_URL"] == ("demo-db-credentials", "app-uri")
    run = TrainingRunSpec.parse({"stackRef": {"name": "demo"}}, META)
    assert refs(tr._env(run, s))["MT5DB_DATABASE_URL"] == ("demo-db-credentials", "readonly-uri")
    ext = stack(database={"external": {"secretName": "dsn", "key": "url"}})
    ext_job = refs(ts.build_migrate_job(ext)["spec"]["template"]["spec"]["containers"][0]["env"])
    assert ext_job == {k: v for k, v in ext_job.items() if k.startswith("MT5DB_BOOTSTRAP")} | {
        "MT5DB_DATABASE_URL": ("dsn", "url")
    }
