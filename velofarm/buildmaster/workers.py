"""Workers from the spec; each password is a secret named worker-<name>."""

from __future__ import annotations

from typing import Any

from buildbot.plugins import util, worker

from velofarm.buildmaster.farmplan import COORDINATOR, COORDINATOR_MAX_BUILDS
from velofarm.secretstore import worker_secret_name
from velofarm.spec.farm import Spec


def all_workers(spec: Spec) -> list[Any]:
    result: list[Any] = [worker.LocalWorker(COORDINATOR, max_builds=COORDINATOR_MAX_BUILDS)]
    for w in spec.workers.values():
        result.append(worker.Worker(w.name, util.Secret(worker_secret_name(w.name)), max_builds=w.max_builds,
                                    properties={"velofarm_platforms": list(w.platforms)}))
    return result
