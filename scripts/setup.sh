#!/usr/bin/env bash
# Installs what the project needs on this machine, idempotently and fast when all is there.
#
#   scripts/setup.sh dev      system packages (as root), uv, .venv with every component
#   scripts/setup.sh images   dev + what images/build.sh needs (buildah, mmdebstrap)
#   scripts/setup.sh test     dev + the real test services: control plane build, helm/kubectl, and
#                             the provisioning tools (Terraform providers, tilt, dashboard and kind checks)
#   scripts/setup.sh e2e      test + images + the node: its builds (kubelet, scheduler, proxy, pause,
#                             CoreDNS, metrics-server, Traefik) and runtime (containerd, runc, CNI)
#
# Expensive results are cached outside the work tree (uv's cache, the Go build cache and
# ${MT5DB_CACHE:-~/.cache/mt5db}) keyed by version, so a fresh clone reuses them.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-dev}"
cache="${MT5DB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mt5db}"
# The one uv pin lives in pyproject.toml ([tool.uv] required-version).
UV_VERSION="$(sed -n 's/^required-version = "==\(.*\)"$/\1/p' pyproject.toml)"

say() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages, each behind the command (or file) that shows it is there. Without root we only
# report. Go is not among them: Debian 12's golang-go (1.19) cannot build Kubernetes 1.36;
# tests/cluster/build.sh says so.
install_missing() {
  local missing=() check package
  while read -r check package; do
    [[ -z "$check" ]] && continue
    if [[ "$check" == /* ]]; then
      compgen -G "$check" >/dev/null || missing+=("$package")
    else
      command -v "$check" >/dev/null || missing+=("$package")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages (run as root or install them): ${missing[*]}"
    return 0
  fi
  say "installing Debian packages: ${missing[*]}"
  local started=$SECONDS
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "installed ${missing[*]} in $((SECONDS - started)) s"
}

system_packages() {
  cat <<'EOF'
/usr/lib/postgresql/*/bin/initdb postgresql-15
prometheus prometheus
openssl openssl
npm npm
EOF
}

# images/build.sh: buildah (no daemon) and mmdebstrap (the local Debian bases).
image_packages() {
  cat <<'EOF'
buildah buildah
mmdebstrap mmdebstrap
EOF
}

# The e2e node (tests/harness/mt5db_harness/cluster.py): the container runtime and CNI plugins,
# iptables/conntrack for kube-proxy, a C compiler and static libc for the pause binary.
node_packages() {
  cat <<'EOF'
containerd containerd
runc runc
/usr/lib/cni/bridge containernetworking-plugins
iptables iptables
conntrack conntrack
cc gcc
/usr/lib/*/libc.a libc6-dev
EOF
}

uv_binary() {
  if command -v uv >/dev/null && [[ "$(uv --version | awk '{print $2}')" == "$UV_VERSION" ]]; then
    command -v uv
    return
  fi
  local venv="$cache/uv-$UV_VERSION"
  if [[ ! -x "$venv/bin/uv" ]]; then
    say "installing uv $UV_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "uv==$UV_VERSION"
  fi
  echo "$venv/bin/uv"
}

python_env() {
  local uv
  uv="$(uv_binary)"
  # --frozen: install exactly uv.lock; a drifted lock is an error, not a silent re-resolve.
  # --all-extras: the dev environment has the Informer (torch, Ray) too; images choose per build.
  "$uv" sync --all-packages --all-extras --frozen --quiet
}

# Each result is assigned before it is printed: a failed build inside `say "$(…)"` would not stop set -e.
node_services() {
  local bins addons
  bins="$(tests/cluster/build.sh node)"
  say "control plane and node: $bins"
  addons="$(tests/cluster/build.sh addons)"
  say "node add-ons: $(echo "$addons" | tr '\n' ' ')"
}

test_services() {
  local bins
  bins="$(tests/cluster/build.sh)"
  say "control plane: $bins"
  .venv/bin/python -c 'from mt5db_harness.tools import ensure_helm_kubectl as e; print("setup: helm/kubectl:", *e())' >&2
  # The provisioning tools (tests/tools/): each build prints its time; cached by content.
  local tool started
  for tool in dashcheck kindcheck tf-helm tf-kubernetes tilt; do
    started=$(date +%s)
    bins="$(tests/tools/build.sh "$tool")"
    say "$tool: $bins ($(( $(date +%s) - started )) s)"
  done
  command -v terraform >/dev/null || say "terraform not on PATH: the terraform tests will fail (Terraform >= 1.7)"
  .venv/bin/python -c 'from mt5db_harness.tools import ensure_timescale_engine as e; print("setup: timescale engine:", e())' >&2
}

# One check and at most one apt-get run for every package the target needs.
{
  system_packages
  if [[ "$target" == images || "$target" == e2e ]]; then image_packages; fi
  if [[ "$target" == e2e ]]; then node_packages; fi
} | install_missing
python_env
[[ "$target" == e2e ]] && node_services
if [[ "$target" == test || "$target" == e2e ]]; then
  test_services
fi
