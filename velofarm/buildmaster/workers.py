"""Workers from the spec; each password is a secret named worker-<name>, except Docker workers'.

A Docker worker is Buildbot's DockerLatentWorker: a fresh container for each build, removed when
the build ends whatever the result. Its password is random, made by the master for each container
and held only in memory; it reaches the container as a file copied in before the container starts,
not as the WORKERPASS variable `docker inspect` would show.
"""

from __future__ import annotations

import io
import secrets
import tarfile
from typing import Any

from buildbot.interfaces import LatentWorkerCannotSubstantiate
from buildbot.plugins import util, worker
from twisted.internet import defer, threads
from twisted.python import failure, log

from velofarm.buildmaster.farmplan import COORDINATOR, COORDINATOR_MAX_BUILDS, buildbot_worker_names
from velofarm.secretstore import worker_secret_name
from velofarm.spec.docker import DockerSettings
from velofarm.spec.farm import Spec

CONTAINER_HOME = "/home/builder"
PASSWORD_FILE = ".worker-password"  # images/builder/start-worker.sh reads and deletes it
# A container that starts but never connects (wrong master address, a firewall) fails after this.
CONNECT_TIMEOUT = 120


def all_workers(spec: Spec, secrets_dir: str = "") -> list[Any]:
    result: list[Any] = [worker.LocalWorker(COORDINATOR, max_builds=COORDINATOR_MAX_BUILDS)]
    for w in spec.workers.values():
        props = {"velofarm_platforms": list(w.platforms)}
        if w.docker is None:
            result.append(worker.Worker(w.name, util.Secret(worker_secret_name(w.name)), max_builds=w.max_builds,
                                        properties=props))
            continue
        master_host = w.docker.master_host or ("127.0.0.1" if w.docker.network == "host" else spec.master.public_host)
        for name in buildbot_worker_names(w):
            result.append(ContainerWorker(name, w.docker, f"{master_host}:{spec.master.pb_port}", secrets_dir,
                                          properties=props))
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


def cache_volumes(name: str) -> list[Any]:
    """The cargo registry and target cache of this worker and platform, as named volumes."""
    prefix = f"velofarm-{name}-%(prop:platform)s"
    return [util.Interpolate(f"{prefix}-registry:{CONTAINER_HOME}/.cargo/registry"),
            util.Interpolate(f"{prefix}-target:{CONTAINER_HOME}/worker/.cargo-target")]


def tls_config(settings: DockerSettings, secrets_dir: str) -> Any:
    if settings.tls is None:
        return None
    from docker.tls import TLSConfig
    ca, cert, key = (f"{secrets_dir}/{name}" for name in settings.tls)
    return TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)


class ContainerWorker(worker.DockerLatentWorker):
    """DockerLatentWorker with a hidden password, bounded start failures and the image's digest."""

    def __init__(self, name: str, settings: DockerSettings, master_address: str, secrets_dir: str,
                 **kwargs: Any) -> None:
        hostconfig: dict[str, Any] = {"network_mode": settings.network, "init": True}
        super().__init__(name, None, docker_host=settings.docker_host, image=settings.image,
                         tls=tls_config(settings, secrets_dir), volumes=cache_volumes(name), hostconfig=hostconfig,
                         masterFQDN=master_address, autopull=False, alwaysPull=False, build_wait_timeout=0,
                         missing_timeout=CONNECT_TIMEOUT, **kwargs)

    def createEnvironment(self, build: Any = None) -> dict[str, str]:
        env = dict(super().createEnvironment(build))
        env.pop("WORKERPASS", None)  # delivered as a file instead (see _getDockerClient)
        return env

    def _getDockerClient(self, client_args: dict[str, Any]) -> Any:
        return _PasswordDelivery(super()._getDockerClient(client_args), self.password)

    @defer.inlineCallbacks
    def start_instance(self, build: Any) -> Any:
        # A new password for every container, registered before it starts: one that a build read
        # from its container's buildbot.tac is refused once that container is gone.
        # (getRandomPass would hand back the current one: the worker is already substantiating.)
        self.password = secrets.token_urlsafe(24)
        if self.registration is not None:
            yield self.registration.update(self, self.master.config)
        result = yield super().start_instance(build)
        digest = yield threads.deferToThread(self._thd_image_digest)
        if digest:
            build.setProperty("builder_image_digest", digest, "ContainerWorker")
            build.setProperty("builder_image", self.image, "ContainerWorker")
        return result

    def _thd_image_digest(self) -> str:
        client = self._getDockerClient(self._curr_client_args)
        try:
            return str(client.inspect_container(self.instance["Id"])["Image"])
        finally:
            client.close()

    def _substantiation_failed(self, why: failure.Failure) -> Any:
        # Buildbot retries a container that failed to start forever (build RETRY, re-queued).
        # A start failure is a configuration or engine problem: fail this platform's build, once,
        # naming the worker, the image and the reason.
        message = f"Docker worker {self.name}: image {self.image} on {self.docker_host}: "
        if not str(why.value).startswith(message):
            why = failure.Failure(LatentWorkerCannotSubstantiate(
                message + start_problem(why, self.masterFQDN, self.docker_host)))
            log.msg(str(why.value))
        return super()._substantiation_failed(why)


def start_problem(why: failure.Failure, master_address: str, docker_host: str = "") -> str:
    """Why a build container did not become a worker, with what to do about it."""
    reason = str(why.value) or why.type.__name__
    if why.check(defer.TimeoutError):
        return (f"the container started but did not connect to the master within {CONNECT_TIMEOUT} s; "
                f"check that it can reach {master_address}")
    if "not found" in reason and "Image" in reason:
        return (f"the build container could not start: {reason} Build it with `velofarm image build` and set "
                "the worker's image to the tag it prints")
    if "server API version" in reason:  # docker-py's first request: no engine there, or it never answered
        return (f"the build container could not start: {reason}; the engine did not answer: check that it runs "
                f"and that the master reaches it (`docker -H {docker_host} info`)")
    return f"the build container could not start: {reason}"


class _PasswordDelivery:
    """A docker APIClient whose start() first copies the worker password into the container."""

    def __init__(self, client: Any, password: str) -> None:
        self._client, self._password = client, password

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def start(self, container: Any, *args: Any, **kwargs: Any) -> Any:
        data = self._password.encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(PASSWORD_FILE)
            info.size, info.mode, info.uid, info.gid = len(data), 0o400, 1000, 1000
            tar.addfile(info, io.BytesIO(data))
        self._client.put_archive(container, CONTAINER_HOME, buf.getvalue())
        return self._client.start(container, *args, **kwargs)
