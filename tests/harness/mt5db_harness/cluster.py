"""A one-node Kubernetes cluster whose pods really run, inside the run's own namespaces.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd (runc, CNI bridge),
the kubelet and kube-proxy all run inside one `Sandbox` (node.py): the API server listens on the
node's address, pods reach it through the `kubernetes` Service (kube-proxy DNAT), the host reaches
it and the NodePorts over the veth. Cluster add-ons run as pods from scratch images of binaries
built from their Go modules: CoreDNS, metrics-server, Traefik; storage is a default StorageClass
with pre-made hostPath volumes under the run's folder. See docs/e2e.md.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mt5db_core.net import wait_for_http
from mt5db_harness import images as image_tools
from mt5db_harness.node import POD_CIDR, POD_SUBNET, Sandbox
from mt5db_harness.tools import AddonBinaries, KubeBinaries, NodeBinaries, ToolMissing, repo_root

NODE_NAME = "mt5db-node"
API_PORT = 6443
STORAGE_CLASS = "local-hostpath"
HTTP_NODE_PORT = 30080
HTTPS_NODE_PORT = 30443
# Pre-made volumes: claims bind to the smallest free one that fits (capacities are nominal).
VOLUMES = (("10Gi", 4), ("100Gi", 6))


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass
class NodeCluster:
    kube: KubeBinaries
    node: NodeBinaries
    addons: AddonBinaries
    kubectl_binary: Path
    sandbox: Sandbox = field(default_factory=Sandbox)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = self._missing()
        if missing:
            shutil.rmtree(self.sandbox.base, ignore_errors=True)
            raise ToolMissing(missing)
        self.base = self.sandbox.base
        self._tokens: dict[str, str] = {}
        self.images: dict[str, str] = {}

    @staticmethod
    def _missing() -> str | None:
        if os.geteuid() != 0:
            return "the node's namespaces, mounts and containers need root"
        for tool in ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "openssl"):
            if not shutil.which(tool):
                return f"{tool} not found (Debian packages containerd, runc, openssl)"
        if not Path("/usr/lib/cni/bridge").exists():
            return "CNI plugins not found in /usr/lib/cni (Debian package containernetworking-plugins)"
        return None

    # -- addresses and credentials -------------------------------------------------------------

    @property
    def node_ip(self) -> str:
        return self.sandbox.network.node_ip

    @property
    def server(self) -> str:
        return f"https://{self.node_ip}:{API_PORT}"

    @property
    def ca_file(self) -> Path:
        return self.base / "apiserver" / "apiserver.crt"

    @property
    def kubeconfig(self) -> Path:
        return self.base / "kubeconfig-admin"

    @property
    def containerd_socket(self) -> Path:
        return self.base / "containerd" / "containerd.sock"

    def _token(self, who: Identity) -> str:
        import secrets

        if who.user not in self._tokens:
            self._tokens[who.user] = secrets.token_hex(24)
        return self._tokens[who.user]

    def _kubeconfig(self, name: str, who: Identity) -> Path:
        path = self.base / f"kubeconfig-{name}"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "e2e",
                            "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                        }
                    ],
                    "users": [{"name": who.user, "user": {"token": self._token(who)}}],
                    "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": who.user}}],
                    "current-context": "e2e",
                },
                indent=1,
            )
        )
        path.chmod(0o600)
        return path

    def _pki(self) -> None:
        pki = self.base / "pki"
        pki.mkdir()
        _openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
        _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
                 "-days", "3", "-subj", "/CN=mt5db-e2e-ca")  # fmt: skip
        # The API server's client certificates: to the kubelet (logs, exec, port-forward) and, as
        # the aggregation layer's front proxy, to metrics-server.
        for name, subject in (("kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client"),
                              ("front-proxy-client", "/CN=front-proxy-client")):  # fmt: skip
            _openssl("req", *ec, "-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.csr"),
                     "-subj", subject)  # fmt: skip
            ext = pki / f"{name}.ext"
            ext.write_text("extendedKeyUsage=clientAuth\n")
            _openssl("x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / "ca.crt"),
                     "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "3",
                     "-extfile", str(ext), "-out", str(pki / f"{name}.crt"))  # fmt: skip
        for key in pki.glob("*.key"):
            key.chmod(0o600)

    # -- lifecycle ---------------------------------------------------------------------------

    def _time(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)

    def start(self, archives: list[Path], timeout: float = 180.0) -> None:
        """Namespaces, control plane, containerd with `archives` imported, kubelet, kube-proxy,
        then the add-ons; returns when the node is Ready and every add-on is available."""
        started = time.monotonic()
        self.sandbox.start()
        self._pki()
        self._start_control_plane(timeout)
        self._time("control plane", started)
        t = time.monotonic()
        self._start_containerd(timeout)
        self._import(archives)
        self._time("image import", t)
        t = time.monotonic()
        self._start_kubelet_and_proxy()
        self.wait_node_ready(timeout)
        self._time("node ready", t)
        t = time.monotonic()
        self._install_addons(timeout)
        self._time("add-ons ready", t)
        self._time("cluster total", started)

    def destroy(self) -> list[str]:
        """Stop everything and return what was left behind (empty when the host is as before)."""
        self.sandbox.destroy()
        return self.sandbox.leftovers()

    def _ensure_alive(self) -> None:
        dead = self.sandbox.dead_daemons()
        if dead:
            name = dead[0].split()[0]
            raise RuntimeError(f"node daemon exited: {', '.join(dead)}\n{self.sandbox.log_tail(name)}")

    # -- control plane -------------------------------------------------------------------------

    def _start_control_plane(self, timeout: float) -> None:
        sb, net, pki = self.sandbox, self.sandbox.network, self.base / "pki"
        admin = Identity("mt5db-admin", ("system:masters",))
        identities = {
            "admin": admin,
            "kcm": Identity("system:kube-controller-manager"),
            "scheduler": Identity("system:kube-scheduler"),
            "kubelet": Identity(f"system:node:{NODE_NAME}", ("system:nodes",)),
            "proxy": Identity("system:kube-proxy"),
        }
        rows = []
        for who in identities.values():
            groups = ",".join(who.groups)
            rows.append(f"{self._token(who)},{who.user},{who.user}" + (f',"{groups}"' if groups else ""))
        tokens = self.base / "tokens.csv"
        tokens.write_text("\n".join(rows) + "\n")
        tokens.chmod(0o600)
        etcd_dir = self.base / "etcd"
        sb.spawn("etcd", [str(self.kube.etcd), "--name=e2e", f"--data-dir={etcd_dir}",
                          "--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
                          "--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                          "--initial-cluster=e2e=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn"])  # fmt: skip
        self._wait_inside("http://127.0.0.1:2379/health", timeout, "etcd")
        sb.spawn("kube-apiserver", [
            str(self.kube.apiserver),
            "--etcd-servers=http://127.0.0.1:2379",
            f"--bind-address={net.node_ip}",
            f"--advertise-address={net.node_ip}",
            f"--secure-port={API_PORT}",
            f"--cert-dir={self.base / 'apiserver'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={net.service_cidr}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--token-auth-file={tokens}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--kubelet-client-certificate={pki / 'kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",  # the node's name resolves nowhere
            f"--requestheader-client-ca-file={pki / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--allow-privileged=false",
            "--v=0",
        ])  # fmt: skip
        wait_for_http(f"{self.server}/readyz", timeout, headers={"Authorization": f"Bearer {self._token(admin)}"},
                      cafile=self.ca_file)  # fmt: skip
        self._kubeconfig("admin", admin)
        kcm = self._kubeconfig("kcm", identities["kcm"])
        sb.spawn("kube-controller-manager", [
            str(self.kube.controller_manager),
            f"--kubeconfig={kcm}", f"--authentication-kubeconfig={kcm}", f"--authorization-kubeconfig={kcm}",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--controllers=*",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={self.ca_file}",
            f"--service-cluster-ip-range={net.service_cidr}",
            "--bind-address=127.0.0.1",
            "--secure-port=10257",
            f"--flex-volume-plugin-dir={self.base / 'flexvolume'}",
            # A test cluster: read CPU soon after pods start, rather than after minutes.
            "--horizontal-pod-autoscaler-sync-period=5s",
            "--horizontal-pod-autoscaler-cpu-initialization-period=15s",
            "--horizontal-pod-autoscaler-initial-readiness-delay=5s",
            "--v=0",
        ])  # fmt: skip
        scheduler = self._kubeconfig("scheduler", identities["scheduler"])
        sb.spawn("kube-scheduler", [
            str(self.node.scheduler), f"--kubeconfig={scheduler}", f"--authentication-kubeconfig={scheduler}",
            f"--authorization-kubeconfig={scheduler}", "--leader-elect=false", "--bind-address=127.0.0.1",
            "--secure-port=10259", "--v=0",
        ])  # fmt: skip
        self._kubelet_kubeconfig = self._kubeconfig("kubelet", identities["kubelet"])
        self._proxy_kubeconfig = self._kubeconfig("proxy", identities["proxy"])

    def _wait_inside(self, url: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        probe = ["python3", "-c", f"import urllib.request; urllib.request.urlopen({url!r}, timeout=2)"]
        while time.monotonic() < deadline:
            self._ensure_alive()
            if self.sandbox.exec(probe, check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not up after {timeout:.0f}s: {self.sandbox.log_tail(what)}")

    # -- containerd and images -----------------------------------------------------------------

    def _start_containerd(self, timeout: float) -> None:
        root = self.base / "containerd"
        cni = self.base / "cni"
        (cni / "net.d").mkdir(parents=True)
        (cni / "net.d" / "10-mt5db.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0",
            "name": "mt5db-e2e",
            "plugins": [
                {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(cni / "ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }, indent=1))  # fmt: skip
        pause = image_tools.scratch_image("pause", "v1", self.node.pause, ["/pause"], user="65535:65535")
        self.images["pause"] = pause
        config = root / "config.toml"
        root.mkdir(exist_ok=True)
        config.write_text(f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{root / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # Pod network namespaces under containerd's own state directory, not the host's /run/netns.
  netns_mounts_under_state_dir = true
  # No CAP_SYS_RESOURCE here: never ask for an oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni / "net.d"}"
""")
        self.sandbox.spawn("containerd", ["containerd", f"--config={config}", "--log-level=warn"])
        deadline = time.monotonic() + timeout
        while not self.containerd_socket.exists():
            self._ensure_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"containerd not up: {self.sandbox.log_tail('containerd')}")
            time.sleep(0.1)
        pause_archive, _ = image_tools.archive(pause)
        self._import([pause_archive])

    def _import(self, archives: list[Path]) -> None:
        for path in archives:
            done = subprocess.run(
                ["ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", "images", "import", str(path)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"importing {path.name} failed: {done.stderr.strip()}")

    # -- the node ------------------------------------------------------------------------------

    def _start_kubelet_and_proxy(self) -> None:
        sb, net, pki = self.sandbox, self.sandbox.network, self.base / "pki"
        kubelet_dir = self.base / "kubelet"
        kubelet_dir.mkdir()
        resolv = self.base / "resolv.conf"
        resolv.write_text("")  # no upstream resolver: the node has no way out
        config = kubelet_dir / "config.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,  # this machine kind is cgroup v1 (hybrid)
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.sandbox.cgroup_root,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "address": net.node_ip,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "clusterDNS": [net.dns_service_ip],
            "clusterDomain": "cluster.local",
            "resolvConf": str(resolv),
            "podLogsDir": str(self.base / "pod-logs"),
            "volumePluginDir": str(self.base / "volume-plugins"),
            "failSwapOn": False,
            # node_init.py shows the kubelet the kernel settings it wants (the host's stay as they are).
            "protectKernelDefaults": True,
            "serializeImagePulls": False,
            # Images are imported, never pulled: garbage-collecting one would lose it for the run.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%", "imagefs.available": "2%",
                             "nodefs.inodesFree": "2%"},
            "maxPods": 110,
        }, indent=1))  # fmt: skip
        sb.spawn("kubelet", [
            str(self.node.kubelet),
            f"--config={config}",
            f"--kubeconfig={self._kubelet_kubeconfig}",
            f"--root-dir={kubelet_dir / 'root'}",
            f"--cert-dir={kubelet_dir / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={net.node_ip}",
            "--v=0",
        ])  # fmt: skip
        proxy = self.base / "kube-proxy.yaml"
        proxy.write_text(json.dumps({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self._proxy_kubeconfig)},
            "mode": "iptables",
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": POD_CIDR,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            "nodePortAddresses": [f"{net.node_ip}/32"],
            # conntrack limits are host-wide settings: leave them alone.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }, indent=1))  # fmt: skip
        sb.spawn("kube-proxy", [str(self.node.proxy), f"--config={proxy}", "--v=0"])

    def wait_node_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._ensure_alive()
            done = self.kubectl("get", "node", NODE_NAME, "-o",
                                "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)  # fmt: skip
            if done.stdout.strip() == "True":
                return
            time.sleep(0.5)
        raise TimeoutError(f"node not Ready after {timeout:.0f}s: {self.sandbox.log_tail('kubelet')}")

    # -- add-ons -------------------------------------------------------------------------------

    def _install_addons(self, timeout: float) -> None:
        root = repo_root()
        if root is None:
            raise ToolMissing("the add-on manifests need a checkout (tests/cluster/addons/manifests)")
        manifests = root / "tests" / "cluster" / "addons" / "manifests"
        binaries = {
            "coredns": self.addons.coredns,
            "metrics-server": self.addons.metrics_server,
            "traefik": self.addons.traefik,
        }
        refs = {
            name: image_tools.scratch_image(name, "v1", binary, [f"/{binary.name}"])
            for name, binary in binaries.items()
        }
        self.images.update(refs)
        self._import([image_tools.archive(ref)[0] for ref in refs.values()])
        values = {
            "DNS_IP": self.sandbox.network.dns_service_ip,
            "CLASS": STORAGE_CLASS,
            "HTTP_NODE_PORT": str(HTTP_NODE_PORT),
            "HTTPS_NODE_PORT": str(HTTPS_NODE_PORT),
        }
        self.apply(string.Template((manifests / "storage.yaml").read_text()).substitute(values))
        self.apply(self._volumes())
        for name in refs:
            text = string.Template((manifests / f"{name}.yaml").read_text()).substitute(
                values, IMAGE=refs[name]
            )
            self.apply(text)
        for name in refs:
            self.kubectl("-n", "kube-system", "rollout", "status", f"deployment/{name}", f"--timeout={int(timeout)}s",
                         timeout=timeout + 10)  # fmt: skip
        # The aggregated metrics API answers once metrics-server has scraped the kubelet once.
        deadline = time.monotonic() + timeout
        while self.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError("the metrics API never answered")
            time.sleep(1)

    def _volumes(self) -> str:
        docs = []
        index = 0
        for size, count in VOLUMES:
            for _ in range(count):
                index += 1
                path = self.base / "volumes" / f"pv{index:02d}"
                path.mkdir(parents=True)
                # hostPath ignores fsGroup: any pod uid must be able to write its claim.
                path.chmod(0o777)
                docs.append(json.dumps({
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"local-pv{index:02d}", "labels": {"mt5db.io/e2e-volume": "true"}},
                    "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                             "persistentVolumeReclaimPolicy": "Retain", "storageClassName": STORAGE_CLASS,
                             "hostPath": {"path": str(path), "type": "Directory"}},
                }))  # fmt: skip
        return "\n---\n".join(docs)

    # -- clients -------------------------------------------------------------------------------

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None,
                timeout: float = 120.0) -> subprocess.CompletedProcess[str]:  # fmt: skip
        done = subprocess.run(
            [str(self.kubectl_binary), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", stdin=manifest)

    def volume_path(self, pv_name: str) -> Path:
        """Where a pre-made volume's data lies on the host."""
        done = self.kubectl("get", "pv", pv_name, "-o", "jsonpath={.spec.hostPath.path}")
        return Path(done.stdout.strip())
