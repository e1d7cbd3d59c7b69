"""The Docker command line, run with subprocess: is an engine there, does an image exist, run a stage."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence

from velofarm.errors import ImageError

ENGINE_TIMEOUT = 15  # seconds `docker info` may take before the engine counts as unreachable

Progress = Callable[[str], None]


def docker_cli() -> str:
    path = shutil.which("docker")
    if not path:
        raise ImageError("docker: not on PATH; install the Docker CLI (apt-get install docker.io) and start the engine")
    return path


def engine_problem(docker_host: str = "") -> str:
    """'' when a Docker engine answers, else why not (for one line in the demo and the doctor)."""
    path = shutil.which("docker")
    if not path:
        return "no docker command on PATH"
    argv = [path, *(["-H", docker_host] if docker_host else []), "info", "--format", "{{.ServerVersion}}"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=ENGINE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"`docker info` got no answer within {ENGINE_TIMEOUT} s"
    if out.returncode != 0:
        return (out.stderr.strip().splitlines() or [f"`docker info` exited {out.returncode}"])[-1]
    return ""


def image_id(ref: str) -> str:
    """The image's ID (sha256:...) when the engine has `ref`, else ''."""
    out = subprocess.run([docker_cli(), "image", "inspect", "--format", "{{.Id}}", ref],
                         capture_output=True, text=True, check=False, timeout=60)
    return out.stdout.strip() if out.returncode == 0 else ""


def run_stage(what: str, argv: Sequence[str], progress: Progress, *, input_file: str | None = None,
              timeout: float = 3600, env: dict[str, str] | None = None) -> str:
    """Run one stage's command; its output is kept for the error, not streamed (one line per stage)."""
    progress(what)
    stdin = open(input_file, "rb") if input_file else subprocess.DEVNULL  # noqa: SIM115
    try:
        out = subprocess.run(list(argv), stdin=stdin, capture_output=True, check=False, timeout=timeout,
                             env={**os.environ, **env} if env else None)
    except subprocess.TimeoutExpired:
        raise ImageError(f"{what}: no end after {timeout:.0f} s ({' '.join(argv[:3])} ...)") from None
    finally:
        if input_file:
            stdin.close()  # type: ignore[union-attr]
    text = (out.stdout + out.stderr).decode("utf-8", "replace")
    if out.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise ImageError(f"{what}: failed (exit {out.returncode}):\n{tail}")
    return text
