#!/usr/bin/env bash
# Builds one of the Go tools the provisioning tests run, from the wrapper module beside this
# script, once per content: the key is a hash of the wrapper's files and the Go version, so a
# second run (or a fresh clone on the same machine) only checks that the binary exists.
#
#   tests/tools/build.sh NAME    -> prints the binary's path (build time on stderr)
#
#   tf-helm        terraform-provider-helm v1.3.2 (the newest the module proxy serves here)
#   tf-kubernetes  terraform-provider-kubernetes v1.13.4 (likewise)
#   tilt           tilt v0.37.6 (needs cgo: tree-sitter)
#   dashcheck      Grafana dashboard validation with the Go grafana-foundation-sdk
#   kindcheck      strict decoding of kind cluster configs with kind's own types
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:?usage: build.sh NAME}"
dir="$here/$name"
[[ -f "$dir/go.mod" ]] || { echo "build.sh: no tool $name (no $dir/go.mod)" >&2; exit 2; }
command -v go >/dev/null || { echo "build.sh: no go toolchain on PATH" >&2; exit 1; }

cgo=0
case "$name" in
  tf-helm) pkg=github.com/hashicorp/terraform-provider-helm; bin=terraform-provider-helm ;;
  tf-kubernetes) pkg=github.com/hashicorp/terraform-provider-kubernetes; bin=terraform-provider-kubernetes ;;
  tilt) pkg=github.com/tilt-dev/tilt/cmd/tilt; bin=tilt; cgo=1 ;;
  *) pkg=.; bin="$name" ;;
esac

go_version="$(go env GOVERSION)"
key="$(cat "$dir"/go.mod "$dir"/go.sum "$dir"/*.go 2>/dev/null | { cat; echo "$go_version"; } | sha256sum | cut -c1-12)"
cache_root="${MT5DB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mt5db}"
out="$cache_root/tools/$name-$key"
if [[ -x "$out/$bin" ]]; then
  echo "$out/$bin"
  exit 0
fi
mkdir -p "$out"
started=$(date +%s)
echo "build.sh: building $name with $go_version (once per machine)" >&2
(
  cd "$dir"
  CGO_ENABLED=$cgo go build -trimpath -ldflags "-s -w" -o "$out/$bin.tmp" "$pkg"
)
mv "$out/$bin.tmp" "$out/$bin"
echo "build.sh: built $name in $(( $(date +%s) - started )) s" >&2
echo "$out/$bin"
