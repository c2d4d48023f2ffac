#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages if missing and starts a throw-away cluster for the
# tests on 127.0.0.1:55432 (data in /tmp, trust auth). Prints the URL to use as
# IYS_RELAY_TEST_PG_URL. Safe to run again: an already running cluster is reused.
set -euo pipefail
PGPORT="${PGPORT:-55432}"
PGDATA_DIR="${PGDATA_DIR:-/tmp/iys-relay-pg}"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/postgres" ]; then
  echo "installing PostgreSQL from Debian packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
BIN="$(pg_bin)"

as_pg() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    mkdir -p "$PGDATA_DIR"
    [ "$(id -u)" = "0" ] && chown postgres:postgres "$PGDATA_DIR"
    as_pg "$BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  # A cluster left behind by a machine that was stopped mid-run starts with crash recovery,
  # which syncs the whole data directory first: minutes, not pg_ctl's default minute.
  as_pg "$BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 600 \
    -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" start >&2
fi
# Every test creates its own database (t_<uuid>) and leaves it behind; on a machine that runs
# the suite again and again they add up to gigabytes. Drop the earlier runs' leftovers that
# nothing is connected to (a database in use refuses, and is left alone). From / so that psql,
# run as the postgres user, does not warn about a working directory it cannot enter.
cd /
as_pg "$BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -Atqc \
  "select datname from pg_database where datname like 't\_%' and datname not in
     (select datname from pg_stat_activity where datname is not null)" 2>/dev/null |
  while read -r db; do
    as_pg "$BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\"" \
      >/dev/null 2>&1 || true
  done
echo "postgres://postgres@127.0.0.1:$PGPORT/postgres"
