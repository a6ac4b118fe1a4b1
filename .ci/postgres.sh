# shellcheck shell=bash
# A private PostgreSQL cluster on 127.0.0.1 for the test suite, from Debian's package.
# start_postgres exports OPENARTS_TEST_POSTGRES_URL; stop_postgres removes the cluster.

PG_PORT="${PG_PORT:-54329}"

_pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$found" ]; then
    echo "postgres: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    found=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$found"
}

start_postgres() {
  local bin
  bin=$(_pg_bin)
  PG_DIR=$(mktemp -d /tmp/openarts-pg.XXXXXX)
  export PG_DIR
  local run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_DIR"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c max_connections=200" start >/dev/null
  export OPENARTS_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "postgres: running on 127.0.0.1:$PG_PORT" >&2
}

stop_postgres() {
  [ -n "${PG_DIR:-}" ] || return 0
  local bin run=()
  bin=$(_pg_bin)
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
