#!/usr/bin/env bash
# Builds the Kubernetes binaries the test harness runs from their Go modules, once per version.
# The result lives outside the work tree, keyed by version, so a second run
# (or a fresh clone on the same machine) only checks that the files exist.
#
# Usage: tests/cluster/build.sh          control plane: kube-apiserver, kube-controller-manager, etcd
#        tests/cluster/build.sh node     also the node: kubelet, kube-scheduler, kube-proxy and the
#                                        static pause binary (the sandbox image) from the module's
#                                        own build/pause/linux/pause.c
#        tests/cluster/build.sh addons   the node's add-ons, each from its wrapper module under
#                                        addons/: CoreDNS, metrics-server, Traefik
# control-plane and node print the bin directory; addons prints "name path" per binary.
# Each build prints its time on stderr.
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(…) fails the script too
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${1:-control-plane}"
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
export CGO_ENABLED=0

# go build into the cache, atomically (a half-written binary is never taken for a cached one).
build() {
  local module_dir="$1" package="$2" out="$3" ldflags="$4" modfile="${5:-}"
  [[ -x "$out" ]] && return 0
  echo "building $(basename "$out") with $go_version (minutes, once per machine)" >&2
  local started=$SECONDS
  mkdir -p "$(dirname "$out")"
  # The temporary name is per process: two runs building the same binary never share one file.
  (cd "$module_dir" && go build ${modfile:+-modfile "$modfile"} -trimpath -ldflags "$ldflags" -o "$out.tmp.$$" "$package")
  mv "$out.tmp.$$" "$out"
  echo "built $(basename "$out") in $((SECONDS - started)) s" >&2
}

# Traefik without lego's ACME DNS providers: lego (from the module cache) copied beside the cache
# with its generated provider list replaced by addons/traefik/overlay (go build -overlay may not
# touch the module cache), and a module file that points lego/v4 at that copy. Prints the file.
trimmed_traefik_modfile() {
  local wrapper="$1" lego_version lego_dir stub copy mods
  lego_version="$(awk '$1 == "github.com/go-acme/lego/v4" {print $2; exit}' "$wrapper/go.mod")"
  lego_dir="$(cd "$wrapper" && go mod download -json "github.com/go-acme/lego/v4@$lego_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  stub="$(sha256sum "$wrapper/overlay/lego_dns_providers.go.in" | cut -c1-8)"
  copy="$cache_root/addons/src/lego-$lego_version-stub-$stub"
  mods="$cache_root/addons/src/traefik-modfile.$$"
  if [[ ! -f "$copy/go.mod" ]]; then
    rm -rf "$copy.tmp.$$" && mkdir -p "$(dirname "$copy")"
    cp -R "$lego_dir" "$copy.tmp.$$" && chmod -R u+w "$copy.tmp.$$"
    cp "$wrapper/overlay/lego_dns_providers.go.in" "$copy.tmp.$$/providers/dns/zz_gen_dns_providers.go"
    rm -rf "$copy" && mv "$copy.tmp.$$" "$copy"
  fi
  mkdir -p "$mods"
  cp "$wrapper/go.mod" "$mods/go.mod" && cp "$wrapper/go.sum" "$mods/go.sum"
  (cd "$wrapper" && go mod edit -modfile "$mods/go.mod" -replace "github.com/go-acme/lego/v4=$copy")
  echo "$mods/go.mod"
}

if [[ "$target" == addons ]]; then
  # name, module path (its version is the wrapper's require), package. The cache key adds a hash
  # of the wrapper's files: a changed recipe (main.go, overlay, go.sum) is a new binary.
  while read -r name module_path package; do
    wrapper="$here/addons/$name"
    version="$(awk -v m="$module_path" '$1 == "require" {$1 = ""; $0 = $0} $1 == m && $2 ~ /^v/ {print $2; exit}' "$wrapper/go.mod")"
    ld="-s -w"
    case "$name" in
      traefik) ld="$ld -X github.com/traefik/traefik/v3/pkg/version.Version=$version" ;;
      # metrics-server's Makefile sets client-go's version variables (its /version and --version).
      metrics-server) ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$version" ;;
    esac
    recipe="$(find "$wrapper" -type f | LC_ALL=C sort | xargs cat | { cat; echo "$ld"; } | sha256sum | cut -c1-8)"
    out="$cache_root/addons/$name-$version-$go_version-$recipe/$name"
    modfile=""
    [[ "$name" == traefik && ! -x "$out" ]] && modfile="$(trimmed_traefik_modfile "$wrapper")"
    build "$wrapper" "$package" "$out" "$ld" "$modfile"
    [[ -z "$modfile" ]] || rm -rf "$(dirname "$modfile")"
    echo "$name $out"
  done <<'EOF'
coredns github.com/coredns/coredns .
metrics-server sigs.k8s.io/metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server
traefik github.com/traefik/traefik/v3 github.com/traefik/traefik/v3/cmd/traefik
EOF
  exit 0
fi

bin="$cache_root/kubebins/${kube_version}-etcd${etcd_version}-${go_version}"
minor="$(echo "$kube_version" | cut -d. -f2)"
# Without version ldflags /version reports v0.0.0-master; helm and kubectl read it.
ld="-s -w -X k8s.io/component-base/version.gitVersion=${kube_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
commands=(kube-apiserver kube-controller-manager)
# The node's own binaries first: a control-plane build running beside this one fills the rest.
[[ "$target" == node ]] && commands=(kubelet kube-scheduler kube-proxy "${commands[@]}")
for cmd in "${commands[@]}"; do
  build "$here/kube" "k8s.io/kubernetes/cmd/$cmd" "$bin/$cmd" "$ld"
done
build "$here/etcd" go.etcd.io/etcd/server/v3 "$bin/etcd" "-s -w"

if [[ "$target" == node && ! -x "$bin/pause" ]]; then
  # The sandbox (pause) process of the same module version; static, so it runs from scratch.
  src="$(cd "$here/kube" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  command -v cc >/dev/null || { echo "build.sh: no C compiler for $src (Debian: gcc libc6-dev)" >&2; exit 1; }
  cc -Os -Wall -Werror -static -DVERSION="${kube_version}-mt5db" -o "$bin/pause.tmp.$$" "$src"
  strip "$bin/pause.tmp.$$" 2>/dev/null || true
  mv "$bin/pause.tmp.$$" "$bin/pause"
  echo "built pause from the module's build/pause/linux/pause.c" >&2
fi
echo "$bin"
