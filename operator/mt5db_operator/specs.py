"""Typed views of the three CRD specs, with every name and default in one place.

The CRD schemas default the same fields on the server; the specs repeat the defaults so a
builder called from a unit test with a partial spec gets the same answer as the operator.
Builders, handlers and tests all ask these methods for names (`stack.api_name()`), never
format names themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mt5db_operator import constants as c


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Meta:
    """What builders need to know about the owning object (never its status)."""

    name: str
    namespace: str
    uid: str = ""
    generation: int = 0

    @classmethod
    def from_body(cls, body: Any) -> Meta:
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
        )


@dataclass(frozen=True)
class Resources:
    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any, requests: dict[str, str], limits: dict[str, str]) -> Resources:
        raw = _dict(raw)
        return cls(
            requests={k: str(v) for k, v in (_dict(raw.get("requests")) or requests).items()},
            limits={k: str(v) for k, v in (_dict(raw.get("limits")) or limits).items()},
        )

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.requests:
            out["requests"] = dict(self.requests)
        if self.limits:
            out["limits"] = dict(self.limits)
        return out


# -- TradingStack -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseSpec:
    image: str
    storage_size: str
    storage_class: str | None
    resources: Resources
    timescale: bool  # the image has TimescaleDB: preload it and size its workers
    retention_days: int
    compression: bool
    compress_after_days: int
    training_window_days: int
    external_secret: str | None
    external_key: str


@dataclass(frozen=True)
class IngressSpec:
    host: str
    class_name: str | None
    tls_secret: str | None
    controller_namespace: str  # the API's NetworkPolicy admits the controller from there


@dataclass(frozen=True)
class ApiSpec:
    image: str
    min_replicas: int
    max_replicas: int
    target_cpu: int
    resources: Resources
    rate_limit_per_second: int
    rate_limit_burst: int
    ingress: IngressSpec | None


@dataclass(frozen=True)
class ServingSpec:
    """`spec.serving`: `mt5db serve` (training image): /predict and the signal loop."""

    enabled: bool
    image: str
    replicas: int
    resources: Resources
    reload_poll_seconds: int
    signals: bool
    signal_ttl_seconds: int
    signal_max_bar_age_seconds: int


@dataclass(frozen=True)
class MonitoringSpec:
    enabled: bool
    namespace: str  # where Prometheus scrapes from (the API's NetworkPolicy admits it)
    rules: bool
    service_monitor: bool
    dashboards: bool
    extra_labels: dict[str, str]
    error_ratio: float
    latency_p95_seconds: float
    stall_minutes: int
    duplicate_ratio: float
    champion_max_age_days: int
    unacked_minutes: int
    dashboard_label: str
    dashboard_label_value: str


@dataclass(frozen=True)
class TradingStackSpec:
    """The TradingStack spec with defaults applied, plus every derived name."""

    meta: Meta
    database: DatabaseSpec
    api: ApiSpec
    monitoring: MonitoringSpec
    suspend: bool
    pvc_retention: str
    serving: ServingSpec = field(
        default_factory=lambda: ServingSpec(
            False, c.DEFAULT_TRAINING_IMAGE, 1, Resources(), 5, True, 90, 7200
        )
    )

    @classmethod
    def parse(cls, spec: Any, meta: Meta) -> TradingStackSpec:
        spec = _dict(spec)
        db, api, mon = _dict(spec.get("database")), _dict(spec.get("api")), _dict(spec.get("monitoring"))
        storage, ts = _dict(db.get("storage")), _dict(db.get("timescale"))
        external = _dict(db.get("external"))
        ingress = _dict(api.get("ingress"))
        rate = _dict(api.get("rateLimit"))
        thresholds = _dict(mon.get("thresholds"))
        dash = _dict(mon.get("dashboardLabel"))
        serving, signals = _dict(spec.get("serving")), _dict(_dict(spec.get("serving")).get("signals"))
        return cls(
            meta=meta,
            database=DatabaseSpec(
                image=db.get("image") or c.DEFAULT_DB_IMAGE,
                storage_size=str(storage.get("size") or "10Gi"),
                storage_class=storage.get("storageClassName"),
                resources=Resources.parse(
                    db.get("resources"), {"cpu": "500m", "memory": "1Gi"}, {"memory": "2Gi"}
                ),
                timescale=bool(ts.get("enabled", True)),
                retention_days=int(ts.get("retentionDays", 730)),
                compression=bool(ts.get("compression", True)),
                compress_after_days=int(ts.get("compressAfterDays", 7)),
                training_window_days=int(db.get("trainingWindowDays", 365)),
                external_secret=external.get("secretName"),
                external_key=external.get("key") or "uri",
            ),
            api=ApiSpec(
                image=api.get("image") or c.DEFAULT_API_IMAGE,
                min_replicas=int(api.get("minReplicas", 2)),
                max_replicas=int(api.get("maxReplicas", 4)),
                target_cpu=int(api.get("targetCPUUtilizationPercentage", 70)),
                resources=Resources.parse(
                    api.get("resources"), {"cpu": "250m", "memory": "256Mi"}, {"memory": "512Mi"}
                ),
                rate_limit_per_second=int(rate.get("requestsPerSecond", 50)),
                rate_limit_burst=int(rate.get("burst", 100)),
                ingress=IngressSpec(
                    host=ingress["host"],
                    class_name=ingress.get("className"),
                    tls_secret=ingress.get("tlsSecretName"),
                    controller_namespace=str(ingress.get("controllerNamespace") or "ingress-nginx"),
                )
                if ingress.get("host")
                else None,
            ),
            monitoring=MonitoringSpec(
                enabled=bool(mon.get("enabled", True)),
                namespace=str(mon.get("namespace") or "monitoring"),
                rules=bool(mon.get("rules", True)),
                service_monitor=bool(mon.get("serviceMonitor", True)),
                dashboards=bool(mon.get("dashboards", True)),
                extra_labels={str(k): str(v) for k, v in _dict(mon.get("extraLabels")).items()},
                error_ratio=float(thresholds.get("errorRatio", 0.05)),
                latency_p95_seconds=float(thresholds.get("latencyP95Seconds", 0.5)),
                stall_minutes=int(thresholds.get("stallMinutes", 15)),
                duplicate_ratio=float(thresholds.get("duplicateRatio", 0.5)),
                champion_max_age_days=int(thresholds.get("championMaxAgeDays", 30)),
                unacked_minutes=int(thresholds.get("unackedMinutes", 15)),
                dashboard_label=dash.get("key") or c.GRAFANA_DASHBOARD_LABEL,
                dashboard_label_value=str(dash.get("value") or "1"),
            ),
            suspend=bool(spec.get("suspend", False)),
            pvc_retention=spec.get("pvcRetention") or "Retain",
            serving=ServingSpec(
                enabled=bool(serving.get("enabled", False)),
                image=serving.get("image") or c.DEFAULT_TRAINING_IMAGE,
                replicas=int(serving.get("replicas", 1)),
                resources=Resources.parse(
                    serving.get("resources"), {"cpu": "500m", "memory": "1Gi"}, {"memory": "2Gi"}
                ),
                reload_poll_seconds=int(serving.get("reloadPollSeconds", 5)),
                signals=bool(signals.get("enabled", True)),
                signal_ttl_seconds=int(signals.get("ttlSeconds", 90)),
                signal_max_bar_age_seconds=int(signals.get("maxBarAgeSeconds", 7200)),
            ),
        )

    # names ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str:
        return self.meta.namespace

    def db_name(self) -> str:
        return f"{self.name}-db"

    def db_service_name(self) -> str:
        """Headless Service governing the StatefulSet (stable DNS for pod 0)."""
        return f"{self.name}-db"

    def db_credentials_secret(self) -> str:
        return f"{self.name}-db-credentials"

    def db_secret_name(self) -> str:
        """The Secret whose `uri` key every database client reads (generated or external)."""
        return self.database.external_secret or self.db_credentials_secret()

    def db_secret_key(self, role: str = "owner") -> str:
        """The DSN key for a database role (docs/operator.md, "Database roles"): `owner` migrates and
        backs up, `app` is the API's (no DDL), `readonly` training's. An external Secret has one."""
        if self.database.external_secret:
            return self.database.external_key
        return {"owner": "uri", "app": "app-uri", "readonly": "readonly-uri"}[role]

    def api_key_secret(self) -> str:
        """The first API key, for whoever configures the EAs. Never copied anywhere else."""
        return f"{self.name}-api-key"

    def api_key_hash_secret(self) -> str:
        """Only the hash of the first key: what the migration Job registers in the database."""
        return f"{self.name}-api-key-hash"

    def api_name(self) -> str:
        return f"{self.name}-api"

    def migrate_job_name(self, image_hash: str) -> str:
        """One migration Job per API image: Job pod templates are immutable, a new image runs anew."""
        return f"{self.name}-migrate-{image_hash}"

    def network_policy_name(self) -> str:
        return f"{self.name}-db"

    def serving_name(self) -> str:
        """Deployment and Service of `mt5db serve` (the Ingress routes /predict to it)."""
        return f"{self.name}-serving"

    def desired_serving_replicas(self) -> int:
        return 0 if self.suspend else self.serving.replicas

    def api_network_policy_name(self) -> str:
        return f"{self.name}-api"

    def rules_name(self) -> str:
        return f"{self.name}-rules"

    def dashboards_name(self) -> str:
        return f"{self.name}-dashboards"

    def db_host(self) -> str:
        return f"{self.db_name()}-0.{self.db_service_name()}.{self.namespace}.svc"

    def desired_api_replicas(self) -> int:
        return 0 if self.suspend else self.api.min_replicas

    def database_managed(self) -> bool:
        return self.database.external_secret is None


# -- TrainingRun --------------------------------------------------------------------------------

# spec.model.params → the trainer's options (the CRD schema admits these keys only).
TRAINER_PARAMS = {
    "n_estimators": "--n-estimators",
    "max_depth": "--max-depth",
    "min_samples_leaf": "--min-samples-leaf",
    "epochs": "--epochs",
    "max_train_windows": "--max-train-windows",
    "folds": "--folds",
}


@dataclass(frozen=True)
class TrainingRunSpec:
    meta: Meta
    stack: str
    model_type: str
    model_config: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    timeframe: str
    start: str
    end: str
    workers: int
    cpu: str
    memory: str
    gpu: int
    backend: str
    promote: str
    image: str
    ttl_seconds_after_finished: int
    active_deadline_seconds: int

    @classmethod
    def parse(cls, spec: Any, meta: Meta) -> TrainingRunSpec:
        spec = _dict(spec)
        model, data, res = _dict(spec.get("model")), _dict(spec.get("data")), _dict(spec.get("resources"))
        return cls(
            meta=meta,
            stack=_dict(spec.get("stackRef")).get("name", ""),
            model_type=model.get("type", "randomForest"),
            model_config=model.get("config", "simple"),
            params=_dict(model.get("params")),
            symbols=tuple(str(s) for s in data.get("symbols") or ()),
            timeframe=data.get("timeframe", "H1"),
            start=str(data.get("start", "")),
            end=str(data.get("end", "")),
            workers=int(res.get("workers", 1)),
            cpu=str(res.get("cpu", "2")),
            memory=str(res.get("memory", "4Gi")),
            gpu=int(res.get("gpu", 0)),
            backend=spec.get("backend", "auto"),
            promote=spec.get("promote", "ifBetter"),
            image=spec.get("image") or c.DEFAULT_TRAINING_IMAGE,
            ttl_seconds_after_finished=int(spec.get("ttlSecondsAfterFinished", 3600)),
            active_deadline_seconds=int(spec.get("activeDeadlineSeconds", 7200)),
        )

    @property
    def name(self) -> str:
        return self.meta.name

    def child_name(self) -> str:
        return self.meta.name

    def result_configmap(self) -> str:
        """Where the entrypoint leaves its result (metrics, model version) for the operator."""
        return f"{self.meta.name}-result"

    def trainer_name(self) -> str:
        """ServiceAccount, Role and RoleBinding of the run's pods (may write the result only)."""
        return f"{self.meta.name}-trainer"

    def train_args(self) -> list[str]:
        """Arguments shared by the Ray entrypoint and `mt5db train` (one entrypoint, two launchers)."""
        args = [
            "--run", self.meta.name,
            "--model", self.model_type,
            "--config", self.model_config,
            "--symbols", ",".join(self.symbols),
            "--timeframe", self.timeframe,
            "--promote", self.promote,
        ]  # fmt: skip
        if self.start:
            args += ["--start", self.start]
        if self.end:
            args += ["--end", self.end]
        for key, value in sorted(self.params.items()):
            args += [TRAINER_PARAMS[key], str(value)]
        return args


