"""The artifact path worker → master: transfer.py against the master's upload receiver.

Correctness only (timing lives in bench/): what arrives is what was sent, tokens are enforced,
nothing lands outside the store, dropped connections resume, and memory stays flat.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from velofarm.artifacts.incoming import UploadGrants
from velofarm.artifacts.receiver import start_receiver, stop_receiver
from velofarm.artifacts.store import BuildIdentity, commit_incoming, incoming_dir
from velofarm.cli.localfarm import wait_for
from velofarm.errors import VelofarmError
from velofarm.worker_tools import transfer

NAME = "velostream-v1.0.0-x86_64-unknown-linux-gnu.tar.gz"


class Receiver:
    def __init__(self, grants: UploadGrants, port: int, root: Path) -> None:
        self.grants, self.port, self.root = grants, port, root

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/upload/"

    def grant(self, name: str = NAME, **kwargs: Any) -> tuple[str, Path]:
        folder = incoming_dir(self.root, "v1.0.0", "linux-x86_64", 7)
        return self.grants.grant(folder, [name], **kwargs), folder

    def request(self, method: str, path: str, token: str | None, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdrs = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    grants = UploadGrants()
    server = start_receiver("127.0.0.1", 0, grants)
    yield Receiver(grants, server.server_port, tmp_path / "artifacts")
    stop_receiver(server)


def make_archive(folder: Path, size: int, name: str = NAME,
                 sums_digest: str | None = None) -> tuple[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = os.urandom(min(size, 1 << 20)) * (size // (1 << 20) or 1)
    path.write_bytes(data[:size] if size < len(data) else data)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / f"{name}.sha256").write_text(f"{sums_digest or digest}  {name}\n", encoding="utf-8")
    return path, digest


def put_headers(digest: str, length: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Content-Length": str(length), "Repr-Digest": transfer.digest_header(digest), **(extra or {})}


def run_main(receiver: Receiver, token: str, archive: Path, tmp_path: Path) -> int:
    token_file = tmp_path / "upload.token"
    token_file.write_text(token + "\n", encoding="utf-8")
    return transfer.main(["upload", "--url", receiver.url, "--token-file", str(token_file),
                          str(archive), f"{archive}.sha256"])


def test_upload_arrives_whole_with_its_checksum(receiver: Receiver, tmp_path: Path) -> None:
    archive, digest = make_archive(tmp_path / "dist", 3 * 1024 * 1024 + 17)
    token, folder = receiver.grant()
    assert run_main(receiver, token, archive, tmp_path) == 0
    assert (folder / NAME).read_bytes() == archive.read_bytes()
    assert (folder / f"{NAME}.sha256").read_text() == (tmp_path / "dist" / f"{NAME}.sha256").read_text()
    receipts = receiver.grants.revoke(token)
    assert receipts[NAME].sha256 == digest and receipts[NAME].size == archive.stat().st_size
    record = BuildIdentity(tag="v1.0.0", platform="linux-x86_64", build_id=7, build_number=3, builder="build-linux-x86_64",
                         worker="w1", commit="a" * 40, archive=NAME)
    final = commit_incoming(receiver.root, record, receipts[NAME].sha256)
    assert final.read_bytes() == archive.read_bytes() and not folder.exists()


def test_worker_script_is_stdlib_only_and_reads_the_token_from_stdin(receiver: Receiver,
                                                                     tmp_path: Path) -> None:
    archive, _ = make_archive(tmp_path / "dist", 200_000)
    token, folder = receiver.grant()
    script = Path(transfer.__file__)
    # -I: no site-packages, no PYTHONPATH; the worker has only the standard library.
    argv = [sys.executable, "-I", str(script), "upload", "--url", receiver.url, "--token-file", "-",
            str(archive), f"{archive}.sha256"]
    out = subprocess.run(argv, input=token + "\n", capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "the master verified SHA-256" in out.stdout and token not in out.stdout + out.stderr
    assert (folder / NAME).read_bytes() == archive.read_bytes()


def test_damaged_upload_is_refused_and_nothing_is_kept(receiver: Receiver, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    archive, _ = make_archive(tmp_path / "dist", 100_000, sums_digest="0" * 64)
    token, folder = receiver.grant()
    assert run_main(receiver, token, archive, tmp_path) == 1
    assert "SHA-256" in capsys.readouterr().err
    assert list(folder.iterdir()) == [] and receiver.grants.revoke(token) == {}


@pytest.mark.parametrize("case", ["wrong", "expired", "revoked", "missing"])
def test_bad_tokens_get_403_and_write_nothing(receiver: Receiver, tmp_path: Path, case: str) -> None:
    token, folder = receiver.grant(ttl=0.05 if case == "expired" else 3600)
    if case == "expired":
        time.sleep(0.1)
    if case == "revoked":
        receiver.grants.revoke(token)
    sent = {"wrong": token[:-2] + "xx", "missing": None}.get(case, token)
    body = b"x" * 1000
    headers = put_headers(hashlib.sha256(body).hexdigest(), 1000)
    status, _ = receiver.request("PUT", f"/upload/{NAME}", sent, body, headers)
    assert status == 403
    assert receiver.request("HEAD", f"/upload/{NAME}", sent)[0] == 403
    assert not any(folder.iterdir())


@pytest.mark.parametrize("path", ["/upload/..%2F..%2Fescape.tar.gz", "/upload/../escape.tar.gz",
                                  "/upload/%2Ftmp%2Fescape.tar.gz", f"/upload/{NAME}/../../escape.tar.gz",
                                  "/escape.tar.gz", f"/upload/{NAME}.sha256"])
def test_request_paths_cannot_choose_where_bytes_land(receiver: Receiver, tmp_path: Path, path: str) -> None:
    token, _ = receiver.grant()
    body = b"y" * 100
    status, _ = receiver.request("PUT", path, token, body, put_headers(hashlib.sha256(body).hexdigest(), 100))
    assert status == 404
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


@pytest.mark.parametrize("name", ["../evil.tar.gz", "a/b.tar.gz", "", ".hidden", "x.sha256", "x.part"])
def test_only_plain_file_names_can_be_granted(receiver: Receiver, name: str) -> None:
    with pytest.raises(VelofarmError):
        receiver.grant(name)


@pytest.mark.parametrize("tag", ["../v1", "v1/../../x", "/abs", ""])
def test_tags_cannot_lead_outside_the_store(tmp_path: Path, tag: str) -> None:
    with pytest.raises(VelofarmError):
        incoming_dir(tmp_path, tag, "linux-x86_64", 1)


class CuttingProxy:
    """A TCP proxy that drops the first connection after `cut` bytes from the client."""

    def __init__(self, target_port: int, cut: int) -> None:
        self.target_port, self.cut, self.connections = target_port, cut, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            limit = self.cut if self.connections == 1 else None
            threading.Thread(target=self._pipe, args=(client, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[:limit - sent])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_dropped_connection_resumes_where_it_stopped(receiver: Receiver, tmp_path: Path) -> None:
    archive, digest = make_archive(tmp_path / "dist", 8 * 1024 * 1024)
    token, folder = receiver.grant()
    proxy = CuttingProxy(receiver.port, cut=3 * 1024 * 1024)
    url = f"http://127.0.0.1:{proxy.port}/upload/"
    receipt = transfer.upload_file(url, token, str(archive), digest, emit=lambda m: None, backoff=0.05)
    proxy.listener.close()
    assert receipt.attempts == 2 and 0 < receipt.resumed_from < archive.stat().st_size
    assert (folder / NAME).read_bytes() == archive.read_bytes()
    assert receiver.grants.revoke(token)[NAME].sha256 == digest


def wait_offset(receiver: Receiver, token: str, offset: int) -> None:
    """Until the receiver holds `offset` bytes of NAME. Not through HEAD: a HEAD takes the file
    over from the connection still writing, which is what a resuming worker wants, not this."""
    grant = receiver.grants.find(token)
    assert grant is not None
    for _ in range(200):
        if grant.slots[NAME].offset == offset:
            return
        time.sleep(0.02)
    raise AssertionError(f"the receiver holds {grant.slots[NAME].offset} bytes, not {offset}")


def test_a_fresh_put_after_a_partial_one_restarts_cleanly(receiver: Receiver, tmp_path: Path) -> None:
    archive, digest = make_archive(tmp_path / "dist", 2 * 1024 * 1024)
    token, folder = receiver.grant()
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        head = (f"PUT /upload/{NAME} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Length: {archive.stat().st_size}\r\n"
                f"Repr-Digest: {transfer.digest_header(digest)}\r\n\r\n")
        sock.sendall(head.encode() + b"garbage" * 50_000)  # wrong bytes, then the worker dies
    wait_offset(receiver, token, 350_000)  # the dead upload is fully handled before the new one starts
    receipt = transfer.upload_file(receiver.url, token, str(archive), digest, emit=lambda m: None)
    assert receipt.attempts == 1 and receipt.resumed_from == 0
    assert (folder / NAME).read_bytes() == archive.read_bytes()


def test_a_stale_connection_cannot_write_after_a_resume_took_over(receiver: Receiver, tmp_path: Path) -> None:
    archive, digest = make_archive(tmp_path / "dist", 2 * 1024 * 1024)
    data = archive.read_bytes()
    token, folder = receiver.grant()
    stale = socket.create_connection(("127.0.0.1", receiver.port))
    head = (f"PUT /upload/{NAME} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(data)}\r\nRepr-Digest: {transfer.digest_header(digest)}\r\n\r\n")
    stale.sendall(head.encode() + data[:1024 * 1024])  # half, then the link goes quiet (half-open)
    time.sleep(0.3)
    receipt = transfer.upload_file(receiver.url, token, str(archive), digest, emit=lambda m: None)
    assert receipt.attempts == 1 and receipt.sha256 == digest
    try:
        stale.sendall(b"Z" * (1024 * 1024))  # the old connection wakes up: must change nothing
    except OSError:
        pass
    time.sleep(0.3)
    stale.close()
    assert (folder / NAME).read_bytes() == data


def test_resume_with_content_range_and_head(receiver: Receiver, tmp_path: Path) -> None:
    archive, digest = make_archive(tmp_path / "dist", 1024 * 1024)
    data = archive.read_bytes()
    token, folder = receiver.grant()
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        head = (f"PUT /upload/{NAME} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Length: {len(data)}\r\nRepr-Digest: {transfer.digest_header(digest)}\r\n\r\n")
        sock.sendall(head.encode() + data[:300_000])
    wait_offset(receiver, token, 300_000)
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    offset, complete = transfer.ask_offset(conn, transfer.parse_url(receiver.url), NAME, token)
    conn.close()
    assert offset == 300_000 and complete is None
    rng = {"Content-Range": f"bytes {offset}-{len(data) - 1}/{len(data)}"}
    status, body = receiver.request("PUT", f"/upload/{NAME}", token, data[offset:],
                                    put_headers(digest, len(data) - offset, rng))
    assert status == 201, body
    assert (folder / NAME).read_bytes() == data
    bad = {"Content-Range": f"bytes 5-{len(data) - 1}/{len(data)}"}
    headers = put_headers(digest, len(data) - 5, bad)
    status, _ = receiver.request("PUT", f"/upload/{NAME}", token, data[5:], headers)
    assert status == 409


def test_receiver_memory_stays_flat_for_a_large_upload(receiver: Receiver, tmp_path: Path) -> None:
    archive, digest = make_archive(tmp_path / "dist", 64 * 1024 * 1024)
    token, _ = receiver.grant()
    tracemalloc.start()
    try:
        receipt = transfer.upload_file(receiver.url, token, str(archive), digest, emit=lambda m: None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert receipt.sha256 == digest
    assert peak < 6 * 1024 * 1024, f"peak Python allocations {peak / 2**20:.1f} MiB for a 64 MiB upload"


def test_platform_builds_send_archives_through_the_receiver() -> None:
    from buildbot.steps.transfer import FileUpload

    from velofarm.buildmaster.factories import platform_factory
    from velofarm.buildmaster.toolsteps import SendTools
    from velofarm.buildmaster.uploads import UploadArtifact, UploadReceiver, upload_service
    from velofarm.spec.farm import load_spec

    spec = load_spec(Path(__file__).resolve().parent.parent / "farm.toml")
    for platform in spec.platforms.values():
        factory = platform_factory(spec, platform, Path("/srv/artifacts"))
        classes = [s.step_class for s in factory.steps]
        assert FileUpload not in classes and classes[-1] is UploadArtifact
        sent = [s.kwargs.get("workerdest") for s in factory.steps if s.step_class is SendTools]
        assert sent == ["../tools/velofarm-tools.pyz"]  # the bundle holds transfer.py
        assert factory.steps[-1].kwargs["bundle"] == "../tools/velofarm-tools.pyz"
    assert isinstance(upload_service(spec), UploadReceiver)


# ------------------------------------------------------------------ a real master and worker

MASTER_CFG = '''import json, os
from buildbot.plugins import schedulers, steps, util, worker
from velofarm.buildmaster.toolsteps import SendTools
from velofarm.buildmaster.uploads import UploadArtifact, UploadReceiver
p = json.load(open(os.path.join(basedir, "params.json")))  # noqa: F821
f = util.BuildFactory()
f.addStep(SendTools({"format": 1}, workerdest="../tools/velofarm-tools.pyz"))
f.addStep(UploadArtifact(name="store artifact", artifacts_root=p["artifacts"], platform="linux-x86_64",
                         archive=p["archive"], source_dir=p["dist"], python=p["python"], workdir="build"))
BuildmasterConfig = {
    "buildbotNetUsageData": None, "db": {"db_url": "sqlite:///state.sqlite"},
    "protocols": {"pb": {"port": "tcp:%d:interface=127.0.0.1" % p["pb"]}},
    "www": {"port": "tcp:%d:interface=127.0.0.1" % p["www"], "plugins": {}},
    "workers": [worker.Worker("w1", p["password"])],
    "builders": [util.BuilderConfig(name="up", workernames=["w1"], factory=f)],
    "schedulers": [schedulers.ForceScheduler(
        name="force", builderNames=["up"], properties=[util.StringParameter(name="tag", default="v1.0.0")])],
    "services": [UploadReceiver(port=0, interface="127.0.0.1")],
}
'''


def _api(port: int, path: str, body: dict[str, Any] | None = None) -> Any:
    import json
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/{path}",
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


@pytest.mark.integration
def test_a_real_build_stores_its_archive_through_the_receiver(tmp_path: Path) -> None:
    import json

    from velofarm.cli.localfarm import free_port
    from velofarm.cli.masterdir import TAC, buildbot_command
    from velofarm.onboard.workertac import WORKER_CMD, create_worker_dir

    archive, digest = make_archive(tmp_path / "dist", 5 * 1024 * 1024 + 3)
    master_dir, worker_dir = tmp_path / "master", tmp_path / "worker"
    params = {"pb": free_port(), "www": free_port(), "password": "pw-" + os.urandom(6).hex(),
              "artifacts": str(tmp_path / "artifacts"), "archive": NAME, "dist": str(tmp_path / "dist"),
              "python": sys.executable}
    master_dir.mkdir()
    (master_dir / "params.json").write_text(json.dumps(params))
    (master_dir / "buildbot.tac").write_text(TAC)
    (master_dir / "master.cfg").write_text(MASTER_CFG)
    subprocess.run([*buildbot_command(), "upgrade-master", "--quiet", str(master_dir)], check=True,
                   stdout=subprocess.DEVNULL, timeout=120)
    create_worker_dir(worker_dir, f"127.0.0.1:{params['pb']}", "w1", str(params["password"]))
    subprocess.run([*buildbot_command(), "start", str(master_dir)], check=True, stdout=subprocess.DEVNULL,
                   timeout=120)
    try:
        subprocess.run([*WORKER_CMD, "start", str(worker_dir)], check=True, stdout=subprocess.DEVNULL,
                       timeout=60)
        www = int(params["www"])
        wait_for(lambda: any(w["connected_to"] for w in _api(www, "workers")["workers"]), 60, "the worker")
        builderid = _api(www, "builders/up")["builders"][0]["builderid"]
        _api(www, "forceschedulers/force", {"jsonrpc": "2.0", "method": "force", "id": 1,
                                            "params": {"builderid": builderid, "tag": "v1.0.0"}})
        build = wait_for(lambda: [b for b in _api(www, "builders/up/builds")["builds"] if b["complete"]], 120,
                      "the build")[0]
        step = next(s for s in _api(www, f"builds/{build['buildid']}/steps")["steps"]
                    if s["name"] == "store artifact")
        logs = "".join(c["content"] for lg in _api(www, f"steps/{step['stepid']}/logs")["logs"]
                       for c in _api(www, f"logs/{lg['logid']}/contents")["logchunks"])
        assert build["results"] == 0, logs
        stored = tmp_path / "artifacts" / "v1.0.0" / "linux-x86_64"
        assert (stored / NAME).read_bytes() == archive.read_bytes()
        assert (stored / f"{NAME}.sha256").read_text() == f"{digest}  {NAME}\n"
        assert f"the master verified SHA-256 {digest}" in logs and "--token-file -" in logs
        # the worker hashed the archive in the upload's own process: no .sha256 on its command line
        assert f"{NAME}.sha256" not in logs and f"sha256 {digest[:8]}… checked" in step["state_string"]
        assert f"{digest}  {NAME}\n" in logs  # the hash the worker computed and sent
        assert "Bearer" not in logs and not [p for p in (tmp_path / "artifacts" / "v1.0.0").iterdir()
                                             if p.name.startswith(".")]
    finally:
        for cmd, folder in ((WORKER_CMD, worker_dir), (buildbot_command(), master_dir)):
            subprocess.run([*cmd, "stop", str(folder)], stdout=subprocess.DEVNULL, timeout=60, check=False)


def test_an_empty_resume_sends_nothing(tmp_path: Path) -> None:
    """Every byte arrived but the receipt was lost: the resume sends 0 bytes (sendfile refuses a count of 0)."""
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"x" * 1000)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        conn = http.client.HTTPConnection("127.0.0.1")
        conn.sock = ours
        transfer.send_body(conn, str(archive), 1000, 0)
        transfer.send_body(conn, str(archive), 990, 10)
        assert theirs.recv(100) == b"x" * 10
