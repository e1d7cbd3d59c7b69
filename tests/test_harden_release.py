"""Findings 3, 5 and 12 against a real farm: one master, one real worker, real cargo builds.

- 3: no step log of a real release shows the environment of the master or the worker.
- 5: the webhook refuses another repository's deliveries and replayed delivery ids, and a tag
  whose release failed is released again by the next push of it.
- 12: the webhook refuses an oversized body by its Content-Length, without reading it.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
import uuid
from typing import Any, Iterator

import pytest
from conftest import FARM_TOML, need_host_toolchains
from support.farmtools import all_step_logs, quiet_for, release_builds, wait_release_of

from velofarm.buildmaster.webhook import MAX_BODY
from velofarm.cli.localfarm import LocalFarm, free_port, git, write_farm
from velofarm.tags.webhook import signature_of

pytestmark = pytest.mark.integration
SECRET = "webhook secret for the hardening tests"
# Set in the environment of the master and of the worker: no step log may show them.
CANARIES = {"VELOFARM_CANARY_SECRET": "canary-4f1d2c9e-master-and-worker",
            "CARGO_REGISTRY_TOKEN": "cio-canary-7a0b3e55d1",
            "AWS_SECRET_ACCESS_KEY": "aws-canary-Zq81Lw02"}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    need_host_toolchains()
    root = tmp_path_factory.mktemp("harden")
    farm = write_farm(root / "farm", FARM_TOML, ["linux-x86_64"], master={"webhook_port": free_port()})
    farm.secrets.put("webhook-secret", SECRET)
    farm.init_repo()
    saved = {k: os.environ.get(k) for k in CANARIES}
    os.environ.update(CANARIES)  # the master and the worker inherit them
    try:
        farm.start_all()
        yield farm
    finally:
        farm.stop_all()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def v010(farm: LocalFarm) -> dict[str, Any]:
    farm.push_tag("v0.1.0")
    build = wait_release_of(farm, "v0.1.0")
    assert build["results"] == 0, build["state_string"]
    return build


def webhook_port(farm: LocalFarm) -> int:
    return int(farm.spec_path.read_text().split("webhook_port = ")[1].split("\n")[0])


def deliver(farm: LocalFarm, event: str, payload: dict[str, Any], delivery: str | None = None) -> tuple[int, str]:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
               "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "X-Hub-Signature-256": "sha256=" + signature_of(SECRET, body)}
    req = urllib.request.Request(f"http://127.0.0.1:{webhook_port(farm)}/webhook", data=body, headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def push_payload(tag: str, sha: str, clone_url: str) -> dict[str, Any]:
    return {"ref": f"refs/tags/{tag}", "created": True, "deleted": False, "after": sha,
            "head_commit": {"id": sha}, "repository": {"clone_url": clone_url}, "sender": {"login": "ops"}}


# ------------------------------------------------------------------------------------- finding 3

def test_no_step_log_shows_an_environment(farm: LocalFarm, v010: dict[str, Any]) -> None:
    logs = all_step_logs(farm)
    assert "cargo build" in logs or "Finished" in logs  # the logs were read, and are the release's
    for name, value in CANARIES.items():
        assert value not in logs, f"{name}'s value is in a step log"
        assert f"{name}=" not in logs, f"{name} is in a step log"
    assert "\n PATH=" not in logs and "\nPATH=" not in logs


# ------------------------------------------------------------------------------------- finding 5

def test_a_delivery_for_another_repository_is_refused_with_the_reason(farm: LocalFarm, v010: dict[str, Any]) -> None:
    farm.set_version("0.7.0")
    git("tag", "v0.7.0", cwd=farm.src)  # not pushed: only the webhook names it
    sha = git("rev-parse", "v0.7.0", cwd=farm.src)
    before = len(release_builds(farm))
    code, text = deliver(farm, "push", push_payload("v0.7.0", sha, "https://github.com/velostreamai/other-repo.git"))
    assert code == 403
    assert "other-repo" in text and str(farm.remote) in text and "project.git_url" in text
    assert quiet_for(farm, 2) == before


def test_a_replayed_delivery_id_is_refused(farm: LocalFarm) -> None:
    delivery = str(uuid.uuid4())
    ping = {"zen": "Keep it logically awesome.", "hook_id": 1, "repository": {"clone_url": str(farm.remote)}}
    assert deliver(farm, "ping", ping, delivery)[0] == 200
    code, text = deliver(farm, "ping", ping, delivery)
    assert code == 409 and delivery in text and "replay" in text


def test_a_delivery_without_an_id_is_refused(farm: LocalFarm) -> None:
    body = b'{"zen": "x"}'
    req = urllib.request.Request(f"http://127.0.0.1:{webhook_port(farm)}/webhook", data=body, method="POST",
                                 headers={"X-GitHub-Event": "ping",
                                          "X-Hub-Signature-256": "sha256=" + signature_of(SECRET, body)})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=10)
    assert caught.value.code == 400 and "X-GitHub-Delivery" in caught.value.read().decode()


def test_a_failed_release_does_not_burn_the_tag(farm: LocalFarm, v010: dict[str, Any]) -> None:
    # v0.2.0 on a commit whose Cargo.toml still says 0.1.0...: the version check fails the release.
    farm.set_version("0.1.1")
    farm.push_tag("v0.2.0")
    failed = wait_release_of(farm, "v0.2.0")
    assert failed["results"] == 2, failed["state_string"]
    assert not (farm.root / "releases" / "v0.2.0").exists()
    # ...so the tag is fixed and pushed again (the README's retry), and this push releases it.
    git("tag", "-d", "v0.2.0", cwd=farm.src)
    git("push", "-q", "origin", ":refs/tags/v0.2.0", cwd=farm.src)
    farm.set_version("0.2.0")
    farm.push_tag("v0.2.0")
    farm.wait(lambda: sum(b["properties"].get("tag", [None])[0] == "v0.2.0" for b in release_builds(farm)) >= 2,
              60, "a second release of v0.2.0")
    build = wait_release_of(farm, "v0.2.0")
    assert build["results"] == 0, build["state_string"]
    assert (farm.root / "releases" / "v0.2.0" / "release.json").exists()
    # Released now: one more arrival of the tag starts nothing.
    sha = git("rev-parse", "v0.2.0^{commit}", cwd=farm.src)
    before = len(release_builds(farm))
    assert deliver(farm, "push", push_payload("v0.2.0", sha, str(farm.remote)))[0] == 202
    assert quiet_for(farm, 3) == before


# ------------------------------------------------------------------------------------- finding 12

def raw_post(farm: LocalFarm, head: bytes, body: bytes) -> bytes:
    """Send a request head and part of a body; return what the server answers before the rest."""
    with socket.create_connection(("127.0.0.1", webhook_port(farm)), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


def test_an_oversized_body_is_refused_by_its_content_length(farm: LocalFarm) -> None:
    head = (b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: push\r\n"
            b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    # Only 10 bytes of the announced body are sent: the answer must come without the rest.
    answer = raw_post(farm, head, b"0123456789")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"limit" in answer


def test_a_chunked_body_past_the_limit_is_cut_off(farm: LocalFarm) -> None:
    head = b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"x" * (1024 * 1024)
    # One byte past the limit, and no last chunk: only the limit can end this request.
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // len(chunk))) + b"1\r\nx\r\n"
    assert raw_post(farm, head, body).startswith(b"HTTP/1.1 413")
