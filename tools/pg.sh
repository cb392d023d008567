#!/bin/sh
# A private PostgreSQL for development and tests: loopback only, its own
# data directory and port, run as the postgres user when invoked as root.
#
#   tools/pg.sh start DIR PORT [DBNAME]   init if needed, start, create db;
#                                         prints the connection string
#   tools/pg.sh stop DIR                  fast shutdown
#   tools/pg.sh status DIR
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
    echo "usage: $0 start|stop|status DIR [PORT] [DBNAME]" >&2; exit 2; }

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    port=${3:?port}
    db=${4:-avatar}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    sock="$dir/run"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir/data" "$sock"
        [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
        chmod 700 "$dir/data"
        as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust \
            -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2; exit 1; }
    fi
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir" "$sock" 2>/dev/null
    if ! as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
            -t 30 -o "-c listen_addresses=127.0.0.1 -p $port \
            -c unix_socket_directories=$sock -c fsync=off \
            -c max_connections=200" start >/dev/null || {
            tail -20 "$dir/postgres.log" >&2; exit 1; }
    fi
    if ! as_pg "$PGBIN/../bin/psql" -h "$sock" -p "$port" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'" postgres \
        | grep -q 1; then
        as_pg "$PGBIN/../bin/psql" -h "$sock" -p "$port" -U postgres -qc \
            "CREATE DATABASE \"$db\"" postgres >/dev/null
    fi
    echo "host=127.0.0.1 port=$port dbname=$db user=postgres"
    ;;
stop)
    if [ -f "$dir/data/PG_VERSION" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null \
            2>&1 || true
    fi
    ;;
status)
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" status
    ;;
*)
    echo "usage: $0 start|stop|status DIR [PORT] [DBNAME]" >&2; exit 2 ;;
esac
