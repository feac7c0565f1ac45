"""The platform end to end, as a platform team runs it: helm install the operator, apply the
examples, send the EA's bodies, train, back up, break things, delete. Real pods throughout:
the operator, database, migration, API, training and backup all run from the images this
checkout builds (images/), on a node the run creates (docs/e2e.md).

What each step changes in the examples is only what a local cluster needs: the local images,
the Ingress class of the controller that runs here, and, where the node's two CPUs would not fit
the example's requests or its schedule would not fire during a test, those; each is named below.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from mt5db_core.market.tables import MARKET_DATA, MODEL_VERSIONS, TICKS

from .platform import (
    EA_BODIES,
    INGRESS_CLASS,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    Platform,
    example,
    wait_for,
)

pytestmark = pytest.mark.e2e

STACK = "trading"
INGRESS_HOST = "mt5db.example.com"
EURUSD_H1 = "EURUSD_H1_2021-10-18_2024-12-31.csv"


def _ready_pods(platform: Platform, selector: str) -> list[dict]:
    return [
        p for p in platform.items("pods", selector)
        if any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])
    ]  # fmt: skip


def _uid(obj: dict | None) -> str:
    assert obj is not None
    return str(obj["metadata"]["uid"])


# -- 1. the operator, by helm ----------------------------------------------------------------------


def test_01_operator_runs_as_a_pod_installed_by_helm(platform: Platform) -> None:
    # Pod Security admission enforces `restricted` where the platform runs: every pod the chart
    # or the operator creates must pass the real API server's checks.
    for ns in (OPERATOR_NAMESPACE, NAMESPACE):
        platform.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted"}}})  # fmt: skip
    repository, tag = platform.cluster.images["operator"].rsplit(":", 1)
    platform.helm_run(
        "install", "mt5db", "charts/mt5db-operator", "--namespace", OPERATOR_NAMESPACE,
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    platform.kubectl(
        "-n", OPERATOR_NAMESPACE, "rollout", "status", "deployment/mt5db-mt5db-operator", "--timeout=180s"
    )
    (pod,) = _ready_pods_in(platform, OPERATOR_NAMESPACE, "app.kubernetes.io/name=mt5db-operator")
    assert pod["spec"]["containers"][0]["image"] == platform.cluster.images["operator"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    platform.state["operator_pod"] = pod["metadata"]["name"]


def _ready_pods_in(platform: Platform, namespace: str, selector: str) -> list[dict]:
    return [
        p for p in platform.items("pods", selector, namespace=namespace)
        if any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])
    ]  # fmt: skip


# -- 2. the stack ------------------------------------------------------------------------------


def test_02_tradingstack_example_becomes_ready(platform: Platform, tls_ca: tuple[Path, Path]) -> None:
    crt, key = tls_ca
    platform.kubectl("-n", NAMESPACE, "create", "secret", "tls", "mt5db-tls", f"--cert={crt}", f"--key={key}")
    stack = example(
        "tradingstack.yaml",
        **{
            "spec.api.image": platform.cluster.images["api"],
            # A plain PostgreSQL image (the official image's contract) built here from Debian's
            # packages; the default stays the upstream TimescaleDB image.
            "spec.database.image": platform.cluster.images["postgres"],
            "spec.database.timescale.enabled": False,
            "spec.api.ingress.className": INGRESS_CLASS,
        },
    )
    platform.apply(stack)
    platform.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", f"tradingstack/{STACK}", "--timeout=240s",
                     timeout=260)  # fmt: skip
    status = platform.status("tradingstack", STACK)
    assert status["phase"] == "Ready" and status["observedGeneration"] == 1

    (db,) = _ready_pods(platform, f"app.kubernetes.io/instance={STACK},app.kubernetes.io/component=database")
    assert db["spec"]["containers"][0]["image"] == platform.cluster.images["postgres"]
    assert db["spec"]["securityContext"]["runAsUser"] == 1000  # what the operator renders for both images
    assert (
        len(_ready_pods(platform, f"app.kubernetes.io/instance={STACK},app.kubernetes.io/component=api")) == 2
    )
    (job,) = [
        j for j in platform.items("jobs", f"mt5db.io/stack={STACK}") if "-migrate-" in j["metadata"]["name"]
    ]
    assert (job["status"].get("succeeded") or 0) == 1
    version = platform.sql("SELECT max(version) FROM schema_migrations")
    assert int(version) >= 1
    # The database runs as the pod's uid, with its data on the claim.
    assert platform.sql("SHOW data_directory") == "/home/postgres/pgdata/data"


# -- 3. the EA's bodies, through the Service and the Ingress; the HPA on real CPU -------------------


def test_03_ea_bodies_through_the_service_and_the_ingress(platform: Platform) -> None:
    key = platform.secret_value(f"{STACK}-api-key", "api-key")
    platform.state["api_key"] = key
    auth = {"X-API-Key": key}
    bodies = {
        "a_rebuild_bare_candle": "/ingest", "b_rebuild_batch": "/ingest", "c_pro_forming_h1": "/ingest",
        "d_bare_array_h2_w1": "/ingest_batch", "e_ticks_same_second": "/ingest/tick",
    }  # fmt: skip
    for name, path in bodies.items():
        body = (EA_BODIES / f"{name}.json").read_bytes()
        code, answer = platform.via_service("POST", path, body, auth)
        assert code == 200, (name, code, answer[:300])
        # The same body again through the Ingress: the idempotent merge turns it into duplicates
        # (candles), or stores it again (ticks are all kept).
        code, answer = platform.via_ingress(INGRESS_HOST, "POST", path, body, auth)
        assert code == 200, (name, code, answer[:300])
    code, _ = platform.via_ingress(
        INGRESS_HOST, "POST", "/ingest", (EA_BODIES / "a_rebuild_bare_candle.json").read_bytes()
    )
    assert code == 401, "the Ingress passes requests through; without a key the API refuses them"

    # The rows are in the database pod: bodies a-d hold 7 candles, e two ticks posted twice.
    assert platform.sql(f"SELECT count(*) FROM {MARKET_DATA} WHERE ts >= '2025-03-01'") == "7"
    assert platform.sql(f"SELECT count(*) FROM {TICKS}") == "4"
    assert (
        platform.sql(
            f"SELECT close FROM {MARKET_DATA} WHERE symbol = 'USDCAD' AND timeframe = 'H1' AND ts = '2025-03-12T14:00:00Z'"
        )
        == "1.44231"
    )


def _gbpusd_from(eurusd: Path, folder: Path) -> Path:
    """A second series for the example's GBPUSD: the shared data holds EURUSD only, so its bars
    inverted (k / price, high and low swapped), which moves them to GBPUSD's level with other
    returns. Only its existence matters here: the pipeline must run on two symbols."""
    out = folder / "GBPUSD_H1_derived.csv"
    lines = eurusd.read_text().splitlines()
    rows = [lines[0]]
    for line in lines[1:]:
        date, time, o, h, lo, c, volume = line.split(",")
        inv = [f"{1.45 / float(x):.5f}" for x in (o, lo, h, c)]  # open, high, low, close
        rows.append(",".join([date, time, *inv, volume]))
    out.write_text("\n".join(rows) + "\n")
    return out


def test_04_history_replayed_like_an_ea_and_the_hpa_reads_real_cpu(
    platform: Platform, eurusd_h1_csv: Path, tmp_path: Path
) -> None:
    # The real EURUSD H1 history (and a GBPUSD derived from it), through the API's Service with
    # `mt5db replay` (what an operator does to backfill), so that the TrainingRun has its data.
    import subprocess
    import sys

    ip, port = platform.service_url("trading-api")
    for history in (eurusd_h1_csv, _gbpusd_from(eurusd_h1_csv, tmp_path)):
        done = subprocess.run(
            [sys.executable, "-m", "mt5db_core.cli", "replay", str(history), "--url", f"http://{ip}:{port}",
             "--api-key", platform.state["api_key"], "--quiet", "--concurrency", "2"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    counts = platform.sql(
        f"SELECT string_agg(symbol || '=' || n, ',' ORDER BY symbol) FROM (SELECT symbol, count(*) AS n "
        f"FROM {MARKET_DATA} WHERE symbol IN ('EURUSD', 'GBPUSD') AND timeframe = 'H1' GROUP BY symbol) s"
    )
    rows = dict(item.split("=") for item in counts.split(","))
    assert set(rows) == {"EURUSD", "GBPUSD"} and rows["EURUSD"] == rows["GBPUSD"]
    assert int(rows["EURUSD"]) > 19000

    # metrics-server scrapes the kubelet; the HPA controller reads the pods' CPU through it.
    def hpa_cpu() -> int | None:
        current = platform.status("hpa", f"{STACK}-api").get("currentMetrics") or []
        for metric in current:
            value = ((metric.get("resource") or {}).get("current") or {}).get("averageUtilization")
            if metric.get("type") == "Resource" and value is not None:
                return int(value) + 1  # 0 % is a real reading too: keep it truthy
        return None

    utilisation = wait_for(hpa_cpu, 120, "the HPA's CPU reading", every=2) - 1
    assert utilisation >= 0
    usage = json.loads(
        platform.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods")
    )
    api_pods = [p for p in usage["items"] if p["metadata"]["name"].startswith(f"{STACK}-api-")]
    assert api_pods and all(c["usage"]["cpu"] for p in api_pods for c in p["containers"])
    print(f"HPA {STACK}-api: cpu {utilisation}% of requests; replayed H1 bars {rows}")


# -- 4. a TrainingRun as a Job pod of the training image ---------------------------------------------


def test_05_trainingrun_example_trains_in_a_pod_and_reports_its_model(platform: Platform) -> None:
    run = example(
        "trainingrun.yaml",
        **{
            "spec.image": platform.cluster.images["training"],  # RandomForest-only build (no torch)
            # The example asks for 2 CPUs / 4Gi; this node has two CPUs in all, most of them
            # already requested by the stack: its three years of data on what is left, with 30
            # trees instead of 300 (a shorter year leaves the walk-forward folds no fit rows).
            "spec.model.params": {"n_estimators": 30, "max_depth": 8},
            "spec.resources.cpu": "700m",
            "spec.resources.memory": "2Gi",
        },
    )
    name = run["metadata"]["name"]
    platform.apply(run)
    job = wait_for(lambda: platform.get("job", name), 60, "the training Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == platform.cluster.images["training"]

    def finished() -> dict | None:
        status = platform.status("trainingrun", name)
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = wait_for(finished, 600, f"TrainingRun {name} finished", every=3)
    assert status["phase"] == "Succeeded", (status, platform.kubectl("-n", NAMESPACE, "logs", f"job/{name}",
                                                                       "--tail=30", check=False))  # fmt: skip
    assert status["backend"] == "job"
    assert status["modelVersion"] and status["metrics"] and status["metric"]
    pods = platform.items("pods", f"job-name={name}")
    assert any(p["status"]["phase"] == "Succeeded" for p in pods)
    # One run, one version per symbol of the example.
    symbols = platform.sql(f"SELECT string_agg(DISTINCT symbol, ',' ORDER BY symbol) FROM {MODEL_VERSIONS}")
    assert symbols == "EURUSD,GBPUSD"
    print(f"TrainingRun {name}: {status['modelVersion']} {status['metric']} in {status.get('duration')}")


# -- 4b. a signal reaches the executor EA through the Service, once, and is acknowledged -----------


def test_06_a_signal_is_polled_once_and_acknowledged_through_the_service(platform: Platform) -> None:
    # A desk's admin key, made in an API pod as a platform team would (`mt5db keys create`); the
    # replayed history is last year's, so the model's own signals are shadow (too old to trade):
    # the desk posts a manual one, targeted at one account.
    admin_key = platform.kubectl("-n", NAMESPACE, "exec", f"deploy/{STACK}-api", "--", "mt5db", "keys",
                                 "create", "--name", "e2e-desk", "--scopes", "admin").strip()  # fmt: skip
    account = "e2e-account-1"
    body = {"symbol": "EURUSD", "timeframe": "H1", "side": "BUY", "confidence": 0.7, "ttl_sec": 300,
            "sl_pips": 15, "tp_pips": 30, "account_id": account}  # fmt: skip
    code, answer = platform.via_service(
        "POST", "/signals", json.dumps(body).encode(), {"X-API-Key": admin_key}
    )
    assert code == 201, answer[:300]
    signal_id = json.loads(answer)["id"]

    ea = {"X-API-Key": platform.state["api_key"]}  # the EA's key: ingest, read, signals
    poll = f"/signals/next?account_id={account}&symbols=EURUSD,GBPUSD&timeframe=H1"
    code, answer = platform.via_service("GET", poll, headers=ea)
    assert code == 200, answer[:300]
    (signal,) = json.loads(answer)["signals"]
    assert (signal["id"], signal["side"], signal["symbol"]) == (signal_id, "BUY", "EURUSD")
    code, answer = platform.via_ingress(INGRESS_HOST, "GET", poll, headers=ea)
    assert code == 200 and json.loads(answer)["signals"] == [], "a signal is delivered once"

    ack = {"id": signal_id, "status": "FILLED", "symbol": "EURUSD", "side": "BUY", "mt5_ticket": 5001,
           "price": 1.0843, "ts_exec": "2025-03-12T14:00:05Z", "account_id": account}  # fmt: skip
    for _ in range(2):  # a repeated ack (the EA retries on a timeout) changes nothing
        code, answer = platform.via_service("POST", "/signals/ack", json.dumps(ack).encode(), ea)
        assert code == 200 and json.loads(answer)["ok"] is True, answer[:300]
    assert platform.sql(f"SELECT state FROM signals WHERE id = '{signal_id}'") == "ACKED"
    assert platform.sql(f"SELECT count(*) FROM signal_deliveries WHERE signal_id = '{signal_id}'") == "1"
    assert platform.sql(f"SELECT count(*) FROM signal_acks WHERE signal_id = '{signal_id}'") == "1"


# -- 5. a BackupPolicy: pg_dump in a pod into its claim, verified -----------------------------------


def test_07_backuppolicy_dumps_into_its_claim_and_verifies_by_restoring(platform: Platform) -> None:
    policy = example(
        "backuppolicy.yaml",
        # The example runs nightly at 03:00; here every minute, so a run happens during the test.
        **{"spec.schedule": "* * * * *", "spec.image": platform.cluster.images["api"]},
    )
    name = policy["metadata"]["name"]
    platform.apply(policy)

    def backed_up() -> dict | None:
        status = platform.status("backuppolicy", name)
        return status if status.get("lastBackup") and status.get("kept") else None

    status = wait_for(
        backed_up, 240, f"BackupPolicy {name}: a backup whose result the operator read", every=3
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["LastBackupSucceeded"]["status"] == "True"
    assert conditions["BackupVerified"]["status"] == "True", conditions["BackupVerified"]
    assert status["lastBackup"]["verified"] is True
    platform.kubectl(
        "patch", "backuppolicy", name, "-n", NAMESPACE, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )

    # Let a run that may have started meanwhile finish, and the status catch up with the newest.
    def settled() -> dict | None:
        jobs = sorted(platform.items("jobs", f"mt5db.io/backup-policy={name}"),
                      key=lambda j: j["status"].get("startTime") or "")  # fmt: skip
        if not jobs or any(not (j["status"].get("succeeded") or j["status"].get("failed")) for j in jobs):
            return None
        st = platform.status("backuppolicy", name)
        return st if st.get("lastRun") == f"{jobs[-1]['metadata']['name']}:Succeeded" else None

    status = wait_for(settled, 180, "the newest backup run finished and reported", every=3)

    # The dumps that really exist, read off the claim's volume on the host, are the ones reported.
    claim = platform.get("pvc", f"{name}-backups")
    assert claim is not None and claim["status"]["phase"] == "Bound"
    folder = platform.cluster.volume_path(claim["spec"]["volumeName"])
    on_disk = sorted(p.name for p in folder.glob(f"{name}-*.dump"))
    assert on_disk and sorted(status["keptDumps"]) == on_disk, (status["keptDumps"], on_disk)
    assert status["kept"] == len(on_disk) <= 7
    newest = json.loads((folder / status["lastBackup"]["file"]).with_suffix(".json").read_text())
    assert newest["sha256"] == status["lastBackup"]["sha256"] and newest["verified"] is True
    print(f"BackupPolicy {name}: {status['kept']} dumps kept, newest {status['lastBackup']['file']} "
          f"({status['lastBackup']['sizeBytes']} bytes, verified by a restore)")  # fmt: skip


# -- 6. drift ----------------------------------------------------------------------------------------


def test_08_a_deleted_api_deployment_is_recreated(platform: Platform) -> None:
    before = _uid(platform.get("deployment", f"{STACK}-api"))
    platform.kubectl("-n", NAMESPACE, "delete", "deployment", f"{STACK}-api", "--wait=true")
    after = wait_for(lambda: platform.get("deployment", f"{STACK}-api"), 60, "the API Deployment back")
    assert _uid(after) != before
    platform.kubectl(
        "-n", NAMESPACE, "rollout", "status", f"deployment/{STACK}-api", "--timeout=180s", timeout=200
    )
    platform.kubectl(
        "-n", NAMESPACE, "wait", "--for=condition=Ready", f"tradingstack/{STACK}", "--timeout=120s"
    )


def test_09_operator_killed_mid_reconcile_converges_without_duplicates(platform: Platform) -> None:
    drift = {
        "apiVersion": "mt5db.io/v1alpha1",
        "kind": "TradingStack",
        "metadata": {"name": "drift", "namespace": NAMESPACE},
        "spec": {
            "pvcRetention": "Delete",
            "database": {"image": platform.cluster.images["postgres"], "storage": {"size": "1Gi"},
                         "timescale": {"enabled": False},
                         "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}},
            "api": {"image": platform.cluster.images["api"], "minReplicas": 1, "maxReplicas": 1,
                    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "384Mi"}}},
            "monitoring": {"enabled": False},
        },
    }  # fmt: skip
    platform.apply(drift)
    secret = wait_for(
        lambda: platform.get("secret", "drift-db-credentials"), 60, "the first child", every=0.1
    )
    # Mid-reconcile: the first child exists, the rest of the pass is still to come.
    platform.kubectl("-n", OPERATOR_NAMESPACE, "delete", "pod", "-l", "app.kubernetes.io/name=mt5db-operator",
                     "--grace-period=0", "--force", "--wait=false")  # fmt: skip
    platform.kubectl(
        "-n", OPERATOR_NAMESPACE, "rollout", "status", "deployment/mt5db-mt5db-operator", "--timeout=180s"
    )
    platform.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "tradingstack/drift", "--timeout=300s",
                     timeout=320)  # fmt: skip
    assert _uid(platform.get("secret", "drift-db-credentials")) == _uid(secret), "credentials generated twice"
    owned = {kind: [o["metadata"]["name"] for o in platform.items(kind, "app.kubernetes.io/instance=drift")]
             for kind in ("secrets", "statefulsets", "deployments", "jobs", "services", "hpa")}  # fmt: skip
    assert sorted(owned["secrets"]) == ["drift-api-key", "drift-api-key-hash", "drift-db-credentials"], owned
    assert owned["statefulsets"] == ["drift-db"] and owned["deployments"] == ["drift-api"], owned
    assert len([j for j in owned["jobs"] if j.startswith("drift-migrate-")]) == 1, owned
    assert sorted(owned["services"]) == ["drift-api", "drift-db"] and owned["hpa"] == ["drift-api"], owned
    # The one key that was generated is the one the API accepts.
    key = platform.secret_value("drift-api-key", "api-key")
    body = (EA_BODIES / "a_rebuild_bare_candle.json").read_bytes()
    code, answer = platform.via_service("POST", "/ingest", body, {"X-API-Key": key}, service="drift-api")
    assert code == 200, answer[:300]


# -- 7. delete ----------------------------------------------------------------------------------------


def test_10_deleting_stacks_collects_children_and_honours_pvc_retention(platform: Platform) -> None:
    data_claim = platform.get("pvc", f"data-{STACK}-db-0")
    assert data_claim is not None
    volume = platform.cluster.volume_path(data_claim["spec"]["volumeName"])
    platform.kubectl("-n", NAMESPACE, "delete", "tradingstack", STACK, "drift", "--wait=true", timeout=180)

    # The BackupPolicy is the platform team's own resource (a stackRef, not a child): its CronJob's
    # runs stay. Everything the stacks own must go.
    def stack_owned(o: dict) -> bool:
        labels = o["metadata"].get("labels") or {}
        return (
            o["metadata"]["name"].startswith((f"{STACK}-", "drift-"))
            and "mt5db.io/backup-policy" not in labels
        )

    remaining: list[str] = []

    def collected() -> bool:
        remaining[:] = [f"{kind}/{o['metadata']['name']}"
                        for kind in ("statefulsets", "deployments", "services", "hpa", "pdb", "ingresses",
                                     "networkpolicies", "jobs", "secrets", "pods")
                        for o in platform.items(kind) if stack_owned(o)]  # fmt: skip
        return not remaining

    wait_for(collected, 180, "children garbage-collected", every=2)
    assert not remaining, remaining
    # pvcRetention: Retain (the example) keeps the claim and its data; Delete (drift) removes it.
    kept = platform.get("pvc", f"data-{STACK}-db-0")
    assert kept is not None and _uid(kept) == _uid(data_claim)
    assert (volume / "data" / "PG_VERSION").exists()
    wait_for(lambda: platform.get("pvc", "data-drift-db-0") is None, 120, "the drift stack's claim deleted")


def test_11_nothing_of_the_run_listens_on_a_host_address(platform: Platform) -> None:
    """Every daemon and pod lives in the node's namespaces: the host's own listening sockets on
    non-loopback addresses belong to none of this run's processes."""
    inside = {line.split()[0] for line in platform.cluster.sandbox.processes_inside()}
    assert inside, "the node's processes are found by namespace"
    listeners = _host_listeners()
    for inode, address in listeners.items():
        owners = _socket_owners(inode)
        assert not owners & inside, f"{address} is held by a process of the node: {owners & inside}"
    # And from the host, the node is reached only at its own address.
    node_ip = platform.cluster.node_ip
    with socket.create_connection((node_ip, 6443), timeout=5):
        pass


def _host_listeners() -> dict[str, str]:
    out = {}
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            address = local.split(":")[0]
            if state == "0A" and address not in ("0100007F", "00000000000000000000000001000000"):
                out[inode] = local
    return out


def _socket_owners(inode: str) -> set[str]:
    owners = set()
    target = f"socket:[{inode}]"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if fd.readlink().name == target or str(fd.readlink()) == target:
                    owners.add(proc.name)
                    break
        except OSError:
            continue
    return owners
