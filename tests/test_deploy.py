"""deploy/: what this machine can check without a Docker engine, nginx or systemd running.

The compose file and units parse (and pass `systemd-analyze verify`), the images install what
the tests install, and the two entrypoints really start a master and a worker here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from conftest import FARM_TOML, REPO, need

from velofarm.cli.localfarm import write_farm
from velofarm.onboard import workertac

DEPLOY = REPO / "deploy"
VENV = Path(sys.prefix)


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / name).read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            result.append((instruction.upper(), args.strip()))
    return result


def test_compose_file_parses_and_wires_the_three_services() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"master", "postgres", "engine"}
    for dependency in ("postgres", "engine"):
        assert services["master"]["depends_on"][dependency]["condition"] == "service_healthy"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${")  # from .env, not here
    assert "127.0.0.1:${VELOFARM_WWW_PORT:-8010}:8010" in services["master"]["ports"]  # the UI only behind the proxy
    for name, service in services.items():
        assert service["image"].startswith("${VELOFARM_"), name  # built here by `velofarm image deploy`
        assert not any("docker.sock" in v for v in service.get("volumes", [])), name  # no host engine socket
    # The build engine shares only its socket with the master; it sees no secret and no master folder.
    assert set(services["engine"]["cap_add"]) == {"SYS_ADMIN", "NET_ADMIN"}
    assert set(services["engine"]["volumes"]) == {"engine-data:/var/lib/docker", "engine-socket:/run/engine",
                                                  "/sys/fs/cgroup:/sys/fs/cgroup:rw"}
    assert "engine-socket:/run/engine" in services["master"]["volumes"]
    for volume in services["master"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("${VELOFARM_HOME"):
            assert volume.split("}")[1].split(":")[0] in ("/farm.toml", "/keys", "/workers", "/secrets"), volume
    assert set(compose["volumes"]) == {"postgres-data", "master-data", "releases", "engine-data", "engine-socket"}
    compose_cli = shutil.which("docker-compose")
    if compose_cli:
        env = {**os.environ, "POSTGRES_PASSWORD": "x", "VELOFARM_MASTER_IMAGE": "m", "VELOFARM_POSTGRES_IMAGE": "p",
               "VELOFARM_ENGINE_IMAGE": "e"}
        out = subprocess.run([compose_cli, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
                             capture_output=True, text=True, env=env, check=False)
        assert out.returncode == 0, out.stderr


def test_master_image_installs_what_the_tests_install() -> None:
    steps = dockerfile("Dockerfile")
    assert ("ARG", "BASE=debian:bookworm-slim") in steps and ("FROM", "${BASE}") in steps  # the builder image's base
    pip = next(args for ins, args in steps if ins == "RUN" and "pip install" in args)
    assert "--no-index" in pip  # from the wheels `velofarm image deploy` made on the host
    extras = re.search(r"'velofarm\[([a-z,]+)\]'", pip)
    assert extras, pip
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    optional = pyproject["project"]["optional-dependencies"]
    for extra in extras.group(1).split(","):
        assert extra in optional
    # The postgres extra is the driver the PostgreSQL test runs with, and Buildbot is pinned to
    # the version the tests have installed.
    assert any(dep.startswith("psycopg2") for dep in optional["postgres"])
    assert metadata.version("psycopg2-binary")
    pins = dict(d.split("==") for d in pyproject["project"]["dependencies"] if "==" in d)
    assert pins["buildbot"] == metadata.version("buildbot")
    from velofarm.images.deploy import IMAGES
    for ins, args in steps:
        if ins == "COPY" and not args.startswith("--from"):
            source = args.split()[0]
            assert source == "wheels/" or source in IMAGES["velofarm-master"], source
    entry = next(args for ins, args in steps if ins == "ENTRYPOINT")
    assert entry == '["/usr/local/bin/velofarm-master"]'
    for files in IMAGES.values():
        assert (DEPLOY / files[0]).is_file() and os.access(DEPLOY / files[1], os.X_OK), files


def test_worker_image_pins_the_masters_buildbot_and_binds_the_password_file() -> None:
    steps = dockerfile("Dockerfile.worker")
    pip = next(args for ins, args in steps if ins == "RUN" and "pip install" in args)
    assert f"buildbot-worker=={metadata.version('buildbot')}" in pip
    assert any(ins == "RUN" and "cargo install cross --locked" in args for ins, args in steps)
    script = (DEPLOY / "worker-entrypoint.sh").read_text()
    assert workertac.READ_FILE.split("  #")[0] in script  # the same line the bootstraps write
    for name in ("master-entrypoint.sh", "worker-entrypoint.sh", "backup.sh"):
        assert subprocess.run(["bash", "-n", str(DEPLOY / name)], check=False).returncode == 0, name


def test_systemd_units_pass_systemd_analyze(tmp_path: Path) -> None:
    analyze = need("systemd-analyze", "systemd")
    # The units name production paths; point their programs at this machine's virtualenv.
    for name, instance in (("velofarm-master.service", "velofarm-master.service"),
                           ("velofarm-worker@.service", "velofarm-worker@linux-builder-2.service")):
        text = (DEPLOY / "systemd" / name).read_text()
        assert "[Install]" in text and "ExecStart=" in text
        text = text.replace("/opt/velofarm/venv", str(VENV)).replace("/opt/velofarm-worker/venv", str(VENV))
        unit = tmp_path / instance
        unit.write_text(text)
        out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, f"{name}: {out.stderr}"
    master = (DEPLOY / "systemd" / "velofarm-master.service").read_text()
    assert "ExecReload=/opt/velofarm/venv/bin/velofarm reconfig" in master
    assert "--pidfile=/srv/velofarm/master/twistd.pid" in master


def test_proxy_terminates_tls_for_the_ui_and_the_webhook() -> None:
    conf = (DEPLOY / "proxy" / "nginx.conf").read_text()
    assert "listen 443 ssl" in conf and "ssl_certificate_key" in conf and "return 301 https://" in conf
    webhook = conf[conf.index("location = /webhook"):]
    assert webhook.split("}")[0].count("proxy_pass http://velofarm_webhook;") == 1
    ws = conf[conf.index("location /ws"):].split("}")[0]
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "server 127.0.0.1:8010;" in conf and "server 127.0.0.1:8011;" in conf
    nginx = shutil.which("nginx")
    if nginx:  # not needed in CI; checks the syntax where nginx is installed
        wrapper = f"events {{}}\nhttp {{\n{conf}\n}}\n"
        path = Path("/tmp") / f"velofarm-nginx-{os.getpid()}.conf"
        path.write_text(wrapper)
        out = subprocess.run([nginx, "-t", "-c", str(path)], capture_output=True, text=True, check=False)
        path.unlink()
        assert "syntax is ok" in out.stderr or "certificate" in out.stderr, out.stderr


def test_readme_has_the_production_checklist() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for heading in ("### Secrets", "### Backups", "### Upgrades", "### Logs and their rotation",
                    "### What to monitor", "buildbot upgrade-master"):
        assert heading in readme


def test_backup_of_a_sqlite_farm(tmp_path: Path) -> None:
    farm = tmp_path / "farm"
    (farm / "master" / "artifacts" / "v1.0.0").mkdir(parents=True)
    (farm / "master" / "artifacts" / "v1.0.0" / "a.tar.gz").write_bytes(b"archive")
    with sqlite3.connect(farm / "master" / "state.sqlite") as db:
        db.execute("CREATE TABLE builds (id INTEGER)")
        db.execute("INSERT INTO builds VALUES (7)")
    out = subprocess.run(["bash", str(DEPLOY / "backup.sh"), str(farm), str(tmp_path / "backups")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    dumps = list((tmp_path / "backups").glob("velofarm-db-*.sqlite"))
    assert [row for row in sqlite3.connect(dumps[0]).execute("SELECT id FROM builds")] == [(7,)]
    archive = next((tmp_path / "backups").glob("velofarm-artifacts-*.tar.gz"))
    with tarfile.open(archive) as tf:
        assert "artifacts/v1.0.0/a.tar.gz" in tf.getnames()
    assert (tmp_path / "backups").stat().st_mode & 0o077 == 0


@pytest.mark.integration
def test_the_entrypoints_start_a_master_and_a_worker_here(tmp_path: Path) -> None:
    """The image's commands, run on this machine: the master in the foreground, reloadable."""
    farm = write_farm(tmp_path / "farm", FARM_TOML, ["linux-x86_64"])
    env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}", "VELOFARM_SPEC": str(farm.spec_path)}
    with open(tmp_path / "master.out", "w") as log:
        run_entrypoints(farm, env, log, tmp_path)


def run_entrypoints(farm, env, log, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    master = subprocess.Popen([str(DEPLOY / "master-entrypoint.sh")], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    worker = None
    try:
        farm.wait(lambda: farm.api("masters")["masters"][0]["active"], 120, "the master to answer")
        assert (farm.master_dir / "twistd.pid").read_text().strip() == str(master.pid)
        name = "local-linux-x86_64-1"
        worker_env = {**env, "VELOFARM_MASTER": f"127.0.0.1:{farm.pb_port}", "VELOFARM_WORKER_NAME": name,
                      "VELOFARM_PASSWORD_FILE": str(farm.secrets.path(f"worker-{name}")),
                      "VELOFARM_WORKER_DIR": str(tmp_path / "worker")}
        worker = subprocess.Popen([str(DEPLOY / "worker-entrypoint.sh")], env=worker_env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        farm.wait(lambda: name in farm.connected_workers(), 60, "the worker to connect")
        out = subprocess.run([str(VENV / "bin" / "velofarm"), "reconfig", "--spec", str(farm.spec_path)],
                             capture_output=True, text=True, timeout=400, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        assert master.poll() is None
    finally:
        for process in (worker, master):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
