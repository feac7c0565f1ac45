"""PID 1 of the e2e node's namespaces (standard library only; run by `unshare`, see node.py).

`unshare --net --mount --pid --fork --mount-proc --propagation slave` starts this script as the
first process of a new network, mount and PID namespace. It prepares the mount namespace that
every daemon of the node then joins (`nsenter --net --mount --pid`), prints `ready`, and reaps
orphans until it is told to stop; on SIGTERM it stops everything in the namespace (the kernel
kills whatever is left, nested container PID namespaces included, when PID 1 exits).

What it prepares, and why:
* a fresh sysfs: the inherited one shows the host's network devices, and CNI's bridge plugin
  writes the namespace's own /sys/class/net entries;
* the cgroup hierarchies again under that sysfs (the fresh /sys/fs/cgroup is empty), with the
  same options as on the host, so the kubelet and runc see the real hierarchies;
* tmpfs over /run, /var/lib and /var/log: the kubelet and containerd write a few fixed host
  paths (/var/lib/kubelet/device-plugins, /var/log/containers, /run/containerd/s, CNI's
  /var/lib/cni cache); here they land in memory and vanish with the namespace;
* the kernel settings the kubelet insists on (vm.overcommit_memory, kernel.panic, ...) are
  global, not per namespace: files with the values it wants are bind-mounted over their /proc/sys
  entries in this mount namespace, so it reads what it expects and the host's values never change.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# kubelet's setupKernelTunables: these must read as these values (protectKernelDefaults).
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


def run(*argv: str) -> None:
    subprocess.run(argv, check=True)


def cgroup_mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of every cgroup mount this namespace inherited."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        mount_point = left.split()[4]
        fstype, _source, super_opts = right.split()[:3]
        if fstype in ("cgroup", "cgroup2"):
            opts = ",".join(o for o in super_opts.split(",") if o not in ("rw", "ro"))
            out.append((mount_point, fstype, opts))
    return out


def cgroup_links() -> dict[str, str]:
    root = Path("/sys/fs/cgroup")
    return {p.name: os.readlink(p) for p in root.iterdir() if p.is_symlink()} if root.is_dir() else {}


def prepare(run_dir: Path) -> None:
    run("ip", "link", "set", "lo", "up")
    mounts, links = cgroup_mounts(), cgroup_links()
    run("mount", "-t", "sysfs", "sysfs", "/sys")
    run("mount", "-t", "tmpfs", "-o", "mode=755", "cgroup_root", "/sys/fs/cgroup")
    for mount_point, fstype, opts in mounts:
        os.makedirs(mount_point, exist_ok=True)
        if fstype == "cgroup2":
            run("mount", "-t", "cgroup2", "cgroup2", mount_point)
        else:
            run("mount", "-t", "cgroup", "-o", opts, "cgroup", mount_point)
    for name, target in links.items():
        os.symlink(target, f"/sys/fs/cgroup/{name}")
    for path in ("/run", "/var/lib", "/var/log"):
        run("mount", "-t", "tmpfs", "-o", "mode=755", f"node{path.replace('/', '-')}", path)
    shadows = run_dir / "sysctl-shadows"
    shadows.mkdir(parents=True, exist_ok=True)
    for key, wanted in KUBELET_SYSCTLS.items():
        entry = Path("/proc/sys") / key
        if entry.read_text().strip() == wanted:
            continue
        shadow = shadows / key.replace("/", ".")
        shadow.write_text(wanted + "\n")
        run("mount", "--bind", str(shadow), str(entry))


class Stop(Exception):
    """SIGTERM/SIGINT: leave the reaping loop."""


def others_alive() -> bool:
    return any(p.isdigit() and p != "1" for p in os.listdir("/proc"))


def reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def stop_everything(grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        if not others_alive():
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)
    reap()


def main() -> int:
    run_dir = Path(sys.argv[1])
    grace = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0

    def on_term(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Stop

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        prepare(run_dir)
        print("ready", flush=True)
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(0.5)
    except Stop:
        pass
    except Exception as exc:
        print(f"failed: {exc}", flush=True)
        stop_everything(grace)
        return 1
    stop_everything(grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
