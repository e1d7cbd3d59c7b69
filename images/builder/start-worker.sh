#!/bin/sh
# Start a buildbot worker for this one container's life, then connect to the master.
# The master (velofarm's DockerLatentWorker) sets BUILDMASTER, BUILDMASTER_PORT and WORKERNAME,
# and copies the worker password into the container as a file before starting it, so that
# `docker inspect` shows no password (a WORKERPASS variable still works, for plain Buildbot).
set -eu
password_file=/home/builder/.worker-password
if [ -z "${WORKERPASS:-}" ] && [ -r "$password_file" ]; then
    WORKERPASS=$(cat "$password_file")
fi
rm -f "$password_file"
: "${WORKERPASS:?no worker password: neither WORKERPASS nor $password_file}"
buildbot-worker create-worker --force --umask=0o022 --maxretries=3 . \
    "$BUILDMASTER:$BUILDMASTER_PORT" "$WORKERNAME" "$WORKERPASS" >/dev/null
unset WORKERPASS
exec twistd --nodaemon --no_save --pidfile= --logfile=- -y buildbot.tac
