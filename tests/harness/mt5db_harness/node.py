"""The e2e node's sandbox: one network, mount and PID namespace that the run creates, a veth /30
to the host, its own cgroup subtree, and a check that nothing of it is left afterwards.

Everything of the e2e cluster (etcd, the control plane, containerd, the kubelet, kube-proxy, and
through them every pod) runs inside these namespaces (docs/e2e.md):

* network: the node's only link is the inside end of a veth pair (`<inside>/30`); the host keeps
  the other end and one route to the cluster's Service range via the inside address. The
  namespace has no default route and the host keeps `ip_forward=0`, so nothing can leave the
  machine; nothing listens on a host address (the daemons bind inside).
* mount: one namespace that every daemon joins, so the mounts the kubelet makes (Secret and
  token volumes) are the ones runc sees; prepared by `node_init.py`.
* PID: its PID 1 is `node_init.py`; when it exits, the kernel kills every process left inside,
  containers included. Stopping the node is stopping PID 1.

`HostSnapshot` records what a run could change on the host (iptables, sysctls, links, routes,
mounts) before it starts; `Sandbox.leftovers()` compares after teardown and also looks for
processes still in the namespaces and cgroups still on the host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mt5db_harness import node_init

# 198.18.0.0/15 is reserved for benchmarking (RFC 2544): nothing real uses it. Run N takes the
# veth 198.18.N.0/30 and the Service range 198.19.N.0/24, so concurrent runs never collide.
VETH_NET = "198.18"
SERVICE_NET = "198.19"
POD_CIDR = "10.244.0.0/16"  # only inside the namespace: never routed on the host
POD_SUBNET = "10.244.0.0/24"

# Host sysctls the node's daemons are known to want, plus the families around them. Compared
# before/after a run; values that move by themselves are skipped.
_SYSCTL_TREES = ("net/ipv4", "net/ipv6/conf/all", "net/ipv6/conf/default", "net/bridge", "net/netfilter",
                 "vm", "kernel/panic", "kernel/panic_on_oops", "kernel/keys")  # fmt: skip
_VOLATILE = ("nf_conntrack_count", "stat_interval", "drop_caches", "compact_memory", "tcp_mem",
             "udp_mem", "neigh/", "conf/eth", "conf/mt5db", "conf/veth", "nr_", "dirty_", "stat_refresh",
             "watermark", "min_free", "percpu", "lowmem", "admin_reserve", "user_reserve")  # fmt: skip


@dataclass(frozen=True)
class NetworkPlan:
    index: int

    @property
    def host_link(self) -> str:
        return f"mt5db-h{self.index}"

    @property
    def node_link(self) -> str:
        return f"mt5db-n{self.index}"

    @property
    def host_ip(self) -> str:
        return f"{VETH_NET}.{self.index}.1"

    @property
    def node_ip(self) -> str:
        """The node's address: the API server, the kubelet and NodePorts are reached here."""
        return f"{VETH_NET}.{self.index}.2"

    @property
    def service_cidr(self) -> str:
        return f"{SERVICE_NET}.{self.index}.0/24"

    @property
    def kubernetes_service_ip(self) -> str:
        return f"{SERVICE_NET}.{self.index}.1"

    @property
    def dns_service_ip(self) -> str:
        return f"{SERVICE_NET}.{self.index}.10"


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@dataclass
class HostSnapshot:
    """What a run could change on the host, read before it starts."""

    iptables: dict[str, str]
    sysctls: dict[str, str]
    links: set[str]
    routes: str
    mounts: set[str]

    @classmethod
    def take(cls) -> HostSnapshot:
        return cls(_iptables(), _sysctls(), _links(), _routes(), _mount_points())

    def differences(self, other: HostSnapshot) -> list[str]:
        out = []
        for table in sorted(set(self.iptables) | set(other.iptables)):
            if self.iptables.get(table) != other.iptables.get(table):
                out.append(f"iptables {table} changed")
        for key in sorted(set(self.sysctls) | set(other.sysctls)):
            if self.sysctls.get(key) != other.sysctls.get(key):
                out.append(f"sysctl {key}: {self.sysctls.get(key)} -> {other.sysctls.get(key)}")
        out += [f"link {name} appeared" for name in sorted(other.links - self.links)]
        if self.routes != other.routes:
            out.append(f"routes changed:\n{self.routes}\n->\n{other.routes}")
        out += [f"mount {m} appeared" for m in sorted(other.mounts - self.mounts)]
        return out


