"""A full artifact store: the upload is refused once, naming the store, and nothing partial is kept.

A real tmpfs fills up (a real ENOSPC), under the real receiver and the real transfer.py. The same
fault during a container build's upload, end to end, is in tests/test_docker_faults.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import small_disk
from test_transfer import NAME, make_archive

from velofarm.artifacts.incoming import UploadGrants
from velofarm.artifacts.receiver import start_receiver, stop_receiver
from velofarm.artifacts.store import BuildIdentity, commit_incoming, incoming_dir
from velofarm.errors import ArtifactError
from velofarm.worker_tools import transfer


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def upload_into(store: Path, archive: Path, digest: str) -> tuple[str, list[str], Path]:
    """Upload `archive` into a fresh grant under `store`: (the worker's error, its retry messages, folder)."""
    grants = UploadGrants()
    server = start_receiver("127.0.0.1", 0, grants)
    retries: list[str] = []
    try:
        folder = incoming_dir(store, "v1.0.0", "linux-x86_64", 7)
        token = grants.grant(folder, [NAME])
        with pytest.raises(transfer.TransferError) as refused:
            transfer.upload_file(f"http://127.0.0.1:{server.server_port}/upload/", token, str(archive), digest,
                                 emit=retries.append, backoff=0.01)
        assert grants.revoke(token) == {}  # nothing arrived whole
    finally:
        stop_receiver(server)
    return str(refused.value), retries, folder


def test_an_upload_into_a_full_store_fails_once_naming_the_store(tmp_path: Path) -> None:
    archive, digest = make_archive(tmp_path / "dist", 3 * 2**20 + 5)
    with small_disk(tmp_path / "store", "1m") as store:
        message, retries, folder = upload_into(store, archive, digest)
        assert "507" in message and f"the artifact store {store} is full" in message, message
        assert "velofarm artifacts prune" in message, message
        assert retries == []  # final: resuming into a full disk cannot help
        assert files_under(store) == [] and folder.is_dir()  # no .part left, the whole space free again
        assert os.statvfs(store).f_bfree == os.statvfs(store).f_blocks


def test_an_archive_that_fills_the_disk_to_the_last_byte_leaves_nothing(tmp_path: Path) -> None:
    """The archive itself fits, its .sha256 line does not: the archive is removed too."""
    with small_disk(tmp_path / "store", "64k") as store:
        size = os.statvfs(store).f_blocks * os.statvfs(store).f_frsize
        archive, digest = make_archive(tmp_path / "dist", size)
        message, retries, folder = upload_into(store, archive, digest)
        assert f"the artifact store {store} is full" in message and retries == [], message
        assert files_under(store) == []


def test_a_store_that_fills_up_before_the_archive_is_stored_names_the_store(tmp_path: Path) -> None:
    """The upload arrived whole, then the disk filled (another build, a log): storing it fails
    naming the store, and its incoming folder goes."""
    archive, digest = make_archive(tmp_path / "dist", 200_000)
    with small_disk(tmp_path / "store", "1m") as store:
        grants = UploadGrants()
        server = start_receiver("127.0.0.1", 0, grants)
        try:
            folder = incoming_dir(store, "v1.0.0", "linux-x86_64", 7)
            token = grants.grant(folder, [NAME])
            transfer.upload_file(f"http://127.0.0.1:{server.server_port}/upload/", token, str(archive), digest,
                                 emit=print)
            receipt = grants.revoke(token)[NAME]
        finally:
            stop_receiver(server)
        with open(store / "filler", "wb", buffering=0) as filler, pytest.raises(OSError):
            while True:
                filler.write(b"\0" * 65536)
        record = BuildIdentity(tag="v1.0.0", platform="linux-x86_64", build_id=7, build_number=3,
                               builder="build-linux-x86_64", worker="w1", commit="a" * 40, archive=NAME)
        with pytest.raises(ArtifactError, match=f"the artifact store {store} is full .*velofarm artifacts prune"):
            commit_incoming(store, record, receipt.sha256)
        assert files_under(store) == ["filler"]
