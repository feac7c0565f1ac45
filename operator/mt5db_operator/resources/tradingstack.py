"""Builders for a TradingStack's children: Secrets, database, migrations, API, network policy.

Every function is pure and deterministic: the same spec gives the same manifest, byte for
byte. Random values (passwords, the first API key) are generated once by
`mt5db_operator.credentials` and passed in; the builders only shape them.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from mt5db_core.paths import PUBLIC_PATHS
from mt5db_operator.constants import DB_SERVER_SETTINGS, DB_TIMESCALE_SETTINGS, LABEL_STACK
from mt5db_operator.resources.labels import db_client_labels, db_client_peer, labels, meta, selector
from mt5db_operator.resources.pod import (
    API_UID,
    DB_UID,
    TRAINING_UID,
    container_security_context,
    pod_security_context,
    secret_env,
    tmp_volume,
)
from mt5db_operator.specs import TradingStackSpec

DB_PORT = 5432
API_PORT = 8000
# The TimescaleDB HA image keeps PGDATA under /home/postgres.
PGDATA_MOUNT = "/home/postgres/pgdata"
DB_NAME = "mt5db"
DB_OWNER = "mt5db"
DB_APP = "mt5db_app"  # mt5db_api.db.roles creates both in `mt5db migrate`
DB_READONLY = "mt5db_readonly"
MIGRATE_WAIT_SECONDS = 300
# TLS when the server offers it (the timescaledb-ha image does); `prefer` because the image's
# certificate is self-signed, so there is no CA to verify against (docs/operator.md).
DB_SSLMODE = "prefer"


# -- Secrets ------------------------------------------------------------------------------------


# What an EA needs (post candles/ticks, read, poll signals): not admin, which manages keys.
EA_KEY_SCOPES = "ingest,read,signals"


def build_db_credentials_secret(stack: TradingStackSpec, passwords: dict[str, str]) -> dict[str, Any]:
    """Owner, application, read-only and superuser credentials, and a DSN per role."""
    host = stack.db_host()
    owner_pw = passwords["password"]

    def dsn(user: str, password: str) -> str:
        # Passwords are URL-safe (secrets.token_urlsafe), so the DSN needs no escaping.
        return f"postgresql://{user}:{password}@{host}:{DB_PORT}/{DB_NAME}?sslmode={DB_SSLMODE}"

    data = {
        "host": host,
        "port": str(DB_PORT),
        "database": DB_NAME,
        "username": DB_OWNER,
        "password": owner_pw,
        "app-username": DB_APP,
        "app-password": passwords["app-password"],
        "readonly-username": DB_READONLY,
        "readonly-password": passwords["readonly-password"],
        "superuser-password": passwords["superuser-password"],
        "uri": dsn(DB_OWNER, owner_pw),
        "app-uri": dsn(DB_APP, passwords["app-password"]),
        "readonly-uri": dsn(DB_READONLY, passwords["readonly-password"]),
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(stack.db_credentials_secret(), stack.namespace, labels(stack.name, "database")),
        "type": "Opaque",
        "stringData": data,
    }


def build_api_key_secret(stack: TradingStackSpec, secret_key: str, key_id: str) -> dict[str, Any]:
    """The first API key, whole: read it once to configure the EAs (`X-API-Key`)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(stack.api_key_secret(), stack.namespace, labels(stack.name, "api-key")),
        "type": "Opaque",
        "stringData": {"api-key": secret_key, "key-id": key_id},
    }


