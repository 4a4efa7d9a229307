#!/usr/bin/env bash
# Entrypoint of the postgres:16 stand-in (deploy/standins/postgres/Dockerfile): the part of the
# official image's docker-entrypoint.sh that rnnbot's compose file relies on.
set -Eeuo pipefail

# `docker run postgres:16 -c key=value`: options for postgres
if [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    # as root: make the data directory (a fresh volume is owned by root) and the socket directory
    # the postgres user's, then run this script again as that user
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 3777 /var/run/postgresql
    exec env HOME=/var/lib/postgresql setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_USER:=postgres}"
    : "${POSTGRES_DB:=$POSTGRES_USER}"
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
        exit 1
    fi
    echo "initialising the database cluster in $PGDATA (PostgreSQL $(postgres --version | awk '{print $3}'))"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    # initdb only allowed 127.0.0.1 and ::1: every other address, with a password
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        # a server for the CREATE DATABASE only, on a private socket: a healthcheck's pg_isready
        # must not see it and report the database ready before it exists
        initsock=$(mktemp -d)
        pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$initsock" -w -s start
        psql -X -q -v ON_ERROR_STOP=1 -h "$initsock" --username "$POSTGRES_USER" --dbname postgres \
            --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
        pg_ctl -D "$PGDATA" -m fast -w -s stop
        rmdir "$initsock"
    fi
    echo "database $POSTGRES_DB of user $POSTGRES_USER created"
fi

# postgres as PID 1: it handles SIGTERM/SIGINT/SIGQUIT itself and reaps its own children
exec "$@"
