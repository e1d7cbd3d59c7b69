#!/bin/sh
# Start a velofarm worker in the foreground (the compose file's Linux worker).
#
#   VELOFARM_MASTER       host:port of the master's PB port (e.g. master:9989)
#   VELOFARM_WORKER_NAME  the worker's name (velofarm worker add NAME ...)
#   VELOFARM_PASSWORD_FILE  the file holding its password (default /run/secrets/worker-password)
#   VELOFARM_WORKER_DIR   the worker's folder (default /srv/worker)
set -eu
: "${VELOFARM_MASTER:?set VELOFARM_MASTER to host:port of the master}"
: "${VELOFARM_WORKER_NAME:?set VELOFARM_WORKER_NAME to the worker name given to velofarm worker add}"
PASSWORD_FILE="${VELOFARM_PASSWORD_FILE:-/run/secrets/worker-password}"
DIR="${VELOFARM_WORKER_DIR:-/srv/worker}"
[ -s "$PASSWORD_FILE" ] || { echo "velofarm-worker: $PASSWORD_FILE is missing or empty; mount secrets/worker-$VELOFARM_WORKER_NAME there" >&2; exit 1; }

if [ ! -f "$DIR/buildbot.tac" ]; then
    # The password never goes on a command line: a placeholder, then buildbot.tac reads the file.
    buildbot-worker create-worker --quiet --umask=0o22 "$DIR" "$VELOFARM_MASTER" "$VELOFARM_WORKER_NAME" read-from-worker.password
    python3 - "$DIR/buildbot.tac" <<'PY'
import re
import sys

path = sys.argv[1]
line = ("passwd = open(os.path.join(basedir, 'worker.password'), encoding='utf-8').read().strip()"
        "  # velofarm: the password stays in a 0600 file")
text = open(path, encoding="utf-8").read()
text, count = re.subn(r"^passwd = .*$", lambda _: line, text, count=1, flags=re.MULTILINE)
if count != 1:
    sys.exit(f"{path}: no 'passwd = ...' line")
with open(path, "w", encoding="utf-8") as fh:
    fh.write(text)
PY
fi
(umask 077 && cp "$PASSWORD_FILE" "$DIR/worker.password")
rm -f "$DIR/twistd.pid"
exec buildbot-worker start --nodaemon "$DIR"
