#!/usr/bin/env bash
# Back up what a velofarm master cannot rebuild: the database and the artifact store (and the
# releases folder of the directory publisher). farm.toml and workers/registry.toml live in git;
# back the secrets folder up separately, encrypted.
#
#   backup.sh FARM_DIR DEST     e.g. backup.sh /srv/velofarm /var/backups/velofarm
#
# The database is read from FARM_DIR/secrets/db_url (PostgreSQL: pg_dump, custom format;
# restore with pg_restore --clean --dbname=...) or FARM_DIR/master/state.sqlite (SQLite's
# online backup). The password goes to pg_dump in its environment, never on a command line.
set -euo pipefail
FARM="${1:?usage: backup.sh FARM_DIR DEST}"
DEST="${2:?usage: backup.sh FARM_DIR DEST}"
MASTER="${VELOFARM_MASTER_DIR:-$FARM/master}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
umask 077
mkdir -p "$DEST"

if [ -s "$FARM/secrets/db_url" ]; then
    eval "$(python3 - "$FARM/secrets/db_url" <<'PY'
import shlex
import sys
from urllib.parse import unquote, urlsplit

url = urlsplit(open(sys.argv[1], encoding="utf-8").read().strip())
for name, value in (("PGHOST", url.hostname), ("PGPORT", url.port), ("PGUSER", url.username),
                    ("PGPASSWORD", url.password), ("PGDATABASE", url.path.lstrip("/"))):
    if value:
        print(f"export {name}={shlex.quote(unquote(str(value)))}")
PY
)"
    pg_dump --format=custom --file="$DEST/velofarm-db-$STAMP.dump"
    echo "database: $DEST/velofarm-db-$STAMP.dump"
elif [ -f "$MASTER/state.sqlite" ]; then
    python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \
        "$MASTER/state.sqlite" "$DEST/velofarm-db-$STAMP.sqlite"
    echo "database: $DEST/velofarm-db-$STAMP.sqlite"
else
    echo "backup.sh: no secrets/db_url and no $MASTER/state.sqlite: which database does this farm use?" >&2
    exit 1
fi

for folder in "$MASTER/artifacts" "$FARM/releases"; do
    if [ -d "$folder" ]; then
        archive="$DEST/velofarm-$(basename "$folder")-$STAMP.tar.gz"
        tar -C "$(dirname "$folder")" -czf "$archive" "$(basename "$folder")"
        echo "$(basename "$folder"): $archive"
    fi
done
