"""Shared fixtures: system-package checks (skip by hand, fail in CI) and whole local farms."""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from support.containers import containers_of, docker, volumes_of

from velofarm.cli.localfarm import LocalFarm, write_farm

REPO = Path(__file__).resolve().parent.parent
FARM_TOML = REPO / "farm.toml"
IN_CI = os.environ.get("CI", "").lower() == "true"
HOST_PLATFORMS = ["linux-x86_64", "windows-x86_64-gnu", "linux-arm64"]


def need(program: str, package: str) -> str:
    """The program's path; skip when it is missing (fail in CI, where .ci/run installs `package`)."""
    found = shutil.which(program) or (program if os.path.isabs(program) and os.access(program, os.X_OK) else None)
    if found:
        return found
    message = f"{program} is missing: apt-get install {package}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: .ci/run should have installed it)")
    pytest.skip(message)


def need_host_toolchains() -> None:
    """Everything the platforms this host builds need (linux-gnu natively, windows-gnu via mingw,
    linux-arm64 via Debian's multiarch cross toolchain and qemu-user)."""
    need("cargo", "cargo (or rustup)")
    need("/usr/bin/cargo", "cargo")
    need("/usr/bin/rustc", "rustc")
    need("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")
    need("/usr/lib/wine/wine64", "wine64")
    if not Path("/usr/lib/rustlib/x86_64-pc-windows-gnu/lib").is_dir():
        need("/usr/lib/rustlib/x86_64-pc-windows-gnu/lib/missing", "libstd-rust-dev-windows")
    need("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross")
    need("qemu-aarch64", "qemu-user")
    if not Path("/usr/lib/rustlib/aarch64-unknown-linux-gnu/lib").is_dir():
        need("/usr/lib/rustlib/aarch64-unknown-linux-gnu/lib/missing", "libstd-rust-dev:arm64 (after dpkg --add-architecture arm64)")


def need_docker() -> None:
    """A Docker engine that answers (skip by hand without one; fail in CI, where one runs)."""
    from velofarm.images.engine import engine_problem
    need("docker", "docker.io")
    problem = engine_problem()
    if problem:
        message = f"no Docker engine reachable: {problem}; start it (systemctl start docker)"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: the CI machine runs a Docker engine)")
        pytest.skip(message)


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` mounted at `path` (writes past it fail with ENOSPC), unmounted afterwards
    whatever happens. Mounting needs root (skip by hand without it; fail in CI, which runs as root)."""
    path.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                         capture_output=True, text=True, check=False, timeout=30)
    if out.returncode != 0:
        message = f"cannot mount a {size} tmpfs at {path} ({out.stderr.strip()}): run the test as root"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: the CI machine runs tests as root)")
        pytest.skip(message)
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True, check=False, timeout=30).returncode:
            subprocess.run(["umount", "--lazy", str(path)], check=True, timeout=30)  # a process still in it
        assert str(path) not in Path("/proc/mounts").read_text(), f"{path} is still mounted"


@pytest.fixture(autouse=True)
def _keep_umask() -> Iterator[None]:
    """A test that loads a master's config in this process gets the master's umask 077
    (buildmaster/privacy.py); put the test process's own back so no other test inherits it."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


@pytest.fixture
def make_farm(tmp_path: Path) -> Iterator[Callable[..., LocalFarm]]:
    """Build local farms (master + real worker processes on loopback); all are stopped afterwards."""
    farms: list[LocalFarm] = []

    def make(platforms: list[str] | None = None, name: str = "farm", **kwargs: Any) -> LocalFarm:
        need_host_toolchains()
        farm = write_farm(tmp_path / name, FARM_TOML, platforms or HOST_PLATFORMS, **kwargs)
        farms.append(farm)
        return farm

    yield make
    for farm in farms:
        farm.stop_all()
        log = farm.master_dir / "twistd.log"
        if log.exists() and os.environ.get("VELOFARM_KEEP_LOGS"):
            shutil.copy(log, REPO / "test-artifacts" / f"{farm.root.name}-twistd.log")


@pytest.fixture
def docker_farm(tmp_path: Path) -> Iterator[Callable[..., LocalFarm]]:
    """Farms whose workers are Docker latent workers; afterwards no container or volume of theirs is left."""
    farms: list[LocalFarm] = []

    def make(image: str, platforms: list[str], name: str = "farm", **kwargs: Any) -> LocalFarm:
        farm = write_farm(tmp_path / name, FARM_TOML, platforms, docker_image=image, **kwargs)
        farms.append(farm)
        farm.init_repo()
        farm.start_all()
        return farm

    yield make
    for farm in farms:
        farm.stop_all()
        left = containers_of(farm)
        for name in left:
            docker("rm", "--force", "--volumes", name)
        for volume in volumes_of(farm):
            docker("volume", "rm", "--force", volume)
        assert not left, f"containers left behind after the master stopped: {left}"


@pytest.fixture(scope="session")
def builder_image() -> str:
    """The builder image, built once per machine and reused (its tag is the hash of its inputs)."""
    from velofarm.images.builder import build_builder
    need_docker()
    need("debootstrap", "debootstrap")
    return build_builder(lambda line: print(line, flush=True)).tag