def _iptables() -> dict[str, str]:
    out = {}
    for tool in ("iptables-save", "ip6tables-save"):
        if not shutil.which(tool):
            continue
        done = _run([tool], check=False)
        # Counters and the generated-at comments change by themselves.
        lines = [
            line.split(" [", 1)[0] if line.startswith(":") else line
            for line in done.stdout.splitlines()
            if not line.startswith("#")
        ]
        out[tool] = "\n".join(lines)
    return out


def _sysctls() -> dict[str, str]:
    root = Path("/proc/sys")
    values = {}
    for tree in _SYSCTL_TREES:
        base = root / tree
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in paths:
            key = str(path.relative_to(root))
            if any(v in key for v in _VOLATILE) or not os.access(path, os.R_OK):
                continue
            value = _read(path)
            if value is not None:
                values[key] = value
    return values


def _links() -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir()}


def _routes() -> str:
    return _run(["ip", "route", "show"]).stdout + _run(["ip", "-6", "route", "show"], check=False).stdout


def _mount_points() -> set[str]:
    return {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def _cgroup_hierarchies() -> list[Path]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        if right.split()[0] in ("cgroup", "cgroup2"):
            out.append(Path(left.split()[4]))
    return out


@dataclass
class Sandbox:
    """The namespaces, veth, routes and cgroup root of one node; `destroy()` removes them all."""

    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mt5db-node-")))
    # Everything inside is throwaway (the mount namespace and its mounts vanish with it).
    stop_grace: float = 5.0

    def __post_init__(self) -> None:
        self.plan: NetworkPlan | None = None
        self._init: subprocess.Popen[str] | None = None
        self._daemons: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._ns: dict[str, int] = {}
        self.before = HostSnapshot.take()

    @property
    def init_pid(self) -> int:
        assert self._init is not None, "sandbox not started"
        return self._init.pid

    @property
    def cgroup_root(self) -> str:
        assert self.plan is not None
        return f"/mt5db-node-{self.plan.index}"

    @property
    def network(self) -> NetworkPlan:
        assert self.plan is not None, "sandbox not started"
        return self.plan

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        for tool in ("unshare", "nsenter", "ip", "mount"):
            if not shutil.which(tool):
                raise OSError(f"{tool} not found (util-linux / iproute2)")
        self.base.mkdir(parents=True, exist_ok=True)
        self._init = subprocess.Popen(
            ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "slave", "--",
             sys.executable, node_init.__file__, str(self.base), str(self.stop_grace)],
            stdout=subprocess.PIPE,
            stderr=(self.base / "init.log").open("w"),
            text=True,
        )  # fmt: skip
        assert self._init.stdout is not None
        line = self._init.stdout.readline().strip()
        if line != "ready":
            raise OSError(
                f"the node's namespaces did not come up: {line or 'no answer'}; {self.log_tail('init')}"
            )
        # The namespaces are those of unshare's child (PID 1 inside), not of unshare itself.
        child = self._wait_for_child(self._init.pid, timeout)
        self._ns = {kind: os.stat(f"/proc/{child}/ns/{kind}").st_ino for kind in ("net", "mnt", "pid")}
        self._child = child
        self._make_link()
        self._make_cgroup_root()

    def _wait_for_child(self, pid: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            children = _read(Path(f"/proc/{pid}/task/{pid}/children"))
            if children:
                return int(children.split()[0])
            time.sleep(0.05)
        raise TimeoutError("unshare started no child")

    def _make_link(self) -> None:
        # The first free index wins; `ip link add` of an existing name fails, which is the lock.
        for index in range(1, 250):
            plan = NetworkPlan(index)
            if Path(f"/sys/class/net/{plan.host_link}").exists():
                continue
            created = _run(
                ["ip", "link", "add", plan.host_link, "type", "veth", "peer", "name", plan.node_link],
                check=False,
            )
            if created.returncode == 0:
                self.plan = plan
                break
        else:
            raise OSError("no free veth index (mt5db-h1..249 all exist)")
        plan = self.plan
        _run(["ip", "link", "set", plan.node_link, "netns", str(self._child)])
        _run(["ip", "addr", "add", f"{plan.host_ip}/30", "dev", plan.host_link])
        _run(["ip", "link", "set", plan.host_link, "up"])
        self.exec(["ip", "addr", "add", f"{plan.node_ip}/30", "dev", plan.node_link])
        self.exec(["ip", "link", "set", plan.node_link, "up"])
        # The node's traffic to ClusterIPs is DNATed by kube-proxy, but only after a route lookup
        # succeeds: the Service range goes to the host side (which does not forward, so a packet
        # nobody DNATs ends there). There is no default route.
        self.exec(["ip", "route", "add", plan.service_cidr, "via", plan.host_ip])
        _run(["ip", "route", "add", plan.service_cidr, "via", plan.node_ip, "dev", plan.host_link])

    def _make_cgroup_root(self) -> None:
        for hierarchy in _cgroup_hierarchies():
            path = hierarchy / self.cgroup_root.lstrip("/")
            path.mkdir(exist_ok=True)
            # cpuset children start empty; a task cannot join one until cpus and mems are set.
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (hierarchy / name).exists():
                    (path / name).write_text((hierarchy / name).read_text())

    def exec(
        self, argv: list[str], check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run one command inside the node's namespaces and wait for it."""
        done = subprocess.run(
            self.nsenter(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} in the node failed: {done.stderr.strip() or done.returncode}"
            )
        return done

    def nsenter(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--target={self._child}", "--net", "--mount", "--pid", "--", *argv]

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a daemon inside the namespaces, its output in `<base>/<name>.log`."""
        log = (self.base / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            self.nsenter(argv), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        self._daemons.append((name, proc))
        return proc

    def dead_daemons(self) -> list[str]:
        return [f"{name} (exit {p.returncode})" for name, p in self._daemons if p.poll() is not None]

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.base / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        """Stop PID 1 of the namespace (it stops the rest), then remove links and cgroups."""
        if self._init is not None and self._init.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._child, 15)
            try:
                self._init.wait(timeout=self.stop_grace + 15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._child, 9)
                self._init.wait(timeout=15)
        for _name, proc in self._daemons:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._daemons.clear()
        if self.plan is not None:
            _run(["ip", "link", "del", self.plan.host_link], check=False)
            self._remove_cgroups()

    def _remove_cgroups(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        for hierarchy in _cgroup_hierarchies():
            root = hierarchy / self.cgroup_root.lstrip("/")
            if not root.exists():
                continue
            # Deepest first; a cgroup whose last task is still exiting refuses rmdir for a moment.
            for path in [
                *sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)),
                root,
            ]:
                while path.exists():
                    try:
                        path.rmdir()
                    except OSError:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.1)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- the teardown check ------------------------------------------------------------------

    def processes_inside(self) -> list[str]:
        """Host PIDs of processes still in one of the node's namespaces, with their names."""
        out = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            for kind, inode in self._ns.items():
                try:
                    if os.stat(proc / "ns" / kind).st_ino == inode:
                        out.append(f"{proc.name} {_read(proc / 'comm')}")
                        break
                except OSError:
                    continue
        return out

    def leftovers(self) -> list[str]:
        """Everything this run created that still exists, and every host setting it changed."""
        out = [f"process {p} still in the node's namespaces" for p in self.processes_inside()]
        if self.plan is not None:
            for hierarchy in _cgroup_hierarchies():
                path = hierarchy / self.cgroup_root.lstrip("/")
                if path.exists():
                    out.append(f"cgroup {path} still exists")
            for link in (self.plan.host_link, self.plan.node_link):
                if Path(f"/sys/class/net/{link}").exists():
                    out.append(f"link {link} still exists")
        if self.base.exists():
            out.append(f"{self.base} still exists")
        out += self.before.differences(HostSnapshot.take())
        return out