# -- BackupPolicy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupPolicySpec:
    meta: Meta
    stack: str
    schedule: str
    keep_last: int
    max_age: str
    pvc_claim: str | None
    pvc_managed: bool
    pvc_size: str
    s3_bucket: str | None
    s3_endpoint: str | None
    s3_prefix: str
    s3_credentials_secret: str | None
    verify: bool
    suspend: bool
    image: str | None
    starting_deadline_seconds: int
    active_deadline_seconds: int

    @classmethod
    def parse(cls, spec: Any, meta: Meta) -> BackupPolicySpec:
        spec = _dict(spec)
        retention, dest = _dict(spec.get("retention")), _dict(spec.get("destination"))
        pvc, s3 = _dict(dest.get("pvc")), _dict(dest.get("s3"))
        return cls(
            meta=meta,
            stack=_dict(spec.get("stackRef")).get("name", ""),
            schedule=spec.get("schedule", "0 3 * * *"),
            keep_last=int(retention.get("keepLast", 7)),
            max_age=str(retention.get("maxAge", "30d")),
            pvc_claim=pvc.get("claimName") or (None if s3 else f"{meta.name}-backups"),
            pvc_managed=not s3 and not pvc.get("claimName"),
            pvc_size=str(pvc.get("size") or "20Gi"),
            s3_bucket=s3.get("bucket"),
            s3_endpoint=s3.get("endpoint"),
            s3_prefix=s3.get("prefix") or meta.name,
            s3_credentials_secret=s3.get("credentialsSecret"),
            verify=bool(spec.get("verify", False)),
            suspend=bool(spec.get("suspend", False)),
            image=spec.get("image"),
            starting_deadline_seconds=int(spec.get("startingDeadlineSeconds", 300)),
            active_deadline_seconds=int(spec.get("activeDeadlineSeconds", 3600)),
        )

    @property
    def name(self) -> str:
        return self.meta.name

    def cronjob_name(self) -> str:
        return f"{self.meta.name}-backup"
