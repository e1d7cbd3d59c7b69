"""Build containers of a local farm's Docker workers, as the engine lists them."""

from __future__ import annotations

import subprocess

from velofarm.cli.localfarm import LocalFarm


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=120).stdout


def container_prefix(worker: str) -> str:
    # Buildbot names a worker's container buildbot-<worker>-<master hash>, with '_' made '-'.
    return f"buildbot-{worker}-".replace("_", "-")


def containers_of(farm: LocalFarm) -> list[str]:
    """Every container (running or not) of this farm's Docker workers."""
    names = []
    for worker in farm.docker_workers:
        names += docker("ps", "-a", "--filter", f"name={container_prefix(worker)}", "--format", "{{.Names}}").split()
    return names


def volumes_of(farm: LocalFarm) -> list[str]:
    return [v for v in docker("volume", "ls", "--format", "{{.Name}}").split()
            if any(v.startswith(f"velofarm-{w}-") for w in farm.docker_workers)]
