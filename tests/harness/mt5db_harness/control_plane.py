"""A real Kubernetes control plane on loopback: etcd + kube-apiserver + kube-controller-manager.

envtest-style: real OpenAPI/CEL validation, status subresources, server-side apply, watches
and RBAC from the apiserver; garbage collection, Deployments -> ReplicaSets, Jobs and CronJobs
from the controller manager. No kubelet: pods never run (tests mark children ready themselves).
Identity is a static token file with one generated admin token (plus any extra users a test
asks for, e.g. the operator's own least-privilege identity).
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from mt5db_core.net import free_port, wait_for_http, wait_for_port
from mt5db_harness.tools import KubeBinaries


@dataclass(frozen=True)
class KubeUser:
    name: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass
class ControlPlane:
    binaries: KubeBinaries
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mt5db-kube-")))
    extra_users: tuple[KubeUser, ...] = ()
    with_controller_manager: bool = True

    def __post_init__(self) -> None:
        self.admin = KubeUser("mt5db-admin", secrets.token_hex(24), ("system:masters",))
        # An authenticated identity with no bindings: proves RBAC is enforced.
        self.nobody = KubeUser("mt5db-nobody", secrets.token_hex(24))
        self.api_port = free_port()
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.kcm_port = free_port()
        self._procs: list[subprocess.Popen[bytes]] = []
        # The controller manager is supervised as a kubelet supervises its static pod: it exits
        # by design when the apiserver is unhealthy for a moment (a slow etcd under load), and
        # every controller test would fail after that. Each restart is counted and logged.
        self.kcm_restarts = 0
        self.kcm: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        # etcd on tmpfs when there is one: fsyncs dominate apiserver latency otherwise.
        shm = Path("/dev/shm")
        self.etcd_dir = Path(tempfile.mkdtemp(prefix="mt5db-etcd-", dir=shm if shm.is_dir() else None))

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def ca_file(self) -> Path:
        return self.base / "certs" / "apiserver.crt"

    @property
    def kubeconfig(self) -> Path:
        return self.base / "kubeconfig"

    def kubeconfig_for(self, user: KubeUser) -> Path:
        """A kubeconfig file that authenticates as `user` (bearer token) and verifies the server
        against the CA the apiserver generated for itself (its cert file carries the chain)."""
        path = self.base / f"kubeconfig-{user.name}"
        ca = base64.b64encode(self.ca_file.read_bytes()).decode()
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: local\n  cluster:\n    server: {self.server}\n"
            f"    certificate-authority-data: {ca}\n"
            f"users:\n- name: {user.name}\n  user:\n    token: {user.token}\n"
            f"contexts:\n- name: local\n  context:\n    cluster: local\n    user: {user.name}\n"
            "current-context: local\n"
        )
        path.chmod(0o600)
        return path

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self._write_identity()
        self._start_etcd(timeout)
        self._start_apiserver(timeout)
        self.kubeconfig_for(self.admin).rename(self.kubeconfig)
        if self.with_controller_manager:
            self._start_controller_manager(timeout)

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        shutil.rmtree(self.etcd_dir, ignore_errors=True)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def versions(self) -> dict[str, str]:
        def first_line(argv: list[str]) -> str:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            return (done.stdout or done.stderr).strip().splitlines()[0]

        return {
            "kube-apiserver": first_line([str(self.binaries.apiserver), "--version"]),
            "etcd": first_line([str(self.binaries.etcd), "--version"]),
        }

    # -- pieces ------------------------------------------------------------------------------

    def _write_identity(self) -> None:
        key = self.base / "sa.key"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(self.base / "sa.pub")],
            check=True,
            capture_output=True,
        )
        rows = []
        for user in (self.admin, self.nobody, *self.extra_users):
            groups = ",".join(user.groups)
            rows.append(f'{user.token},{user.name},{user.name},"{groups}"' if groups else
                        f"{user.token},{user.name},{user.name}")  # fmt: skip
        tokens = self.base / "tokens.csv"
        tokens.write_text("\n".join(rows) + "\n")
        tokens.chmod(0o600)

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.base / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self._procs.append(proc)
        return proc

    def _start_etcd(self, timeout: float) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                "--name=mt5db-test",
                f"--data-dir={self.etcd_dir}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=mt5db-test={peer}",
                "--unsafe-no-fsync",  # throwaway test data on tmpfs
                "--log-level=warn",
            ],
        )
        wait_for_http(f"{client}/health", timeout)

    def _start_apiserver(self, timeout: float) -> None:
        self._spawn(
            "kube-apiserver",
            [
                str(self.binaries.apiserver),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.base / 'certs'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={self.base / 'sa.pub'}",
                f"--service-account-signing-key-file={self.base / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                f"--token-auth-file={self.base / 'tokens.csv'}",
                "--allow-privileged=true",
                "--v=0",
            ],
        )
        wait_for_port("127.0.0.1", self.api_port, timeout)
        wait_for_http(
            f"{self.server}/readyz",
            timeout,
            headers={"Authorization": f"Bearer {self.admin.token}"},
            cafile=self.ca_file,
        )

    def _start_controller_manager(self, timeout: float) -> None:
        argv = [
            str(self.binaries.controller_manager),
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--controllers=*",
            f"--service-account-private-key-file={self.base / 'sa.key'}",
            f"--root-ca-file={self.ca_file}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.kcm_port}",
            "--concurrent-gc-syncs=5",
            "--v=0",
        ]
        self.kcm = self._spawn("kube-controller-manager", argv)
        wait_for_port("127.0.0.1", self.kcm_port, timeout)
        self._supervisor = threading.Thread(
            target=self._supervise, args=(argv,), name="kcm-supervisor", daemon=True
        )
        self._supervisor.start()

    def _supervise(self, argv: list[str]) -> None:
        while not self._stopping.wait(0.5):
            assert self.kcm is not None
            code = self.kcm.poll()
            if code is None:
                continue
            with (self.base / "kube-controller-manager.log").open("a") as log:
                log.write(f"\n--- exited with {code}; restarted by the test harness ---\n")
            self._procs.remove(self.kcm)
            self.kcm = self._spawn("kube-controller-manager", argv)
            self.kcm_restarts += 1

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.base / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""
