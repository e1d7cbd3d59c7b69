"""Docker workers in farm.toml: every field validated on load, named in the error with the fix."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import FARM_TOML

from velofarm.errors import SpecError
from velofarm.spec.farm import parse_spec

IMAGE = "velofarm-builder:0df14f84340d"


def spec_with(tmp_path: Path, **worker: Any) -> Any:
    data = tomllib.loads(FARM_TOML.read_text())
    data["master"]["secrets_dir"] = str(tmp_path / "secrets")
    data["workers"]["linux-docker-2"] = {"platforms": ["linux-x86_64", "linux-arm64"], **worker}
    return parse_spec(data, tmp_path / "farm.toml", registry={})


def test_a_unix_socket_worker_is_read_with_its_image(tmp_path: Path) -> None:
    spec = spec_with(tmp_path, docker_host="unix:///var/run/docker.sock", image=IMAGE, max_builds=2)
    docker = spec.workers["linux-docker-2"].docker
    assert docker is not None and (docker.docker_host, docker.image, docker.tls, docker.network) == (
        "unix:///var/run/docker.sock", IMAGE, None, "bridge")
    assert spec.workers["linux-1"].docker is None


def test_a_worker_may_name_a_user_defined_network(tmp_path: Path) -> None:
    spec = spec_with(tmp_path, docker_host="unix:///var/run/docker.sock", image=IMAGE, network="velofarm-builds",
                     master_host="10.213.7.1")
    docker = spec.workers["linux-docker-2"].docker
    assert docker is not None and (docker.network, docker.master_host) == ("velofarm-builds", "10.213.7.1")


@pytest.mark.parametrize("fields, message", [
    ({"docker_host": "unix:///var/run/docker.sock", "image": IMAGE, "docker_sock": "x"},
     r"workers.linux-docker-2: unknown field 'docker_sock'"),
    ({"docker_host": "http://engine:2375", "image": IMAGE},
     r"workers.linux-docker-2.docker_host: 'http://engine:2375' is not a Docker engine address"),
    ({"docker_host": "tcp://engine", "image": IMAGE},
     r"workers.linux-docker-2.docker_host: 'tcp://engine' is not a Docker engine address"),
    ({"docker_host": "unix://var/run/docker.sock", "image": IMAGE},
     r"docker_host: 'unix://var/run/docker.sock' is not a Docker engine address"),
    ({"docker_host": "tcp://engine:2376", "image": IMAGE},
     r"workers.linux-docker-2.docker_tls: docker_host 'tcp://engine:2376' is TCP"),
    ({"docker_host": "unix:///var/run/docker.sock"}, r"workers.linux-docker-2.image: missing"),
    ({"docker_host": "unix:///var/run/docker.sock", "image": "velofarm-builder:x; rm -rf /"},
     r"workers.linux-docker-2.image: 'velofarm-builder:x; rm -rf /' is not a Docker image reference"),
    ({"docker_host": "unix:///var/run/docker.sock", "image": "$(id)"},
     r"workers.linux-docker-2.image: '\$\(id\)' is not a Docker image reference"),
    ({"image": IMAGE}, r"workers.linux-docker-2.image: only for Docker workers; add docker_host"),
    ({"docker_host": "unix:///var/run/docker.sock", "image": IMAGE, "network": "none"},
     r"workers.linux-docker-2.network: 'none' is not one of bridge, host or the name of a Docker network"),
    ({"docker_host": "unix:///var/run/docker.sock", "image": IMAGE, "network": "builds; rm -rf /"},
     r"workers.linux-docker-2.network: 'builds; rm -rf /' is not one of bridge, host or the name"),
])
def test_bad_docker_fields_are_refused_naming_the_field(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        spec_with(tmp_path, **fields)


def test_tls_files_must_be_in_the_secrets_folder(tmp_path: Path) -> None:
    tls = {"ca": "docker-ca.pem", "cert": "docker-cert.pem", "key": "docker-key.pem"}
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "docker-ca.pem").write_text("ca")
    (tmp_path / "secrets" / "docker-cert.pem").write_text("cert")
    with pytest.raises(SpecError, match=r"workers.linux-docker-2.docker_tls.key: .*secrets/docker-key.pem is missing"):
        spec_with(tmp_path, docker_host="tcp://builds.internal:2376", image=IMAGE, docker_tls=tls)
    (tmp_path / "secrets" / "docker-key.pem").write_text("key")
    spec = spec_with(tmp_path, docker_host="tcp://builds.internal:2376", image=IMAGE, docker_tls=tls)
    assert spec.workers["linux-docker-2"].docker.tls == ("docker-ca.pem", "docker-cert.pem", "docker-key.pem")
    with pytest.raises(SpecError, match=r"docker_tls.key: '../key.pem' must be a file name in the secrets folder"):
        spec_with(tmp_path, docker_host="tcp://builds.internal:2376", image=IMAGE, docker_tls={**tls, "key": "../key.pem"})


def test_a_docker_worker_cannot_serve_a_macos_platform(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"'macos-arm64' builds on macos, but a Docker worker runs Linux containers"):
        spec_with(tmp_path, docker_host="unix:///var/run/docker.sock", image=IMAGE, platforms=["macos-arm64"])


def test_a_docker_worker_with_max_builds_is_that_many_latent_workers(tmp_path: Path) -> None:
    from velofarm.buildmaster.farmplan import buildbot_worker_names
    spec = spec_with(tmp_path, docker_host="unix:///var/run/docker.sock", image=IMAGE, max_builds=3)
    assert buildbot_worker_names(spec.workers["linux-docker-2"]) == ["linux-docker-2", "linux-docker-2-2",
                                                                     "linux-docker-2-3"]
    assert buildbot_worker_names(spec.workers["linux-1"]) == ["linux-1"]
