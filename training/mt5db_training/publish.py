"""The run's result for the operator: a small JSON document in the ConfigMap `<run>-result`.

The TrainingRun operator mirrors `metrics`, `modelVersion` and `primaryMetric` from that ConfigMap
(key `result.json`) into the TrainingRun's status once its Job/RayJob has succeeded. The operator
sets `MT5DB_RESULT_CONFIGMAP` (and `MT5DB_RUN_NAME`) in the training pods, creates the (empty)
ConfigMap itself and gives the pods a ServiceAccount allowed to `get/update/patch` that one
ConfigMap only. Here:

* `result_document(report, versions)` / `run_document(results)` are pure: headline numbers of a
  finished run (pooled out-of-sample over the walk-forward folds), the model next to its
  baselines, numbers only, and per symbol the registered version and whether the gate promoted it;
* `write_result_configmap(...)` talks to the Kubernetes REST API with the standard library only
  (urllib + ssl, the in-pod service-account token and CA); no Kubernetes client in this component;
* `publish_run(...)` ties both together for the training commands and turns a failure into
  `PUBLISH_FAILED_EXIT_CODE` (the operator's Job fails on it instead of retraining).

Nothing here imports the operator (and the operator never imports training): the contract is the
ConfigMap name, the key and the document's shape, tested on both sides.
"""

from __future__ import annotations

import json
import logging
import math
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mt5db_training.registry import model_name

log = logging.getLogger(__name__)

ENV_CONFIGMAP = "MT5DB_RESULT_CONFIGMAP"
ENV_RUN_NAME = "MT5DB_RUN_NAME"
RESULT_KEY = "result.json"
FIELD_MANAGER = "mt5db-training"
# Exit status of a training command whose artifacts (and registry rows) were written but whose
# result could not be published. The operator's Job fails on it (podFailurePolicy FailJob)
# instead of retraining; keep equal to mt5db_operator.resources.trainingrun.PUBLISH_FAILED_EXIT_CODE.
PUBLISH_FAILED_EXIT_CODE = 3

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_PATH = SA_DIR / "token"
CA_PATH = SA_DIR / "ca.crt"
NAMESPACE_PATH = SA_DIR / "namespace"

# The model each algorithm's report is about (its baselines sit beside it in the same tables).
MODEL_KEY = {"random_forest": "random_forest", "informer": "informer"}


class PublishError(RuntimeError):
    """The result could not be written to the ConfigMap."""


