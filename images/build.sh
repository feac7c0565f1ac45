#!/usr/bin/env bash
# `make images`: the platform's images, built without a daemon (buildah), each build's time and
# size printed.
#
#   images/build.sh [api] [training] [operator] [postgres]      (default: all four)
#
#   MT5DB_IMAGE_BASES=local|upstream   local (default): bases made here from a Debian root
#                                      filesystem (mmdebstrap), cached; upstream: python:3.11-slim,
#                                      debian:bookworm-slim, ghcr.io/astral-sh/uv (pulled)
#   MT5DB_TRAINING_EXTRAS=informer     the training image's extras; empty = RandomForest only
#                                      (no torch: what the e2e tier builds)
#   MT5DB_PG_MAJOR                     PostgreSQL client major in the API image (local bases: 15,
#                                      Debian 12's, matching the e2e database image; upstream: 16,
#                                      the default TimescaleDB image's)
#   MT5DB_IMAGE_PREFIX=localhost/mt5db the images' repository prefix
#
# Images are tagged <prefix>/<name>:<version> (the members' version). The last line of stdout is
# the list of built references. Slow inputs are cached outside the work tree: the Debian root
# filesystems and the uv binary under ${MT5DB_CACHE:-~/.cache/mt5db}/images, keyed by version
# and package list; wheels in buildah's cache mount; unchanged layers by `buildah bud --layers`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
cache="${MT5DB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mt5db}/images"
uv_version="$(sed -n 's/^required-version = "==\(.*\)"$/\1/p' pyproject.toml)"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' core/pyproject.toml | head -n1)"
prefix="${MT5DB_IMAGE_PREFIX:-localhost/mt5db}"
bases="${MT5DB_IMAGE_BASES:-local}"
training_extras="${MT5DB_TRAINING_EXTRAS-informer}"
suite=bookworm
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(api training operator postgres)

say() { printf 'images: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

command -v buildah >/dev/null || die "buildah not found (Debian package buildah; scripts/setup.sh images installs it)"
[[ $(id -u) -eq 0 ]] || die "run as root: buildah's storage and the chroot isolation need it here"

image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

human_size() {
  # Sum of the image's uncompressed layers, from the storage's own accounting.
  local bytes
  bytes="$(buildah images --noheading --format '{{.Size}}' "$1" 2>/dev/null | head -n1)"
  printf '%s' "${bytes:-?}"
}

# -- bases ---------------------------------------------------------------------------------------

# A Debian root filesystem (mmdebstrap, minbase + packages, no docs/man/locales) imported as an image:
# the local equivalent of the upstream slim images. Cached as a tar keyed by suite and packages.
debian_base() {
  local name="$1" packages="$2"
  local key tar ref
  key="$(printf '%s %s' "$suite" "$packages" | sha256sum | cut -c1-10)"
  ref="$prefix/$name:$suite-$key"
  if image_exists "$ref"; then
    echo "$ref"
    return
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap not found (Debian package mmdebstrap)"
  tar="$cache/rootfs/$name-$suite-$key.tar"
  if [[ ! -s "$tar" ]]; then
    mkdir -p "$cache/rootfs"
    local started=$SECONDS
    say "making the $suite root filesystem for $ref ($packages)"
    mmdebstrap --quiet --variant=minbase --include="$packages" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --format=tar "$suite" "$tar.tmp" >&2
    mv "$tar.tmp" "$tar"
    say "root filesystem $name: $((SECONDS - started)) s, $(du -h "$tar" | cut -f1)"
  fi
  local started=$SECONDS ctr
  ctr="$(buildah from --quiet scratch)"
  buildah add --quiet "$ctr" "$tar" / >/dev/null
  buildah config --env LANG=C.UTF-8 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash "$ctr"
  buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
  say "base $ref imported in $((SECONDS - started)) s"
  echo "$ref"
}

# uv's own image cannot be pulled here: the same binary from uv's PyPI wheel, in a scratch image.
uv_image() {
  local ref="$prefix/uv:$uv_version"
  if image_exists "$ref"; then
    echo "$prefix/uv"
    return
  fi
  local dir="$cache/uv-$uv_version"
  if [[ ! -x "$dir/uv" ]]; then
    mkdir -p "$dir"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$dir/wheel" "uv==$uv_version" >&2
    python3 - "$dir" <<'EOF'
import sys, zipfile, pathlib
out = pathlib.Path(sys.argv[1])
(wheel,) = (out / "wheel").glob("uv-*.whl")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith(("/scripts/uv", "/scripts/uvx")):
            target = out / name.rsplit("/", 1)[1]
            target.write_bytes(z.read(name))
            target.chmod(0o755)
EOF
  fi
  local ctr
  ctr="$(buildah from --quiet scratch)"
  buildah copy --quiet "$ctr" "$dir/uv" "$dir/uvx" / >/dev/null
  buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
  echo "$prefix/uv"
}

build_args=(--build-arg "UV_VERSION=$uv_version")
bud_volumes=()
pull=(--pull)
if [[ "$bases" == local ]]; then
  python_base="$(debian_base python 'python3,ca-certificates')"
  debian_base_ref="$(debian_base debian 'ca-certificates')"
  build_args+=(--build-arg "PYTHON_BASE=$python_base" --build-arg "DEBIAN_BASE=$debian_base_ref"
               --build-arg "UV_IMAGE=$(uv_image)" --build-arg "PG_MAJOR=${MT5DB_PG_MAJOR:-15}")
  pull=(--pull-never)
  # Builds reach PyPI and the Debian mirror through this machine's TLS set-up: its CA bundle is
  # mounted for the build steps only (volumes are never committed into a layer).
  host_ca=/etc/ssl/certs/ca-certificates.crt
  [[ -f "$host_ca" ]] && bud_volumes+=(--volume "$host_ca:$host_ca:ro")
elif [[ "$bases" == upstream ]]; then
  [[ -n "${MT5DB_PG_MAJOR:-}" ]] && build_args+=(--build-arg "PG_MAJOR=$MT5DB_PG_MAJOR")
else
  die "MT5DB_IMAGE_BASES must be local or upstream, not $bases"
fi

built=()
for target in "${targets[@]}"; do
  case "$target" in
    api | training | operator)
      ref="$prefix/mt5db-$target:$version"
      file=images/Dockerfile
      extra=(--target "$target")
      [[ "$target" == training ]] && extra+=(--build-arg "TRAINING_EXTRAS=$training_extras")
      ;;
    postgres)
      ref="$prefix/postgres:${MT5DB_PG_MAJOR:-15}"
      file=images/postgres/Dockerfile
      extra=()
      ;;
    *) die "unknown image $target (api, training, operator, postgres)" ;;
  esac
  started=$SECONDS
  log="$(mktemp)"
  before="$(buildah containers --quiet | sort)"
  ok=true
  buildah bud --quiet --layers --isolation chroot --network host "${pull[@]}" \
    "${bud_volumes[@]}" "${build_args[@]}" "${extra[@]}" -f "$file" -t "$ref" "$repo" >"$log" 2>&1 || ok=false
  # buildah 1.28 leaves the working container of a stage that is only a FROM (the uv stage), and
  # those of a failed build, behind, mounted; remove what this build left, so a run leaves no mounts.
  comm -13 <(echo "$before") <(buildah containers --quiet | sort) | xargs -r buildah rm >/dev/null
  if [[ "$ok" != true ]]; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    die "building $ref failed"
  fi
  rm -f "$log"
  say "built $ref in $((SECONDS - started)) s, size $(human_size "$ref")"
  built+=("$ref")
done
echo "${built[*]}"
