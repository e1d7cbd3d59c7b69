"""Faults during a container build's upload: real engine, real builder image, real master and cargo.

- The container's network cut (`docker network disconnect`) while its archive is on the way: the
  upload resumes on a new connection once the network is back, and the stored archive is whole.
- The artifact store's disk full during the upload (a real tmpfs): the build fails naming the store,
  nothing partial is kept, the release fails naming the platform and publishes nothing.

- The engine at a tcp:// docker_host that accepts connections and never answers (hung, or a firewall
  that lets the handshake through): the platform's build ends once, naming the engine.

A killed container, a missing image and an engine whose socket is gone are in tests/test_docker.py.
"""

from __future__ import annotations

import hashlib
import random
import re
import socket
import subprocess
import tomllib
from pathlib import Path
from typing import Callable, Iterator

import pytest
from conftest import FARM_TOML, need, need_docker, small_disk
from support.containers import containers_of, docker
from support.farmtools import step_log, steps, wait_release_of
from test_docker import running_step

from velofarm.cli.localfarm import LocalFarm, wait_for, write_farm
from velofarm.spec import tomlwrite

pytestmark = [pytest.mark.integration, pytest.mark.docker]
FAILURE, EXCEPTION = 2, 4  # buildbot.process.results
PLATFORM = "linux-x86_64"
ARCHIVE = "velostream-v0.1.0-x86_64-unknown-linux-gnu.tar.gz"
THROTTLE = "1mbit"  # the container's sending rate until the cut: the ~1.5 MB archive takes ~12 s


@pytest.fixture
def build_network() -> Iterator[tuple[str, str]]:
    """A user-defined bridge for this test's build containers, with a fixed subnet so a container can
    be reconnected with its own address: (name, gateway address). Removed afterwards."""
    need_docker()
    name = f"velofarm-test-{random.randrange(16**8):08x}"
    for _ in range(30):
        net = f"10.213.{random.randrange(256)}"
        out = subprocess.run(["docker", "network", "create", "--driver", "bridge", "--subnet", f"{net}.0/24",
                              "--gateway", f"{net}.1", name], capture_output=True, text=True, timeout=60, check=False)
        if out.returncode == 0:
            break
        if "overlap" not in out.stderr:
            pytest.fail(f"docker network create {name}: {out.stderr.strip()}")
    else:
        pytest.fail("no free 10.213.N.0/24 subnet for a test network")
    yield name, f"{net}.1"
    out = subprocess.run(["docker", "network", "rm", name], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, f"network {name} left behind: {out.stderr.strip()}"


def container_pid(name: str) -> int:
    return int(docker("inspect", "--format", "{{.State.Pid}}", name).strip())


def throttle(name: str) -> None:
    """Slow what the container sends (tbf on its eth0, from the host, in its network namespace)."""
    subprocess.run(["nsenter", "-t", str(container_pid(name)), "-n", "tc", "qdisc", "add", "dev", "eth0", "root",
                    "tbf", "rate", THROTTLE, "burst", "32kbit", "latency", "400ms"], check=True, timeout=30)


def upload_part(farm: LocalFarm) -> Path | None:
    """The receiver's partial file of this platform's archive, while the upload runs."""
    parts = list((farm.master_dir / "artifacts" / "v0.1.0").glob(f".incoming-{PLATFORM}-*/.{ARCHIVE}.part"))
    return parts[0] if parts else None


def upload_port(farm: LocalFarm) -> int:
    found = re.findall(r"velofarm uploads: receiving on [0-9.]+:([0-9]+)", (farm.master_dir / "twistd.log").read_text())
    return int(found[-1])


def connected_to(container: str, port: int) -> bool:
    """Whether the container has an established TCP connection to `port` (its /proc/net/tcp)."""
    table = docker("exec", container, "cat", "/proc/net/tcp").splitlines()[1:]
    return any(f.split()[2].endswith(f":{port:04X}") and f.split()[3] == "01" for f in table)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_network_cut_during_the_upload_resumes_and_the_archive_is_whole(
        builder_image: str, build_network: tuple[str, str], docker_farm: Callable[..., LocalFarm]) -> None:
    need("tc", "iproute2")
    need("nsenter", "util-linux")
    network, gateway = build_network
    farm = docker_farm(builder_image, [PLATFORM], docker_network=build_network)
    farm.push_tag("v0.1.0")
    farm.wait(lambda: (running_step(farm, f"build-{PLATFORM}") or ({}, ""))[1] == "cargo build", 600,
              "cargo build to start in the container", every=0.1)
    [container] = containers_of(farm)
    address = docker("inspect", "--format", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}",
                     container).strip()
    assert address.startswith(gateway.rsplit(".", 1)[0] + "."), address  # it runs on the test's bridge
    throttle(container)
    part = farm.wait(lambda: (p := upload_part(farm)) and p.stat().st_size >= 128 * 1024 and p, 600,
                     f"the upload to be under way (a .part of 128 KiB or more; sending at {THROTTLE})", every=0.05)
    docker("network", "disconnect", network, container)
    cut_at = part.stat().st_size
    assert network not in docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", container)
    # Keep it cut until transfer.py has given up on that connection (its 60 s timeout), so that the
    # upload has to resume on a new one; then give the container its address back.
    port = upload_port(farm)
    wait_for(lambda: not connected_to(container, port), 300, "the worker to drop its cut upload connection", 0.5)
    docker("network", "connect", "--ip", address, network, container)

    release = wait_release_of(farm, "v0.1.0", timeout=900)
    assert release["results"] == 0, release["state_string"]
    assert len(farm.builds("release")) == 1
    [build] = farm.builds(f"build-{PLATFORM}")  # the upload resumed: no retried build
    assert build["results"] == 0, build
    upload = step_log(farm, build["buildid"], "store artifact")
    assert "attempt 1 of 6 failed" in upload, upload
    sent = re.search(rf"sent {re.escape(ARCHIVE)}: ([0-9]+) bytes in .*, ([0-9]+) attempt\(s\)", upload)
    assert sent and int(sent.group(2)) >= 2, upload
    assert cut_at < int(sent.group(1)), (cut_at, upload)  # the cut came mid-file
    resumed = re.findall(r"velofarm uploads: .*: resumed at byte ([0-9]+)", (farm.master_dir / "twistd.log").read_text())
    assert resumed and 0 < int(resumed[-1]) < int(sent.group(1)), resumed  # sent the rest, not all again
    # Whole: the stored archive's SHA-256 is the one the worker computed before sending it (the upload's
    # own process hashes the archive and logs the sha256sum line it sends).
    computed = re.search(rf"([0-9a-f]{{64}})  {re.escape(ARCHIVE)}", upload)
    assert computed, upload
    worker_sha = computed.group(1)
    folder = farm.master_dir / "artifacts" / "v0.1.0" / PLATFORM
    stored = folder / "builds" / str(build["buildid"]) / ARCHIVE
    assert sha256(stored) == worker_sha and stored.stat().st_size == int(sent.group(1))
    assert (folder / f"{ARCHIVE}.sha256").read_text() == f"{worker_sha}  {ARCHIVE}\n"
    assert sha256(farm.root / "releases" / "v0.1.0" / ARCHIVE) == worker_sha
    # One set of artifacts, no partial file or incoming folder left.
    assert sorted(p.name for p in folder.iterdir()) == sorted([ARCHIVE, f"{ARCHIVE}.sha256", "build.json", "builds"])
    assert sorted(p.name for p in (folder / "builds").iterdir()) == [str(build["buildid"])]
    assert sorted(p.name for p in (farm.master_dir / "artifacts" / "v0.1.0").iterdir()) == [PLATFORM]