def _number(value: Any) -> float | None:
    """A finite float, or None (None, NaN, inf, strings and bools are not metrics)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _ci_low(entry: Mapping[str, Any], key: str) -> float | None:
    ci = entry.get(key)
    return _number(ci[0]) if isinstance(ci, list | tuple) and ci else None


def _horizon_metrics(block: Mapping[str, Any], model: str, h: str) -> dict[str, float | None]:
    reg = block.get("regression") or {}
    cls = block.get("classification") or {}
    bt = block.get("backtest") or {}
    m_reg, m_cls, m_bt = reg.get(model) or {}, cls.get(model) or {}, bt.get(model) or {}
    lr_cls = cls.get("logistic_regression") or {}
    out: dict[str, float | None] = {}
    if m_reg:
        out[f"r2_oos_h{h}"] = _number(m_reg.get("r2_oos"))
        out[f"r2_oos_ci_low_h{h}"] = _ci_low(m_reg, "r2_oos_ci95")
        out[f"r2_oos_persistence_h{h}"] = _number((reg.get("persistence") or {}).get("r2_oos"))
        out[f"mae_h{h}"] = _number(m_reg.get("mae"))
        out[f"mae_zero_h{h}"] = _number((reg.get("zero") or {}).get("mae"))
    if m_cls:
        out[f"auc_h{h}"] = _number(m_cls.get("auc"))
        out[f"auc_ci_low_h{h}"] = _ci_low(m_cls, "auc_ci95")
        out[f"auc_lr_h{h}"] = _number(lr_cls.get("auc"))
        out[f"brier_skill_h{h}"] = _number(m_cls.get("brier_skill"))
    if m_bt:
        out[f"net_pips_h{h}"] = _number(m_bt.get("total_net_pips"))
        out[f"net_pips_ci_low_h{h}"] = _ci_low(m_bt, "total_net_pips_ci95")
        out[f"trades_h{h}"] = _number(m_bt.get("trades"))
        out[f"net_pips_always_long_h{h}"] = _number((bt.get("always_long") or {}).get("total_net_pips"))
        out[f"net_pips_always_short_h{h}"] = _number((bt.get("always_short") or {}).get("total_net_pips"))
    # The verdict as a number (1 = beats every baseline condition); its text stays outside metrics.
    out[f"beats_baselines_h{h}"] = 1.0 if block.get("verdict") == "beats baselines" else 0.0
    return out


def primary_horizon(report: Mapping[str, Any]) -> str:
    """The first horizon (in the report's order) that beats its baselines, else the first one."""
    horizons = [str(h) for h in report["horizons"]]
    winners = [h for h in horizons if report["horizons"][h].get("verdict") == "beats baselines"]
    return (winners or horizons)[0]


def result_document(
    report: Mapping[str, Any],
    versions: Mapping[str, int] | None = None,
    registered: Any | None = None,
) -> dict[str, Any]:
    """The `result.json` of a finished run (pure: the report and the registered version only).

    `metrics` holds numbers only (the operator keeps only numbers; the CRD's `status.metrics` is a
    map of numbers): per horizon the model's pooled out-of-sample headline figures next to the
    baselines they must beat, and `beats_baselines_h<h>` (1/0). `primaryMetric` is R²_OOS for a
    regression run, AUC for a classification run, at `primary_horizon`. `modelVersion` is
    `<registry name>:v<version>` when the run was registered, else absent. `registered` (a
    registry.Registered) adds `models`: the version, its alias and whether the gate promoted it.
    """
    model = MODEL_KEY.get(report["algo"], report["algo"])
    metrics: dict[str, float] = {}
    for h, block in report["horizons"].items():
        for key, value in _horizon_metrics(block, model, str(h)).items():
            if value is not None:
                metrics[key] = value
    h = primary_horizon(report)
    primary = f"r2_oos_h{h}" if report["task"] == "regression" else f"auc_h{h}"
    doc: dict[str, Any] = {
        "run": report.get("run"),
        "metrics": metrics,
        "primaryMetric": primary if primary in metrics else None,
        "verdict": report.get("verdict"),
        "artifacts": {str(k): v.get("sha256") for k, v in (report.get("artifacts") or {}).items()},
    }
    if registered is not None:
        versions = {registered.name: registered.version}
        metrics["promoted"] = 1.0 if registered.promoted else 0.0
        doc["models"] = [_model_entry(registered)]
    if versions:
        name = model_name(report)
        if name in versions:
            doc["modelVersion"] = f"{name}:v{versions[name]}"
        doc["modelVersions"] = {str(k): int(v) for k, v in versions.items()}
    return {k: v for k, v in doc.items() if v is not None}


def _model_entry(registered: Any) -> dict[str, Any]:
    return {
        "symbol": registered.symbol,
        "timeframe": registered.timeframe,
        "version": registered.label,
        "alias": registered.alias or "none",
        "promoted": bool(registered.promoted),
        "reason": registered.reason[:1000],
    }


def run_document(results: Sequence[tuple[Mapping[str, Any], Any | None]]) -> dict[str, Any]:
    """The `result.json` of a run over one or several symbols (one version per symbol).

    One symbol: `result_document`. Several: every metric key gets the symbol as a suffix
    (`r2_oos_h5_EURUSD`), `primaryMetric`/`modelVersion` are the first symbol's, `modelVersions`
    and `models` list every symbol's version and what the gate did with it.
    """
    if len(results) == 1:
        report, registered = results[0]
        return result_document(report, registered=registered)
    docs = [(report["data"]["symbol"], result_document(report, registered=reg)) for report, reg in results]
    first_symbol, first = docs[0]
    metrics = {f"{k}_{symbol}": v for symbol, doc in docs for k, v in doc["metrics"].items()}
    out: dict[str, Any] = {
        "run": first.get("run"),
        "metrics": metrics,
        "verdict": "; ".join(f"{symbol}: {doc.get('verdict')}" for symbol, doc in docs),
        "artifacts": {f"{symbol}/{h}": sha for symbol, doc in docs for h, sha in doc["artifacts"].items()},
    }
    if first.get("primaryMetric"):
        out["primaryMetric"] = f"{first['primaryMetric']}_{first_symbol}"
    if first.get("modelVersion"):
        out["modelVersion"] = first["modelVersion"]
    versions = {k: v for _, doc in docs for k, v in (doc.get("modelVersions") or {}).items()}
    if versions:
        out["modelVersions"] = versions
    models = [m for _, doc in docs for m in doc.get("models", [])]
    if models:
        out["models"] = models
    return out


# -- writer ---------------------------------------------------------------------------------------


def _server(env: Mapping[str, str]) -> str | None:
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 service IP
    return f"https://{host}:{port}"


def _request(
    method: str,
    url: str,
    body: dict[str, Any],
    *,
    token: str,
    context: ssl.SSLContext,
    content_type: str,
    timeout: float,
) -> tuple[int, str]:
    req = urllib.request.Request(  # noqa: S310 - https only, built from the in-cluster service address
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": content_type,
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def write_result_configmap(
    document: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    token_path: Path = TOKEN_PATH,
    ca_path: Path = CA_PATH,
    namespace_path: Path = NAMESPACE_PATH,
    timeout: float = 10.0,
    attempts: int = 3,
) -> str | None:
    """Create-or-replace `result.json` in the ConfigMap named by MT5DB_RESULT_CONFIGMAP.

    Returns the ConfigMap's `namespace/name` when written, None when there is nothing to do
    (the variable is unset, or the process is not in a pod: no KUBERNETES_SERVICE_HOST/PORT or
    no service-account token). Raises PublishError when the API refuses or cannot be reached.

    Order: a merge-PATCH of `data` first (the operator pre-creates the ConfigMap with its
    ownerReference, and the pod's Role grants get/update/patch on that one name but not
    `create`, which RBAC cannot restrict by name); on 404 a POST; on 409 (a racing creator) the
    PATCH once more. The paths default to the standard in-pod ones and are overridable (tests).
    """
    env = os.environ if env is None else env
    name = env.get(ENV_CONFIGMAP)
    if not name:
        return None
    server = _server(env)
    if server is None or not token_path.is_file():
        log.warning("%s=%s is set but this is not a pod (no service host or token): not published",
                    ENV_CONFIGMAP, name)  # fmt: skip
        return None
    try:
        token = token_path.read_text().strip()  # re-read each time: projected tokens rotate
        namespace = namespace_path.read_text().strip()
        context = ssl.create_default_context(cafile=str(ca_path))
    except (OSError, ssl.SSLError) as exc:
        raise PublishError(f"writing ConfigMap {name}: cannot read the pod's credentials: {exc}") from exc
    data = {RESULT_KEY: json.dumps(document, sort_keys=True)}
    labels = {"app.kubernetes.io/part-of": "mt5db", "app.kubernetes.io/component": "training-result"}
    if env.get(ENV_RUN_NAME):
        labels["mt5db.io/training-run"] = env[ENV_RUN_NAME]
    ns = urllib.parse.quote(namespace, safe="")
    query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER})
    collection = f"{server}/api/v1/namespaces/{ns}/configmaps"
    item = f"{collection}/{urllib.parse.quote(name, safe='')}"
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }
    last = ""
    for attempt in range(attempts):
        try:
            status, text = _request("PATCH", f"{item}?{query}", {"data": data}, token=token, context=context,
                                    content_type="application/merge-patch+json", timeout=timeout)  # fmt: skip
            if status == 404:
                status, text = _request("POST", f"{collection}?{query}", obj, token=token, context=context,
                                        content_type="application/json", timeout=timeout)  # fmt: skip
                if status == 409:
                    status, text = _request("PATCH", f"{item}?{query}", {"data": data}, token=token,
                                            context=context, content_type="application/merge-patch+json",
                                            timeout=timeout)  # fmt: skip
        except (urllib.error.URLError, OSError) as exc:
            status, text = 0, str(exc)
        if 200 <= status < 300:
            return f"{namespace}/{name}"
        last = f"HTTP {status}: {text[:500]}" if status else f"no answer from {server}: {text[:500]}"
        if status in (400, 401, 403, 404, 422):
            break  # retrying cannot help
        if attempt + 1 < attempts:
            time.sleep(min(2.0**attempt, 5.0))
    raise PublishError(f"writing ConfigMap {namespace}/{name} failed: {last}")


def publish_run(
    report: Mapping[str, Any],
    report_path: Path,
    versions: Mapping[str, int] | None = None,
    **writer: Any,
) -> int:
    """End of a one-report training command: `publish_document` of its result_document."""
    return publish_document(result_document(report, versions), report_path.parent, **writer)


def publish_document(doc: Mapping[str, Any], out_dir: Path, **writer: Any) -> int:
    """End of a training command (after the artifacts and registry rows are written).

    Writes `result.json` in `out_dir` (always), then the ConfigMap when configured.
    Returns 0, or PUBLISH_FAILED_EXIT_CODE when publishing failed (logged, not raised: the
    run's artifacts and registry rows stay; the caller exits with this status).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_KEY).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    try:
        where = write_result_configmap(doc, **writer)
    except PublishError as exc:
        log.error("result not published (artifacts and registry are written): %s", exc)
        print(f"result NOT published: {exc}")
        return PUBLISH_FAILED_EXIT_CODE
    if where:
        print(f"result published: ConfigMap {where} ({doc.get('primaryMetric')}, {doc.get('modelVersion')})")
    return 0
