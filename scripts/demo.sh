#!/usr/bin/env bash
# Runs uuidgate in front of an embedded PostgreSQL: installs what is missing,
# builds, starts a private cluster under .demo/ loaded with a small PhoenixKit
# V39 sample, and runs uuidgate in the foreground (Ctrl-C stops both).
#
#   scripts/demo.sh            reuse .demo/ if it exists
#   scripts/demo.sh --reset    start from a fresh V39 sample
# Environment: PORT (uuidgate, default 6432), DEMO_PG_PORT (default 6433),
# DEMO_SCALE (sample size, default 1), UUIDGATE_UPSTREAM (use that database
# instead of the embedded one).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${PORT:-6432}
PG_PORT=${DEMO_PG_PORT:-6433}
SCALE=${DEMO_SCALE:-1}

scripts/deps.sh
scripts/build.sh

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# PostgreSQL refuses to run as root; as root the cluster belongs to the
# postgres user, which must be able to reach the data directory.
DEMO=$ROOT/.demo
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$ROOT"; then
  DEMO=/var/tmp/uuidgate-demo
fi
[ "${1:-}" = "--reset" ] && rm -rf "$DEMO"
PGDATA=$DEMO/pgdata
BINDIR=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

if [ -z "${UUIDGATE_UPSTREAM:-}" ]; then
  fresh=no
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$DEMO"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DEMO"
    echo "== creating an embedded PostgreSQL cluster in $PGDATA"
    as_pg "$BINDIR/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
    cat >> "$PGDATA/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DEMO'
CONF
    fresh=yes
  fi
  as_pg "$BINDIR/pg_ctl" -D "$PGDATA" -l "$DEMO/postgres.log" -w start >/dev/null
  trap 'as_pg "$BINDIR/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null 2>&1 || true' EXIT
  export UUIDGATE_UPSTREAM="host=127.0.0.1 port=$PG_PORT dbname=app user=postgres"
  if [ $fresh = yes ]; then
    "$BINDIR/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE app"
    if [ -x tests/fixtures/load_v39.sh ]; then
      echo "== loading a PhoenixKit V39 sample (scale $SCALE)"
      tests/fixtures/load_v39.sh "$UUIDGATE_UPSTREAM" "$SCALE"
    fi
  fi
fi

cat <<MSG
== uuidgate listens on 127.0.0.1:$PORT; connect through it with:

   psql "host=127.0.0.1 port=$PORT dbname=app user=postgres"

   (migration by hand: build/uuidgate migrate status --upstream "$UUIDGATE_UPSTREAM")
   Ctrl-C stops uuidgate and the embedded database.

MSG
build/uuidgate --listen "127.0.0.1:$PORT" || true
