"""Operator benchmark on a real kube-apiserver + etcd + kube-controller-manager.

Prints: time from applying a TradingStack to all its children existing (p50/p95 over 20
stacks applied one after another), the time for 100 TradingStacks applied at once to converge
(every child created and a first status written with observedGeneration), optionally the time
until all 100 are Ready after the benchmark plays kubelet for their pods, and the operator's
RSS. The operator runs as a separate `mt5db operator` process so its RSS is its own.

    .venv/bin/python bench/operator_convergence.py [--stacks 100] [--latency-stacks 20] [--ready]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config

from mt5db_core.net import free_port
from mt5db_harness import tools
from mt5db_harness.control_plane import ControlPlane
from mt5db_operator.kubeapi import Kube

REPO = Path(__file__).resolve().parents[1]
GV = "mt5db.io/v1alpha1"
CHILDREN = [
    ("v1", "Secret", "{n}-db-credentials"), ("v1", "Secret", "{n}-api-key"), ("v1", "Secret", "{n}-api-key-hash"),
    ("v1", "Service", "{n}-db"), ("apps/v1", "StatefulSet", "{n}-db"), ("networking.k8s.io/v1", "NetworkPolicy", "{n}-db"),
    ("v1", "Service", "{n}-api"), ("apps/v1", "Deployment", "{n}-api"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "{n}-api"), ("policy/v1", "PodDisruptionBudget", "{n}-api"),
    ("v1", "ConfigMap", "{n}-dashboards"),
]  # fmt: skip


def stack(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": GV, "kind": "TradingStack", "metadata": {"name": name, "namespace": namespace},
            "spec": {"api": {"minReplicas": 1, "maxReplicas": 2}}}  # fmt: skip


def children_present(kube: Kube, ns: str, name: str) -> bool:
    return all(kube.get(av, kind, ns, pattern.format(n=name)) for av, kind, pattern in CHILDREN)


def rss_kib(pid: int) -> tuple[int, int]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def make_namespace(kube: Kube, name: str) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    deadline = time.monotonic() + 30
    while kube.get("v1", "ServiceAccount", name, "default") is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no default ServiceAccount")
        time.sleep(0.1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def mark_ready(kube: Kube, ns: str) -> int:
    """Play kubelet for every pod in `ns`: Jobs' pods succeed, the others become Ready."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    count = 0
    for pod in kube.list("v1", "Pod", ns):
        comp = pod["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        path = f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/status"
        if comp == "migrate":
            status = {"phase": "Succeeded", "startTime": stamp}
        else:
            status = {"phase": "Running", "startTime": stamp, "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": stamp}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]}  # fmt: skip
        kube.call("PATCH", path, body={"status": status}, content_type="application/merge-patch+json")
        count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stacks", type=int, default=100)
    parser.add_argument("--latency-stacks", type=int, default=20)
    parser.add_argument("--ready", action="store_true", help="also time convergence to Ready (plays kubelet)")
    args = parser.parse_args()

    plane = ControlPlane(tools.ensure_kube_binaries())
    plane.start()
    log = plane.base / "operator.log"
    proc = None
    try:
        kube = Kube(config.new_client_from_config(config_file=str(plane.kubeconfig)))
        for path in sorted((REPO / "crds").glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            kube.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=crd)
        time.sleep(2)  # CRDs become Established within about a second
        live = free_port()
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mt5db"), "operator", "--namespace", "bench-*",
             "--kubeconfig", str(plane.kubeconfig), "--metrics-port", str(free_port()),
             "--liveness", f"http://127.0.0.1:{live}/healthz", "--log-level", "WARNING"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{live}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(log.read_text()[-3000:]) from None
                time.sleep(0.2)
        rss_idle = rss_kib(proc.pid)[0]

        # 1. Latency: one stack at a time, apply -> all children exist.
        make_namespace(kube, "bench-latency")
        latencies = []
        for i in range(args.latency_stacks):
            name = f"lat{i:02d}"
            started = time.perf_counter()
            kube.create(stack(name, "bench-latency"))
            while not children_present(kube, "bench-latency", name):
                time.sleep(0.01)
            latencies.append(time.perf_counter() - started)

        # 2. Throughput: N stacks at once -> every child present and a first status written.
        make_namespace(kube, "bench-scale")
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: kube.create(stack(f"s{i:03d}", "bench-scale")), range(args.stacks)))
        created = time.perf_counter() - started

        def converged() -> int:
            done = 0
            for body in kube.list(GV, "TradingStack", "bench-scale"):
                status = body.get("status") or {}
                if status.get("observedGeneration") == body["metadata"]["generation"] and status.get("api"):
                    done += 1
            return done

        while converged() < args.stacks:
            time.sleep(0.25)
        status_done = time.perf_counter() - started
        missing = [i for i in range(args.stacks) if not children_present(kube, "bench-scale", f"s{i:03d}")]
        converge = time.perf_counter() - started
        ready_s = None
        if args.ready:
            mark_started = time.perf_counter()
            while True:
                # Pods appear as KCM creates them; keep marking until every stack is Ready.
                mark_ready(kube, "bench-scale")
                ready = sum(1 for b in kube.list(GV, "TradingStack", "bench-scale")
                            if (b.get("status") or {}).get("phase") == "Ready")  # fmt: skip
                if ready == args.stacks:
                    break
                time.sleep(1)
            ready_s = time.perf_counter() - mark_started
        rss_now, rss_peak = rss_kib(proc.pid)

        print(f"kube-apiserver/etcd/KCM: {plane.versions()}")
        print(f"apply -> all {len(CHILDREN)} children, {len(latencies)} stacks one by one: "
              f"p50 {statistics.median(latencies):.3f}s  p95 {pct(latencies, 0.95):.3f}s  max {max(latencies):.3f}s")  # fmt: skip
        print(f"{args.stacks} stacks at once: created in {created:.1f}s, first status on all {status_done:.1f}s, "
              f"all children verified {converge:.1f}s (missing: {len(missing)})")  # fmt: skip
        if ready_s is not None:
            print(f"{args.stacks} stacks: all Ready {ready_s:.1f}s after the benchmark began marking pods")
        print(
            f"operator RSS: idle {rss_idle / 1024:.0f} MiB, now {rss_now / 1024:.0f} MiB, peak {rss_peak / 1024:.0f} MiB"
        )
        return 0 if not missing else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        plane.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
