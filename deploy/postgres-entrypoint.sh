#!/bin/sh
# Create the cluster on first start (user and database POSTGRES_USER/POSTGRES_DB, password
# POSTGRES_PASSWORD), then run PostgreSQL in the foreground. The data folder is a named volume.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (deploy/.env)}"
USER_NAME="${POSTGRES_USER:-velofarm}"
DB_NAME="${POSTGRES_DB:-velofarm}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$USER_NAME" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    createdb --username="$USER_NAME" --owner="$USER_NAME" "$DB_NAME"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
unset POSTGRES_PASSWORD
exec postgres -D "$PGDATA" -c listen_addresses='*'
