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


def other_worker_than(first_builder: str, builder_name: str) -> Any:
    """Buildbot `nextWorker` for the two builders of a reproducibility check (`build-P`, `build-P-again`).

    Each picks a worker that is not building the same tag on its sibling; when every free worker is,
    it waits while another connected worker of the platform is busy, and only uses the same worker
    (in its own builder folder and cargo target folder) when no other worker is connected.
    """
    sibling = f"{first_builder}-again" if builder_name == first_builder else first_builder

    def choose(builder: Any, candidates: list[Any], request: Any) -> Any:
        if not candidates:
            return None
        other = builder.master.botmaster.builders.get(sibling)
        tag = request.properties.getProperty("tag")
        busy = {b.getProperty("workername") for b in (other.building if other else [])
                if b.getProperty("tag") == tag}
        free = [c for c in candidates if c.worker.workername not in busy]
        if free:
            return free[0]
        connected_elsewhere = [w for w in builder.workers if w.worker.workername not in busy]
        return None if connected_elsewhere else candidates[0]

    return choose
