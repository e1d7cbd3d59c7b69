"""Finding 4: a worker cannot fill the master's disk.

The upload grant is the platform's size limit (plus the archive's overhead), step logs are capped
(head and tail kept), cut-off uploads are removed when the master starts, and `velofarm artifacts
prune` removes old dry-run and unpublished artifacts, never a published release's.
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from typing import Callable

import pytest
from conftest import FARM_TOML
from test_transfer import NAME

from velofarm.artifacts.incoming import MAX_BYTES, UploadGrants
from velofarm.artifacts.receiver import start_receiver, stop_receiver
from velofarm.artifacts.retention import PUBLISHED_MARKER, mark_published, plan_prune, remove_leftovers
from velofarm.artifacts.store import incoming_dir
from velofarm.buildmaster.factories import platform_factory
from velofarm.buildmaster.logcap import LogCapState
from velofarm.cli.localfarm import LocalFarm, wait_for, write_farm
from velofarm.cli.main import main
from velofarm.spec.farm import load_spec
from velofarm.spec.job import ARCHIVE_OVERHEAD_BYTES, upload_limit_bytes
from velofarm.worker_tools import transfer

# ------------------------------------------------------------------------------ the upload grant

@pytest.mark.parametrize("name", sorted(load_spec(FARM_TOML).platforms))
def test_the_store_step_grants_the_platforms_size_limit(name: str, tmp_path: Path) -> None:
    spec = load_spec(FARM_TOML)
    platform = spec.platforms[name]
    factory = platform_factory(spec, platform, tmp_path)
    store = next(s for s in factory.steps if s.kwargs.get("name") == "store artifact")
    limit = store.kwargs["max_bytes"]
    assert limit == upload_limit_bytes(spec, platform) < MAX_BYTES
    assert limit == len(spec.project.binaries) * platform.size_limit_mb * 2**20 + ARCHIVE_OVERHEAD_BYTES


def test_an_upload_over_the_grant_is_refused_before_its_body(tmp_path: Path) -> None:
    grants = UploadGrants()
    server = start_receiver("127.0.0.1", 0, grants)
    try:
        token = grants.grant(incoming_dir(tmp_path, "v1.0.0", "linux-x86_64", 1), [NAME], max_bytes=1000)
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        conn.putrequest("PUT", f"/upload/{NAME}")
        for key, value in {"Authorization": f"Bearer {token}", "Content-Length": "1001",
                           "Repr-Digest": transfer.digest_header("0" * 64)}.items():
            conn.putheader(key, value)
        conn.endheaders()  # no body sent: the answer must not wait for it
        resp = conn.getresponse()
        assert resp.status == 413 and b"1000" in resp.read()
        conn.close()
    finally:
        stop_receiver(server)


# ------------------------------------------------------------------------------ step logs

def test_a_log_over_the_cap_keeps_its_head_and_tail() -> None:
    state = LogCapState(max_size=1000, tail_size=300)
    state.added(7, "s")
    written = ""
    for i in range(500):
        written += state.append(7, f"oline {i:04}\n")
    end = state.finish(7)
    assert len(written) <= 1000 and written.startswith("oline 0000\n")
    assert end.startswith("h[velofarm: ") and "dropped" in end and end.endswith("oline 0499\n")
    kept = end.split("]\n", 1)[1]
    assert len(kept) <= 300 and all(line.startswith("oline ") for line in kept.splitlines())
    dropped = int(end.split("velofarm: ")[1].split(" ")[0])
    assert len(written) + dropped + len(kept) == 500 * len("oline 0000\n")  # every character accounted for


def test_a_log_under_the_cap_is_untouched() -> None:
    state = LogCapState(max_size=1000, tail_size=300)
    state.added(1, "t")
    assert state.append(1, "hello\n") == "hello\n" and state.finish(1) == ""


def test_the_master_config_sets_the_log_caps(tmp_path: Path) -> None:
    from velofarm.buildmaster.config import load_master_config
    farm = write_farm(tmp_path / "farm", FARM_TOML, ["linux-x86_64"])
    (farm.root / "master").mkdir()
    config = load_master_config(farm.root / "master", farm.spec_path)
    assert config["logMaxSize"] > 0 and 0 < config["logMaxTailSize"] < config["logMaxSize"]
    assert any(type(s).__name__ == "LogCap" for s in config["services"])


# ------------------------------------------------------------------------------ leftovers

def make_store(root: Path) -> None:
    for tag, platform in (("v1.0.0", "linux-x86_64"), ("v1.1.0", "linux-x86_64")):
        (root / tag / platform).mkdir(parents=True)
        (root / tag / platform / "a.tar.gz").write_bytes(b"x")
    partial = incoming_dir(root, "v1.1.0", "windows-x86_64-gnu", 3)
    partial.mkdir()
    (partial / f".{NAME}.part").write_bytes(b"half")
    (root / "v1.1.0" / ".old-linux-x86_64-2").mkdir()


def test_leftovers_are_found_and_artifacts_kept(tmp_path: Path) -> None:
    make_store(tmp_path)
    removed = remove_leftovers(tmp_path)
    assert sorted(p.name for p in removed) == [".incoming-windows-x86_64-gnu-3", ".old-linux-x86_64-2"]
    assert sorted(p.name for p in (tmp_path / "v1.1.0").iterdir()) == ["linux-x86_64"]
    assert (tmp_path / "v1.0.0" / "linux-x86_64" / "a.tar.gz").exists()


@pytest.mark.integration
def test_the_master_removes_leftovers_when_it_starts(make_farm: Callable[..., LocalFarm]) -> None:
    farm = make_farm(["linux-x86_64"])
    store = farm.master_dir / "artifacts"
    make_store(store)
    farm.start_master()
    log = farm.master_dir / "twistd.log"
    wait_for(lambda: "BuildMaster is running" in log.read_text(), 60, "the master to start")
    assert sorted(p.name for p in (store / "v1.1.0").iterdir()) == ["linux-x86_64"]
    assert ".incoming-windows-x86_64-gnu-3" in log.read_text() and "did not finish" in log.read_text()


# ------------------------------------------------------------------------------ prune

def tag_store(root: Path, tags: list[str], published: list[str]) -> None:
    for i, tag in enumerate(tags):
        (root / tag / "linux-x86_64").mkdir(parents=True)
        (root / tag / "linux-x86_64" / "a.tar.gz").write_bytes(b"x")
        os.utime(root / tag, (1_700_000_000 + i, 1_700_000_000 + i))
    for tag in published:
        mark_published(root, tag, f"releases/{tag}")


def test_prune_plan_keeps_the_newest_and_every_published(tmp_path: Path) -> None:
    tag_store(tmp_path, ["v0.9.0", "v1.0.0", "v1.0.1-rc.1", "v1.0.1", "v1.10.0", "v1.2.0", "nightly"], ["v0.9.0"])
    plan = plan_prune(tmp_path, 2)
    assert plan.keep_newest == ["v1.10.0", "v1.2.0"]  # semantic-version order, not text order
    assert plan.keep_published == ["v0.9.0"]
    assert plan.remove == sorted(["nightly", "v1.0.0", "v1.0.1-rc.1", "v1.0.1"])


def test_velofarm_artifacts_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    farm = write_farm(tmp_path / "farm", FARM_TOML, ["linux-x86_64"])
    store = farm.root / "master" / "artifacts"
    tag_store(store, ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"], ["v1.0.0"])
    assert main(["artifacts", "prune", "--spec", str(farm.spec_path), "--keep", "1", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out and (store / "v1.1.0").exists()
    assert main(["artifacts", "prune", "--spec", str(farm.spec_path), "--keep", "1"]) == 0
    assert sorted(p.name for p in store.iterdir()) == ["v1.0.0", "v1.3.0"]
    assert (store / "v1.0.0" / PUBLISHED_MARKER).read_text() == "releases/v1.0.0\n"


def test_prune_needs_a_number_and_a_master(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    farm = write_farm(tmp_path / "farm", FARM_TOML, ["linux-x86_64"])
    assert main(["artifacts", "prune", "--spec", str(farm.spec_path), "--keep", "1"]) == 1
    assert "no master folder" in capsys.readouterr().err
    (farm.root / "master").mkdir()
    assert main(["artifacts", "prune", "--spec", str(farm.spec_path)]) == 1
    assert "keep_tags" in capsys.readouterr().err
    farm.spec_path.write_text(farm.spec_path.read_text().replace("[master]\n", "[master]\nkeep_tags = 3\n"))
    assert main(["artifacts", "prune", "--spec", str(farm.spec_path)]) == 0