def build_api_key_hash_secret(stack: TradingStackSpec, key_id: str, key_hash: str) -> dict[str, Any]:
    """Only the key's id and SHA-256: the migration Job registers these, never the key itself."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(stack.api_key_hash_secret(), stack.namespace, labels(stack.name, "api-key")),
        "type": "Opaque",
        "stringData": {"key-id": key_id, "key-hash": key_hash, "scopes": EA_KEY_SCOPES},
    }


# -- Database -----------------------------------------------------------------------------------


_PG = re.compile(r"pg(\d+)")
_TS = re.compile(r"ts(\d+)\.(\d+)(?:\.(\d+))?")


def refused_db_image_change(live_image: str, wanted_image: str) -> str | None:
    """Why switching the database image in place is refused, or None when it is allowed.

    A PostgreSQL major change needs pg_upgrade (or dump/restore into a new stack), and a
    TimescaleDB downgrade breaks the catalog: neither may happen by editing an image tag.
    Tags that carry no `pgNN`/`tsX.Y.Z` (digests, custom builds) are not judged.
    """
    old_tag, new_tag = live_image.rsplit(":", 1)[-1], wanted_image.rsplit(":", 1)[-1]
    old_pg, new_pg = _PG.search(old_tag), _PG.search(new_tag)
    if old_pg and new_pg and old_pg.group(1) != new_pg.group(1):
        return f"PostgreSQL major {old_pg.group(1)} -> {new_pg.group(1)} needs an explicit upgrade"
    old_ts, new_ts = _TS.search(old_tag), _TS.search(new_tag)
    if old_ts and new_ts:
        before = tuple(int(x or 0) for x in old_ts.groups())
        after = tuple(int(x or 0) for x in new_ts.groups())
        if after < before:
            return f"TimescaleDB downgrade {'.'.join(map(str, before))} -> {'.'.join(map(str, after))} is refused"
    return None


def build_db_service(stack: TradingStackSpec) -> dict[str, Any]:
    """Headless Service: stable `<stack>-db-0.<stack>-db` DNS for the single database pod."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(stack.db_service_name(), stack.namespace, labels(stack.name, "database")),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": False,
            "selector": selector(stack.name, "database"),
            "ports": [{"name": "postgres", "port": DB_PORT, "targetPort": "postgres"}],
        },
    }


def timescale_settings(stack: TradingStackSpec) -> dict[str, str]:
    """Retention/compression as environment for the migrations (SQL policies live there)."""
    db = stack.database
    return {
        "MT5DB_RETENTION_DAYS": str(db.retention_days),
        "MT5DB_TRAINING_WINDOW_DAYS": str(db.training_window_days),
        "MT5DB_COMPRESSION": "true" if db.compression else "false",
        "MT5DB_COMPRESS_AFTER_DAYS": str(db.compress_after_days),
    }


def build_db_statefulset(stack: TradingStackSpec) -> dict[str, Any]:
    """One TimescaleDB pod with a PVC template; PVC retention follows `spec.pvcRetention`."""
    db = stack.database
    secret = stack.db_credentials_secret()
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": db.storage_size}},
    }
    if db.storage_class:
        pvc_spec["storageClassName"] = db.storage_class
    settings = {**DB_SERVER_SETTINGS, **(DB_TIMESCALE_SETTINGS if db.timescale else {})}
    probe_cmd = ["pg_isready", "-h", "127.0.0.1", "-p", str(DB_PORT), "-U", DB_OWNER, "-d", DB_NAME]
    container = {
        "name": "timescaledb",
        "image": db.image,
        "imagePullPolicy": "IfNotPresent",
        # The image's entrypoint runs `postgres` with these; -c wins over what its tuning wrote.
        "args": ["postgres", *(arg for k, v in settings.items() for arg in ("-c", f"{k}={v}"))],
        "ports": [{"name": "postgres", "containerPort": DB_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "POSTGRES_DB", "value": DB_NAME},
            {"name": "POSTGRES_USER", "value": DB_OWNER},
            secret_env("POSTGRES_PASSWORD", secret, "password"),
            {"name": "PGDATA", "value": f"{PGDATA_MOUNT}/data"},
            # The HA image would start Patroni when these are set; plain Postgres here.
            {"name": "TIMESCALEDB_TELEMETRY", "value": "off"},
            {"name": "TS_TUNE_MEMORY", "value": db.resources.limits.get("memory", "2Gi")},
        ],
        "resources": db.resources.manifest(),
        "securityContext": container_security_context(read_only_root=True),
        "readinessProbe": {
            "exec": {"command": probe_cmd},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "exec": {"command": probe_cmd},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "volumeMounts": [
            {"name": "data", "mountPath": PGDATA_MOUNT},
            # Read-only root filesystem: Postgres still needs its socket dir and /tmp writable.
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir mount point, not a host path
            {"name": "dshm", "mountPath": "/dev/shm"},  # noqa: S108 - memory emptyDir
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(stack.db_name(), stack.namespace, labels(stack.name, "database")),
        "spec": {
            "serviceName": stack.db_service_name(),
            "replicas": 1,
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector(stack.name, "database")},
            # Deleting the stack deletes the PVC only with pvcRetention: Delete (KCM's GC honours
            # this through the StatefulSet's ownerReference on the claims); Retain keeps the data.
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": stack.pvc_retention,
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": labels(stack.name, "database")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(DB_UID, fs_group=DB_UID),
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": [
                        {"name": "run", "emptyDir": {"sizeLimit": "16Mi"}},
                        tmp_volume(size="256Mi"),
                        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "labels": labels(stack.name, "database")},
                    "spec": pvc_spec,
                }
            ],
        },
    }


