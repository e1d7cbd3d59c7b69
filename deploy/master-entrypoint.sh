#!/bin/sh
# Start a velofarm master in the foreground (container entrypoint; also usable by hand).
#
#   VELOFARM_SPEC        farm.toml (default /srv/velofarm/farm.toml)
#   VELOFARM_MASTER_DIR  the master's folder (default: master/ beside farm.toml)
#
# `velofarm master-create` writes buildbot.tac and master.cfg and runs `buildbot upgrade-master`:
# it creates the database on the first start and migrates it after an upgrade (back it up first).
set -eu
SPEC="${VELOFARM_SPEC:-/srv/velofarm/farm.toml}"
MASTER="${VELOFARM_MASTER_DIR:-$(dirname "$SPEC")/master}"

velofarm master-create "$MASTER" --spec "$SPEC"
cd "$MASTER"
# A pid file left by a killed container names pid 1, which is alive (it is us): twistd would
# refuse to start. Nothing else runs this master here, so the file is stale.
rm -f twistd.pid
# twistd itself (not `buildbot start --nodaemon`, which writes no pid file) so that
# `velofarm reconfig` finds the pid and reloads the configuration without a restart.
exec twistd --nodaemon --no_save --pidfile=twistd.pid --logfile=twistd.log --python=buildbot.tac
