#!/bin/sh
# dockerd for build containers, listening only on a unix socket in /run/engine (a volume shared
# with the master, whose velofarm user gets group access: gid 10001).
set -eu
mkdir -p /run/engine
rm -f /run/engine/docker.sock /var/run/docker.pid
exec dockerd --host=unix:///run/engine/docker.sock --group=10001 --data-root=/var/lib/docker