def build_db_network_policy(stack: TradingStackSpec) -> dict[str, Any]:
    """The database accepts connections only from this stack's DB clients."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(stack.network_policy_name(), stack.namespace, labels(stack.name, "database")),
        "spec": {
            "podSelector": {"matchLabels": selector(stack.name, "database")},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": db_client_peer(stack.name)}}],
                    "ports": [{"protocol": "TCP", "port": DB_PORT}],
                }
            ],
        },
    }


# -- Migrations ---------------------------------------------------------------------------------


def short_hash(value: Any, length: int = 8) -> str:
    """Stable hash of a JSON-able value (children are hashed from spec only, never the operator)."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()[:length]


def migrate_hash(stack: TradingStackSpec) -> str:
    """Hash of the migration Job's whole spec: a Job's pod template is immutable, so any change
    (a new API image, new TimescaleDB policy settings, a new DSN Secret) means a new Job."""
    return short_hash(_migrate_job_spec(stack))


def api_env(stack: TradingStackSpec, role: str = "app") -> list[dict[str, Any]]:
    """The API's environment; it connects as the application role (the migration as the owner)."""
    return [
        secret_env("MT5DB_DATABASE_URL", stack.db_secret_name(), stack.db_secret_key(role)),
        {"name": "MT5DB_HOST", "value": "0.0.0.0"},  # noqa: S104 - inside a pod, behind a Service
        {"name": "MT5DB_PORT", "value": str(API_PORT)},
        {"name": "MT5DB_RATE_LIMIT_PER_S", "value": str(stack.api.rate_limit_per_second)},
        {"name": "MT5DB_RATE_LIMIT_BURST", "value": str(stack.api.rate_limit_burst)},
    ]


def build_migrate_job(stack: TradingStackSpec) -> dict[str, Any]:
    """`mt5db migrate` as a Job: schema, Timescale policies, and the first key's hash.

    A Job rather than API start-up: one runner per schema version instead of N replicas racing
    for an advisory lock, and a visible Complete/Failed result that gates `Ready`.
    """
    pod_labels = db_client_labels(stack.name, "migrate")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(stack.migrate_job_name(migrate_hash(stack)), stack.namespace, pod_labels),
        "spec": _migrate_job_spec(stack),
    }


def _migrate_job_spec(stack: TradingStackSpec) -> dict[str, Any]:
    # The owner migrates and (managed database) sets the two other roles' passwords and grants.
    roles = (
        [secret_env("MT5DB_APP_PASSWORD", stack.db_credentials_secret(), "app-password"),
         secret_env("MT5DB_READONLY_PASSWORD", stack.db_credentials_secret(), "readonly-password")]
        if stack.database_managed() else []
    )  # fmt: skip
    env = [
        *api_env(stack, role="owner"),
        *roles,
        *({"name": k, "value": v} for k, v in timescale_settings(stack).items()),
        secret_env("MT5DB_BOOTSTRAP_KEY_ID", stack.api_key_hash_secret(), "key-id"),
        secret_env("MT5DB_BOOTSTRAP_KEY_HASH", stack.api_key_hash_secret(), "key-hash"),
        secret_env("MT5DB_BOOTSTRAP_KEY_SCOPES", stack.api_key_hash_secret(), "scopes"),
    ]
    pod_labels = db_client_labels(stack.name, "migrate")
    return {
        "backoffLimit": 6,
        "activeDeadlineSeconds": 1800,
        "completions": 1,
        "parallelism": 1,
        "template": {
            "metadata": {"labels": pod_labels},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security_context(API_UID),
                "containers": [
                    {
                        "name": "migrate",
                        "image": stack.api.image,
                        # The Job starts beside the database: wait for it rather than burn retries.
                        "command": ["mt5db", "migrate", "--wait", str(MIGRATE_WAIT_SECONDS)],
                        "env": env,
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "securityContext": container_security_context(),
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                    }
                ],
                "volumes": [tmp_volume()],
            },
        },
    }


