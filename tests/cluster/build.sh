#!/usr/bin/env bash
# Builds the control-plane binaries the test harness runs (kube-apiserver,
# kube-controller-manager, etcd) from their Go modules, once per version.
# The result lives outside the work tree, keyed by version, so a second run
# (or a fresh clone on the same machine) only checks that the files exist.
#
# Usage: tests/cluster/build.sh            -> prints the bin directory
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kube_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$here/kube/go.mod")"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2; exit}' "$here/etcd/go.mod")"
if ! command -v go >/dev/null; then
  echo "build.sh: no go toolchain on PATH; Go >= 1.26 is needed to build Kubernetes 1.36" >&2
  exit 1
fi
go_version="$(go env GOVERSION)"
go_minor="$(echo "$go_version" | sed -E 's/^go1\.([0-9]+).*/\1/')"
if [[ ! "$go_minor" =~ ^[0-9]+$ ]] || (( go_minor < 26 )); then
  echo "build.sh: $go_version is too old; Kubernetes 1.36 needs Go >= 1.26" >&2
  exit 1
fi
cache_root="${MT5DB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mt5db}"
bin="$cache_root/kubebins/${kube_version}-etcd${etcd_version}-${go_version}"

if [[ -x "$bin/kube-apiserver" && -x "$bin/kube-controller-manager" && -x "$bin/etcd" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
minor="$(echo "$kube_version" | cut -d. -f2)"
# Without version ldflags /version reports v0.0.0-master; helm and kubectl read it.
ld="-s -w -X k8s.io/component-base/version.gitVersion=${kube_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
export CGO_ENABLED=0
(
  cd "$here/kube"
  for cmd in kube-apiserver kube-controller-manager; do
    [[ -x "$bin/$cmd" ]] && continue
    echo "building $cmd $kube_version with $go_version (several minutes, once per machine)" >&2
    go build -trimpath -ldflags "$ld" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$bin/$cmd.tmp" "$bin/$cmd"
  done
)
(
  cd "$here/etcd"
  if [[ ! -x "$bin/etcd" ]]; then
    echo "building etcd $etcd_version with $go_version" >&2
    go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$bin/etcd.tmp" "$bin/etcd"
  fi
)
echo "$bin"
