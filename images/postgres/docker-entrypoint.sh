#!/usr/bin/env bash
# The official `postgres` image's start-up contract, for Debian's PostgreSQL packages:
#   PGDATA                      data directory (initialised on first start when empty)
#   POSTGRES_PASSWORD           the superuser's password (required unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER               the superuser (default postgres)
#   POSTGRES_DB                 a database created on first start (default: $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS        extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD   pg_hba method for TCP clients (default scram-sha-256)
#   /docker-entrypoint-initdb.d/*.sh|*.sql   run once, after the first initdb
# Any uid works: when the current uid has no passwd entry (a pod's runAsUser), nss_wrapper gives
# it one, because initdb refuses to run as a user it cannot look up.
set -Eeuo pipefail

say() { printf 'docker-entrypoint: %s\n' "$*" >&2; }

# `docker run IMAGE -c shared_buffers=...`: options go to postgres.
if [[ "${1:-}" == -* ]]; then
  set -- postgres "$@"
fi

if [[ "${1:-}" != postgres ]]; then
  exec "$@"
fi

if [[ "$(id -u)" == 0 ]]; then
  # Root: own the data and socket directories, then run as postgres (never as root).
  install -d -m 0700 -o postgres -g postgres "$PGDATA"
  install -d -m 3777 -o postgres -g postgres /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if ! getent passwd "$(id -u)" >/dev/null 2>&1; then
  wrapper="$(ls /usr/lib/*/libnss_wrapper.so 2>/dev/null | head -n1)"
  if [[ -n "$wrapper" ]]; then
    NSS_WRAPPER_PASSWD="$(mktemp)"
    NSS_WRAPPER_GROUP="$(mktemp)"
    grep -v '^postgres:' /etc/passwd >"$NSS_WRAPPER_PASSWD"
    printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "${PGDATA%/*}" >>"$NSS_WRAPPER_PASSWD"
    grep -v '^postgres:' /etc/group >"$NSS_WRAPPER_GROUP"
    printf 'postgres:x:%s:\n' "$(id -g)" >>"$NSS_WRAPPER_GROUP"
    export LD_PRELOAD="$wrapper" NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
  fi
fi

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  if [[ -z "${POSTGRES_PASSWORD:-}" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
    say "PGDATA is empty and POSTGRES_PASSWORD is not set: refusing to create a database without a password"
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  pwfile="$(mktemp)"
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments, as upstream
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
    --auth-host="$POSTGRES_HOST_AUTH_METHOD" ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.auto.conf"

  # A private server on the socket only while the database and init scripts are created.
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" start >/dev/null
  export PGHOST=/var/run/postgresql PGUSER="$POSTGRES_USER"
  if [[ "$POSTGRES_DB" != postgres ]]; then
    psql -v ON_ERROR_STOP=1 -q --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) say "running $f"; . "$f" ;;
      *.sql) say "running $f"; psql -v ON_ERROR_STOP=1 -q --dbname "$POSTGRES_DB" -f "$f" ;;
      *) [[ -e "$f" ]] && say "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset PGHOST PGUSER
  say "initialised $PGDATA"
fi

exec "$@"