# -- API ----------------------------------------------------------------------------------------


def http_deployment_spec(
    stack: TradingStackSpec,
    component: str,
    uid: int,
    container: dict[str, Any],
    liveness_delay_seconds: int,
    tmp_size: str = "64Mi",
) -> dict[str, Any]:
    """The Deployment spec of an HTTP component (the API, serving): rolling updates that never
    drop below the ready count, scraped at /prometheus, /ready and /health probes on `http`, a
    non-root pod with a read-only root filesystem and a /tmp emptyDir. `container` holds what
    differs (name, image, command, env, resources); `replicas` is the caller's."""
    return {
        "selector": {"matchLabels": selector(stack.name, component)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {
                "labels": db_client_labels(stack.name, component),
                "annotations": {"prometheus.io/path": "/prometheus", "prometheus.io/port": str(API_PORT)},
            },
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security_context(uid),
                "terminationGracePeriodSeconds": 30,
                "containers": [
                    {
                        **container,
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"name": "http", "containerPort": API_PORT, "protocol": "TCP"}],
                        "securityContext": container_security_context(),
                        "readinessProbe": {
                            "httpGet": {"path": "/ready", "port": "http"},
                            "periodSeconds": 5,
                            "timeoutSeconds": 2,
                            "failureThreshold": 2,
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/health", "port": "http"},
                            "initialDelaySeconds": liveness_delay_seconds,
                            "periodSeconds": 10,
                            "timeoutSeconds": 2,
                            "failureThreshold": 3,
                        },
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                    }
                ],
                "volumes": [tmp_volume(size=tmp_size)],
            },
        },
    }


def build_api_deployment(stack: TradingStackSpec, replicas: int | None = None) -> dict[str, Any]:
    """The API. `replicas` is omitted unless given: the HPA owns it (never fight over it)."""
    container = {
        "name": "api",
        "image": stack.api.image,
        "command": ["mt5db", "api"],
        "env": api_env(stack),
        "resources": stack.api.resources.manifest(),
    }
    spec = http_deployment_spec(stack, "api", API_UID, container, liveness_delay_seconds=10)
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(stack.api_name(), stack.namespace, labels(stack.name, "api")),
        "spec": spec,
    }


def build_api_service(stack: TradingStackSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(stack.api_name(), stack.namespace, labels(stack.name, "api")),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(stack.name, "api"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_api_hpa(stack: TradingStackSpec) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(stack.api_name(), stack.namespace, labels(stack.name, "api")),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": stack.api_name()},
            "minReplicas": stack.api.min_replicas,
            "maxReplicas": stack.api.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": stack.api.target_cpu},
                    },
                }
            ],
        },
    }


def build_api_network_policy(stack: TradingStackSpec) -> dict[str, Any]:
    """The API pods accept their port only from the ingress controller's namespace (with an
    Ingress), the monitoring namespace (the /prometheus scrape) and this stack's own pods."""
    peers: list[dict[str, Any]] = [{"podSelector": {"matchLabels": {LABEL_STACK: stack.name}}}]
    namespaces = [stack.monitoring.namespace]
    if stack.api.ingress is not None:
        namespaces.insert(0, stack.api.ingress.controller_namespace)
    peers += [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}} for ns in namespaces
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(stack.api_network_policy_name(), stack.namespace, labels(stack.name, "api")),
        "spec": {
            "podSelector": {"matchLabels": selector(stack.name, "api")},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": API_PORT}]}],
        },
    }