def test_a_full_artifact_store_fails_the_build_naming_the_store_and_keeps_nothing(
        builder_image: str, docker_farm: Callable[..., LocalFarm], tmp_path: Path) -> None:
    with small_disk(tmp_path / "store", "512k") as store:  # the archive is ~1.5 MB
        farm = docker_farm(builder_image, [PLATFORM], master={"artifacts_dir": str(store)})
        try:
            farm.push_tag("v0.1.0")
            release = wait_release_of(farm, "v0.1.0", timeout=900)
            [build] = farm.builds(f"build-{PLATFORM}")
            upload = next(s for s in steps(farm, build["buildid"]) if s["name"] == "store artifact")
            log = step_log(farm, build["buildid"], "store artifact")
            left = sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())
        finally:
            farm.stop_all()
    assert release["results"] != 0 and PLATFORM in release["state_string"], release["state_string"]
    assert build["results"] == FAILURE, build  # failed once: neither retried nor an exception
    assert upload["results"] == FAILURE and "artifact store" in upload["state_string"], upload
    assert f"the artifact store {store} is full" in log and "velofarm artifacts prune" in log, log
    assert "attempt 1 of 6 failed" not in log, log  # refused at once, not retried into a full disk
    assert left == []  # no .part, no .incoming folder, no half archive
    assert not (farm.root / "releases" / "v0.1.0").exists()  # nothing published


@pytest.fixture
def silent_engine() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word: a hung engine."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    yield server.getsockname()[1]
    server.close()


def test_an_engine_that_never_answers_fails_the_platform_once_naming_the_engine(
        silent_engine: int, tmp_path: Path) -> None:
    need_docker()
    openssl = need("openssl", "openssl")
    farm = write_farm(tmp_path / "farm", FARM_TOML, [PLATFORM], docker_image="velofarm-builder:any")
    # TCP needs TLS (farm.toml refuses it otherwise): a throwaway self-signed certificate as CA and client.
    secrets = tmp_path / "farm" / "secrets"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=velofarm-test", "-keyout", str(secrets / "docker-key.pem"),
                    "-out", str(secrets / "docker-cert.pem")], check=True, capture_output=True, timeout=60)
    (secrets / "docker-ca.pem").write_bytes((secrets / "docker-cert.pem").read_bytes())
    for name in ("docker-key.pem", "docker-cert.pem", "docker-ca.pem"):
        (secrets / name).chmod(0o600)
    data = tomllib.loads(farm.spec_path.read_text())
    engine = f"tcp://127.0.0.1:{silent_engine}"
    for worker in data["workers"].values():
        worker.update(docker_host=engine, docker_tls={"ca": "docker-ca.pem", "cert": "docker-cert.pem",
                                                      "key": "docker-key.pem"})
    farm.spec_path.write_text(tomlwrite.dumps(data))
    farm.init_repo()
    farm.start_all()
    try:
        farm.push_tag("v0.1.0")
        release = wait_release_of(farm, "v0.1.0", timeout=600)
        builds = farm.builds(f"build-{PLATFORM}")
        text = "\n".join(step_log(farm, builds[0]["buildid"], s["name"]) for s in steps(farm, builds[0]["buildid"]))
    finally:
        farm.stop_all()
    assert release["results"] != 0 and PLATFORM in release["state_string"], release["state_string"]
    assert len(builds) == 1 and builds[0]["results"] == EXCEPTION, builds  # once, not RETRY and re-queued
    assert engine in text and "could not start" in text and f"docker -H {engine} info" in text, text
