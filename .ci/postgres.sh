#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for depfw's tests (the PostgreSQL backend, `[store] url`).
#
#   bash .ci/postgres.sh install         # as root: the pinned postgresql-15 from Debian, if missing
#   eval "$(bash .ci/postgres.sh start)" # initdb + pg_ctl in a temp dir; exports
#                                        # DEPFW_TEST_POSTGRES_URL and DEPFW_TEST_POSTGRES_DIR
#   bash .ci/postgres.sh stop "$DEPFW_TEST_POSTGRES_DIR"
#
# No service manager: the cluster lives in a temporary directory, listens on 127.0.0.1 on a
# free port, and needs a password (scram-sha-256), so the tests use a URL with credentials as
# production does. PostgreSQL refuses to run as root, so as root (CI) it runs as the
# `postgres` user the Debian package creates.
set -euo pipefail

# Pinned like every tool CI installs; upgrade on purpose (apt-cache policy postgresql-15).
PG_PACKAGE_VERSION=15.18-0+deb12u1
bindir=/usr/lib/postgresql/15/bin

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  for port in $(seq 55432 55632); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "postgres.sh: no free port in 55432-55632" >&2
  exit 1
}

case "${1:-}" in
install)
  if [ ! -x "$bindir/initdb" ]; then
    echo "postgres.sh: installing postgresql-15=$PG_PACKAGE_VERSION" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "postgresql-15=$PG_PACKAGE_VERSION" "postgresql-client-15=$PG_PACKAGE_VERSION" >&2
  fi
  ;;
start)
  [ -x "$bindir/initdb" ] || { echo "postgres.sh: no $bindir/initdb; run '$0 install' as root" >&2; exit 1; }
  dir=$(mktemp -d "${TMPDIR:-/tmp}/depfw-pg.XXXXXX")
  chmod 755 "$dir"
  password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s\n' "$password" >"$dir/pwfile"
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
  as_owner "$bindir/initdb" -D "$dir/data" -U depfw --auth=scram-sha-256 \
    --pwfile="$dir/pwfile" -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$dir/pwfile"
  port=$(free_port)
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  as_owner env PGPASSWORD="$password" \
    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U depfw depfw_test
  echo "export DEPFW_TEST_POSTGRES_URL=postgres://depfw:$password@127.0.0.1:$port/depfw_test"
  echo "export DEPFW_TEST_POSTGRES_DIR=$dir"
  ;;
stop)
  dir="${2:?usage: $0 stop DIR}"
  if [ -d "$dir/data" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  case "$dir" in
  */depfw-pg.*) rm -rf "$dir" ;;
  esac
  ;;
*)
  echo "usage: $0 install | start | stop DIR" >&2
  exit 2
  ;;
esac
