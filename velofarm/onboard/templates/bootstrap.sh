#!/usr/bin/env bash
# velofarm worker bootstrap for @@NAME@@ (@@OS@@), written by `velofarm worker add`.
#
# Creates a virtualenv with buildbot-worker @@VERSION@@ (the master's version), a worker folder
# bound to the master @@MASTER@@, and a @@SERVICE_KIND@@ that keeps the worker running.
# This file holds no password: pass the file that holds it with --password-file. It is copied
# to the worker folder with mode 0600 and read by buildbot.tac; it never appears on a command line.
# Safe to run again (after `velofarm worker rotate`, or to repair an install).
set -euo pipefail

NAME="@@NAME@@"
MASTER="@@MASTER@@"
VERSION="@@VERSION@@"
PLATFORMS=(@@PLATFORMS@@)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    cat <<EOF
usage: bootstrap.sh --password-file FILE [--ca-file CA.pem] [--dir DIR] [--python PYTHON]
                    [--pip-args "ARGS"] [--venv EXISTING_VENV] [--no-service]
       bootstrap.sh --doctor [--python PYTHON]

  --password-file FILE  the worker's password (secrets/worker-$NAME on the master)
  --ca-file CA.pem      the CA that signed the master's certificate: connect (PB and uploads)
                        over TLS, trusting only it (the master has pb_tls = true)
  --dir DIR             where the worker lives (default: \$HOME/velofarm-worker)
  --python PYTHON       the Python (3.9 or later) that creates the virtualenv (default: python3)
  --pip-args "ARGS"     extra arguments for pip install, e.g. "--index-url https://mirror/simple"
  --venv DIR            use this existing virtualenv; it must hold buildbot-worker $VERSION
  --no-service          install no @@SERVICE_KIND@@ (it is still written to DIR); start by hand
  --doctor              only check this machine's toolchain for: ${PLATFORMS[*]}
EOF
}

die() { echo "bootstrap.sh: error: $*" >&2; exit 1; }
step() { echo "==> $*"; }

CA_FILE="" PASSWORD_FILE="" DIR="${HOME}/velofarm-worker" PYTHON="python3" PIP_ARGS="" VENV="" SERVICE=1 DOCTOR=0
while [ $# -gt 0 ]; do
    case "$1" in
        --password-file) PASSWORD_FILE="${2:?--password-file needs a FILE}"; shift 2 ;;
        --ca-file) CA_FILE="${2:?--ca-file needs a FILE}"; shift 2 ;;
        --dir) DIR="${2:?--dir needs a folder}"; shift 2 ;;
        --python) PYTHON="${2:?--python needs a program}"; shift 2 ;;
        --pip-args) PIP_ARGS="${2?--pip-args needs its arguments in one word}"; shift 2 ;;
        --venv) VENV="${2:?--venv needs a folder}"; shift 2 ;;
        --no-service) SERVICE=0; shift ;;
        --doctor) DOCTOR=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done

# What each platform build needs here: the same check (and fix commands) as the build's
# "preflight" step (its toolchain part), from the same preflight.py.
doctor() {
    local python="$1" missing=0 p
    for p in "${PLATFORMS[@]}"; do
        "$python" "$HERE/toolchain/preflight.py" toolchain "$HERE/toolchain/$p.json" || missing=1
    done
    return "$missing"
}

if [ "$DOCTOR" = 1 ]; then
    doctor "$PYTHON"
    exit $?
fi

[ -n "$PASSWORD_FILE" ] || { usage >&2; die "--password-file FILE is required: copy secrets/worker-$NAME from the master (see README.md)"; }
[ -f "$PASSWORD_FILE" ] && [ -r "$PASSWORD_FILE" ] && [ -s "$PASSWORD_FILE" ] \
    || die "$PASSWORD_FILE: missing, unreadable or empty; copy secrets/worker-$NAME from the master"