def build_api_pdb(stack: TradingStackSpec) -> dict[str, Any]:
    """maxUnavailable 1 (not minAvailable 1): a single replica never blocks a node drain."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(stack.api_name(), stack.namespace, labels(stack.name, "api")),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(stack.name, "api")}},
    }


def build_api_ingress(stack: TradingStackSpec) -> dict[str, Any] | None:
    ingress = stack.api.ingress
    if ingress is None:
        return None
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    # Only what EAs and clients call (exact paths); never /prometheus or the docs.
                    "paths": [
                        *serving_ingress_paths(stack),
                        *(
                            {
                                "path": path,
                                "pathType": "Exact",
                                "backend": {"service": {"name": stack.api_name(), "port": {"name": "http"}}},
                            }
                            for path in PUBLIC_PATHS
                        ),
                    ]
                },
            }
        ]
    }
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(stack.api_name(), stack.namespace, labels(stack.name, "api")),
        "spec": spec,
    }


# -- Serving ------------------------------------------------------------------------------------
# `mt5db serve` runs in the training image (scikit-learn, TA-Lib: the feature function and the
# artifacts), beside the API whose image stays free of them (docs/decisions/0010).

SERVING_PATHS = ("/predict",)


def serving_ingress_paths(stack: TradingStackSpec) -> list[dict[str, Any]]:
    """The paths the API's Ingress sends to serving (none while serving is off)."""
    if not stack.serving.enabled:
        return []
    backend = {"service": {"name": stack.serving_name(), "port": {"name": "http"}}}
    return [{"path": path, "pathType": "Exact", "backend": backend} for path in SERVING_PATHS]


def serving_env(stack: TradingStackSpec) -> list[dict[str, Any]]:
    sv = stack.serving
    return [
        # Serving reads the registry and writes signals: the application role's grants.
        secret_env("MT5DB_DATABASE_URL", stack.db_secret_name(), stack.db_secret_key("app")),
        {"name": "MT5DB_HOST", "value": "0.0.0.0"},  # noqa: S104 - inside a pod, behind a Service
        {"name": "MT5DB_PORT", "value": str(API_PORT)},
        {"name": "MT5DB_RATE_LIMIT_PER_S", "value": str(stack.api.rate_limit_per_second)},
        {"name": "MT5DB_RATE_LIMIT_BURST", "value": str(stack.api.rate_limit_burst)},
        {"name": "MT5DB_RELOAD_POLL_S", "value": str(sv.reload_poll_seconds)},
        {"name": "MT5DB_SIGNAL_LOOP", "value": "true" if sv.signals else "false"},
        {"name": "MT5DB_SIGNAL_TTL_S", "value": str(sv.signal_ttl_seconds)},
        {"name": "MT5DB_SIGNAL_MAX_BAR_AGE_S", "value": str(sv.signal_max_bar_age_seconds)},
        # scikit-learn/joblib and numpy may want a writable home; the root filesystem is read-only
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - the pod's emptyDir
    ]


def build_serving_deployment(stack: TradingStackSpec) -> dict[str, Any]:
    """`mt5db serve`: a fixed replica count (each replica loads every alias and runs the signal
    loop; the registry's unique index keeps one signal per bar however many there are). Its
    /ready waits for the database and the first model load, hence the later liveness probe."""
    container = {
        "name": "serving",
        "image": stack.serving.image,
        "command": ["mt5db", "serve"],
        "env": serving_env(stack),
        "resources": stack.serving.resources.manifest(),
    }
    spec = http_deployment_spec(stack, "serving", TRAINING_UID, container, 20, tmp_size="256Mi")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(stack.serving_name(), stack.namespace, labels(stack.name, "serving")),
        "spec": {"replicas": stack.desired_serving_replicas(), **spec},
    }


def build_serving_service(stack: TradingStackSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(stack.serving_name(), stack.namespace, labels(stack.name, "serving")),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(stack.name, "serving"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
