"""deploy/ really runs: the composed master, PostgreSQL and build engine release a pushed tag,
and `docker-compose down` then `up` keeps the database, the artifacts and the release."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from conftest import FARM_TOML, REPO, need, need_docker
from support.farmtools import release_builds, step_log, steps, wait_release_of

from velofarm.cli.localfarm import EXAMPLE, LocalFarm, free_port, git
from velofarm.images.deploy import build_deploy_images
from velofarm.release.keys import init_keys
from velofarm.secretstore import SecretStore
from velofarm.spec import tomlwrite

pytestmark = [pytest.mark.integration, pytest.mark.docker]
ENGINE_SOCKET = "unix:///run/engine/docker.sock"
MASTER_UID = 10001  # the velofarm user of deploy/Dockerfile


def farm_toml(builder_image: str, www_port: int) -> str:
    import tomllib
    data = tomllib.loads(FARM_TOML.read_text())
    data["project"]["git_url"] = "git://git:9418/remote.git"
    data["platforms"] = {"linux-x86_64": {}}
    data["workers"] = {"compose-docker-1": {"platforms": ["linux-x86_64"], "docker_host": ENGINE_SOCKET,
                                            "image": builder_image, "network": "host", "master_host": "master"}}
    data["release"] = {"publisher": "directory", "directory": "releases"}
    data["master"] = {"www_bind": "0.0.0.0", "www_port": 8010, "url": f"http://127.0.0.1:{www_port}/",
                      "pb_port": 9989, "pb_bind": "0.0.0.0", "db_url_secret": "db_url", "poll_interval": 3,
                      "upload_port": 9990, "public_host": "master"}
    return tomlwrite.dumps(data)


class Compose:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.project = f"velofarm-test-{os.getpid()}"
        self.files = ["-f", str(REPO / "deploy" / "compose.yaml"), "-f", str(REPO / "tests" / "deploy" / "compose.git.yaml")]
        self.env = {**os.environ, **env}

    def run(self, *args: str, stdin: object = None, timeout: float = 600) -> str:
        out = subprocess.run(["docker-compose", "-p", self.project, *self.files, *args], env=self.env,
                             stdin=stdin, capture_output=True, text=True, timeout=timeout, check=False)  # type: ignore[arg-type]
        assert out.returncode == 0, f"docker-compose {' '.join(args)}: {out.stdout}{out.stderr}"
        return out.stdout


@pytest.fixture
def compose(builder_image: str, tmp_path: Path) -> Iterator[tuple[Compose, LocalFarm, Path]]:
    need("docker-compose", "docker-compose")
    images = build_deploy_images(lambda line: print(line, flush=True))
    home, gitdir, www_port = tmp_path / "home", tmp_path / "git", free_port()
    for folder in (home / "workers", home / "secrets", gitdir):
        folder.mkdir(parents=True)
    (home / "farm.toml").write_text(farm_toml(builder_image, www_port))
    password = "test-only-" + os.urandom(8).hex()
    (home / "secrets" / "db_url").write_text(f"postgresql://velofarm:{password}@postgres:5432/velofarm\n")
    # The container's master runs as MASTER_UID: it owns its home, whatever umask this process has
    # (a master config loaded in-process earlier sets 077, as the master itself does).
    (home / "secrets").chmod(0o700)  # SecretStore refuses anything others could read
    (home / "secrets" / "db_url").chmod(0o600)
    init_keys(SecretStore(home / "secrets"), home / "keys")  # a release is signed: keys/ beside farm.toml
    for path in (home, home / "farm.toml", home / "workers", home / "keys", *(home / "keys").iterdir(),
                 home / "secrets", *(home / "secrets").iterdir()):
        os.chown(path, MASTER_UID, MASTER_UID)
        if path.parent.name != "keys":  # public keys stay readable
            path.chmod(0o700 if path.is_dir() else 0o600)
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("target"))
    git("init", "-q", "-b", "main", cwd=src)
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "velostream-mini", cwd=src)
    git("init", "-q", "--bare", str(gitdir / "remote.git"))
    git("push", "-q", str(gitdir / "remote.git"), "main", cwd=src)
    env = {"POSTGRES_PASSWORD": password, "VELOFARM_HOME": str(home), "VELOFARM_TEST_GIT": str(gitdir),
           "VELOFARM_WWW_PORT": str(www_port), "VELOFARM_WEBHOOK_PORT": str(free_port()),
           "VELOFARM_PB_PUBLISH": f"127.0.0.1:{free_port()}",
           **{f"{repo.upper().replace('-', '_')}_IMAGE": image.tag for repo, image in images.items()}}
    stack = Compose(home, env)
    farm = LocalFarm(root=home, spec_path=home / "farm.toml", www_port=www_port, pb_port=0)
    try:
        stack.run("up", "-d")
        save = subprocess.Popen(["docker", "save", builder_image], stdout=subprocess.PIPE)
        stack.run("exec", "-T", "engine", "docker", "-H", ENGINE_SOCKET, "load", stdin=save.stdout, timeout=1800)
        assert save.wait() == 0
        yield stack, farm, src
    finally:
        subprocess.run(["docker-compose", "-p", stack.project, *stack.files, "down", "--volumes", "--timeout", "20"],
                       env=stack.env, capture_output=True, timeout=300, check=False)


def master_up(farm: LocalFarm) -> None:
    # A long timeout: see the HEALTHCHECK note in deploy/Dockerfile.
    farm.wait(lambda: urllib.request.urlopen(f"{farm.url}api/v2/masters", timeout=60).status == 200, 400,
              "the composed master's web UI")


def test_compose_releases_a_pushed_tag_and_keeps_it_across_down_and_up(
        compose: tuple[Compose, LocalFarm, Path]) -> None:
    need_docker()
    stack, farm, src = compose
    master_up(farm)
    time.sleep(8)  # the poller's first run records the refs; a tag pushed after it is a change
    git("tag", "v0.1.0", cwd=src)
    git("push", "-q", str(Path(stack.env["VELOFARM_TEST_GIT"]) / "remote.git"), "v0.1.0", cwd=src)
    release = wait_release_of(farm, "v0.1.0", timeout=900)
    if release["results"] != 0:
        platform_builds = farm.builds("build-linux-x86_64")
        build = platform_builds[-1] if platform_builds else release  # it may have failed before any build
        logs = "\n".join(step_log(farm, build["buildid"], s["name"]) for s in steps(farm, build["buildid"]))
        pytest.fail(f"{release['state_string']}\n{logs[-3000:]}\n{stack.run('logs', '--tail', '40', 'engine')}")
    listing = stack.run("exec", "-T", "master", "ls", "/srv/velofarm/releases/v0.1.0").split()
    assert "SHA256SUMS" in listing and "velostream-v0.1.0-x86_64-unknown-linux-gnu.tar.gz" in listing
    inner = stack.run("exec", "-T", "engine", "docker", "-H", ENGINE_SOCKET, "ps", "-a", "-q").split()
    assert inner == []  # the build container was removed

    stack.run("down", "--timeout", "20")
    stack.run("up", "-d")
    master_up(farm)
    assert [b["properties"]["tag"][0] for b in release_builds(farm)] == ["v0.1.0"]  # the database survived
    assert "SHA256SUMS" in stack.run("exec", "-T", "master", "ls", "/srv/velofarm/releases/v0.1.0").split()
    stored = stack.run("exec", "-T", "master", "ls", "/srv/velofarm/master/artifacts/v0.1.0/linux-x86_64").split()
    assert "velostream-v0.1.0-x86_64-unknown-linux-gnu.tar.gz" in stored