case "$DIR" in /*) ;; *) DIR="$(pwd)/$DIR" ;; esac
# These paths go into the service file unquoted: keep them plain.
for path in "$DIR" "${VENV:-/}" "$HOME"; do
    case "$path" in *[!A-Za-z0-9._/+-]*) die "'$path' has a space or special character; choose a plain --dir (and --venv)" ;; esac
done

if [ -n "$VENV" ]; then
    case "$VENV" in /*) ;; *) VENV="$(pwd)/$VENV" ;; esac
    step "using the existing virtualenv $VENV"
else
    VENV="$DIR/venv"
    mkdir -p "$DIR"
    if [ ! -x "$VENV/bin/python" ]; then
        step "creating the virtualenv $VENV with $PYTHON"
        "$PYTHON" -m venv "$VENV"
    fi
    step "installing buildbot-worker==$VERSION"
    # PIP_ARGS is a list of words on purpose.
    # shellcheck disable=SC2086
    TLS_PACKAGES=""  # Twisted's tls: endpoint needs these (and only with --ca-file)
    [ -z "$CA_FILE" ] || TLS_PACKAGES="pyOpenSSL service-identity"
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PIP_ARGS "buildbot-worker==$VERSION" $TLS_PACKAGES
fi
FOUND="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("buildbot-worker"))' 2>/dev/null || true)"
[ "$FOUND" = "$VERSION" ] \
    || die "$VENV holds buildbot-worker '${FOUND:-none}', not $VERSION (the master's version); drop --venv, or install buildbot-worker==$VERSION there"

WORKER="$DIR/worker"
if [ -f "$WORKER/buildbot.tac" ]; then
    step "keeping the worker folder $WORKER (delete it to start over)"
else
    step "creating the worker folder $WORKER for master $MASTER"
    mkdir -p "$WORKER"
    "$VENV/bin/buildbot-worker" create-worker --quiet --umask=0o22 "$WORKER" "$MASTER" "$NAME" "@@PLACEHOLDER@@"
fi
# buildbot.tac reads the password from worker.password beside it.
"$VENV/bin/python" - "$WORKER/buildbot.tac" <<'PY'
import re
import sys

path = sys.argv[1]
line = @@READ_FILE@@
text = open(path, encoding="utf-8").read()
if line not in text:
    text, count = re.subn(r"^passwd = .*$", lambda _: line, text, count=1, flags=re.MULTILINE)
    if count != 1:
        sys.exit(f"{path}: no 'passwd = ...' line; delete the worker folder and run bootstrap.sh again")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
PY
(umask 077 && cp "$PASSWORD_FILE" "$WORKER/.worker.password.tmp" && mv -f "$WORKER/.worker.password.tmp" "$WORKER/worker.password")
chmod 600 "$WORKER/worker.password"
step "password copied to $WORKER/worker.password (mode 0600)"
if [ -n "$CA_FILE" ]; then
    [ -s "$CA_FILE" ] || die "$CA_FILE: missing or empty; copy the farm's CA certificate from the master"
    mkdir -p "$WORKER/master-ca"
    cp "$CA_FILE" "$WORKER/master-ca/ca.pem"
    # Connect over TLS (Twisted's tls: endpoint), trusting only this CA.
    "$VENV/bin/python" - "$WORKER/buildbot.tac" "$MASTER" "$WORKER/master-ca" <<'PY'
import re
import sys

path, master, ca_dir = sys.argv[1:]
host, _, port = master.rpartition(":")
conn = "tls:host=%s:port=%s:trustRoots=%s" % (host, port, ca_dir.replace("\\", "\\\\").replace(":", "\\:"))
lines = "buildmaster_host = None\nport = None\nconnection_string = %r  # velofarm: TLS" % conn
text = open(path, encoding="utf-8").read()
text, count = re.subn(r"^buildmaster_host = .*\nport = .*\nconnection_string = .*$", lambda _: lines, text,
                      count=1, flags=re.MULTILINE)
if count != 1:
    sys.exit(f"{path}: no buildmaster_host/port/connection_string lines; delete the worker folder and run again")
with open(path, "w", encoding="utf-8") as fh:
    fh.write(text)
PY
    step "TLS: the worker trusts only $WORKER/master-ca/ca.pem"
fi

RUN_AS="$(id -un)"
[ "$(id -u)" != 0 ] || echo "bootstrap.sh: warning: builds will run as root; run this as the user that owns the Rust toolchain instead" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
@@SERVICE@@

step "checking this machine's toolchain for: ${PLATFORMS[*]}"
if doctor "$VENV/bin/python"; then
    TOOLCHAIN="every platform's toolchain is here"
else
    TOOLCHAIN="MISSING toolchain items above: run their fix commands, then check again with: bash $HERE/bootstrap.sh --doctor"
fi

cat <<EOF

Worker $NAME is set up in $WORKER (master $MASTER).
  toolchain: $TOOLCHAIN
  connected? on the master: velofarm worker list; here: grep -E 'worker is ready|unauthorized' $WORKER/twistd.log
EOF
if [ "$SERVICE" = 1 ]; then
    echo "  @@STATUS_HINT@@"
else
    echo "  start it by hand: $VENV/bin/buildbot-worker start $WORKER   (service file: $SERVICE_FILE, not installed)"
fi
