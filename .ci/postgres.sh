#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster for the tests and prints its URL.
#   .ci/postgres.sh start DIR PORT   -> initdb + start, prints postgres://postgres@127.0.0.1:PORT/postgres
#   .ci/postgres.sh stop DIR
# Installs Debian's postgresql-15 when it is missing. Runs the server as the `postgres` user (initdb refuses root).
set -euo pipefail
action=$1 dir=$2 port=${3:-5433}
bin=/usr/lib/postgresql/15/bin

run_as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }

case "$action" in
  start)
    if [ ! -x "$bin/pg_ctl" ]; then
      echo "Installing PostgreSQL 15 from Debian's packages..." >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq postgresql-15 >&2
    fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      run_as_postgres "$bin/initdb -D '$dir' -U postgres --auth=trust --locale=C.UTF-8 --encoding=UTF8" >/dev/null
    fi
    run_as_postgres "$bin/pg_ctl -D '$dir' -l '$dir/server.log' -o '-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off' -w start" >&2
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    run_as_postgres "$bin/pg_ctl -D '$dir' -m fast -w stop" >&2
    ;;
  *)
    echo "usage: $0 start DIR [PORT] | stop DIR" >&2
    exit 2
    ;;
esac
