"""A Docker worker's farm.toml fields, validated on load: where containers run, which image.

    [workers.linux-docker-1]
    docker_host = "unix:///var/run/docker.sock"   # or "tcp://builds.internal:2376" with docker_tls
    docker_tls = { ca = "docker-ca.pem", cert = "docker-cert.pem", key = "docker-key.pem" }
    image = "velofarm-builder:0df14f84340d"       # what `velofarm image build` printed
    platforms = ["linux-x86_64", "linux-arm64"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from velofarm.errors import SpecError

DOCKER_FIELDS = ("docker_host", "docker_tls", "image", "network", "master_host")
NETWORKS = ("bridge", "host")  # or the name of a user-defined Docker network
NETWORK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TLS_PARTS = ("ca", "cert", "key")
# A Docker reference: [registry[:port]/]path[:tag][@sha256:digest]; nothing a shell would read.
IMAGE_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                      r"(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")
HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class DockerSettings:
    """Where a Docker worker's containers run and from which image."""

    docker_host: str  # unix:///var/run/docker.sock or tcp://HOST:2376 (TLS)
    image: str  # the builder image tag `velofarm image build` printed
    tls: tuple[str, str, str] | None = None  # (ca, cert, key) file names in the secrets folder
    network: str = "bridge"  # "host" lets a container reach a master bound to 127.0.0.1; or a network's name
    master_host: str = ""  # how a container reaches the master's pb_port; "" = master.public_host


def docker_settings(body: dict[str, Any], where: str, served_os: dict[str, str]) -> DockerSettings | None:
    """The worker's Docker settings, None for a plain worker; SpecError naming the field otherwise.
    `served_os`: the OS each platform it serves builds on (a container is Linux)."""
    present = [key for key in DOCKER_FIELDS if key in body]
    if not present:
        return None
    for platform, os_name in served_os.items():
        if os_name != "linux":
            raise SpecError(f"{where}.platforms: '{platform}' builds on {os_name}, but a Docker worker runs Linux "
                            "containers; serve it from a plain worker")
    if "docker_host" not in body:
        raise SpecError(f"{where}.{present[0]}: only for Docker workers; add docker_host = "
                        "\"unix:///var/run/docker.sock\" (or tcp://HOST:2376 with docker_tls), or remove it")
    host = _docker_host(body["docker_host"], f"{where}.docker_host")
    image = body.get("image")
    if not isinstance(image, str) or not image:
        raise SpecError(f"{where}.image: missing; set it to the tag `velofarm image build` printed, "
                        "e.g. \"velofarm-builder:0df14f84340d\"")
    if not IMAGE_RE.match(image):
        raise SpecError(f"{where}.image: '{image}' is not a Docker image reference (lowercase name, optional "
                        ":tag and @sha256:digest; no spaces or shell characters)")
    tls = _tls(body.get("docker_tls"), f"{where}.docker_tls")
    if host.startswith("tcp://") and tls is None:
        raise SpecError(f"{where}.docker_tls: docker_host '{host}' is TCP; an engine reachable over TCP without "
                        "TLS gives root on its machine to anyone who can connect. Set docker_tls = { ca = ..., "
                        "cert = ..., key = ... } (files in the secrets folder)")
    if host.startswith("unix://") and tls is not None:
        raise SpecError(f"{where}.docker_tls: only for a tcp:// docker_host; remove it")
    network = body.get("network", "bridge")
    if not isinstance(network, str) or network == "none" or not NETWORK_RE.match(network):
        raise SpecError(f"{where}.network: '{network}' is not one of {', '.join(NETWORKS)} or the name of a "
                        "Docker network (`docker network create NAME`) that reaches the master")
    master_host = body.get("master_host", "")
    if not isinstance(master_host, str) or (master_host and not HOST_RE.match(master_host)):
        raise SpecError(f"{where}.master_host: '{master_host}' is not a host name or address")
    return DockerSettings(docker_host=host, image=image, tls=tls, network=str(network), master_host=master_host)


def _docker_host(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{where}: must be a string such as \"unix:///var/run/docker.sock\"")
    url = urlsplit(value)
    if url.scheme == "unix" and not url.netloc and url.path.startswith("/") and not url.query:
        return value
    if url.scheme == "tcp" and url.hostname and HOST_RE.match(url.hostname) and not url.path.strip("/"):
        try:
            port = url.port
        except ValueError:
            port = None
        if port:
            return value
    raise SpecError(f"{where}: '{value}' is not a Docker engine address; use unix:///var/run/docker.sock "
                    "or tcp://HOST:2376")


def _tls(value: Any, where: str) -> tuple[str, str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(TLS_PARTS):
        raise SpecError(f"{where}: must be {{ ca = \"FILE\", cert = \"FILE\", key = \"FILE\" }} naming files "
                        "in the secrets folder")
    for part in TLS_PARTS:
        name = value[part]
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise SpecError(f"{where}.{part}: '{name}' must be a file name in the secrets folder")
    return (value["ca"], value["cert"], value["key"])


def check_tls_files(workers: dict[str, Any], secrets_dir: Path, where: str) -> None:
    """Every TLS file a Docker worker names is in the secrets folder."""
    for worker in workers.values():
        docker = worker.docker
        if docker is None or docker.tls is None:
            continue
        for part, name in zip(TLS_PARTS, docker.tls, strict=True):
            if not (secrets_dir / name).is_file():
                raise SpecError(f"{where}: workers.{worker.name}.docker_tls.{part}: {secrets_dir / name} is "
                                "missing; copy the engine's TLS file there (mode 0600)")
