"""The disk full while a release is assembled or published to a folder, on a real full disk (a small
tmpfs): the release fails naming the folder, the disk and what to do; nothing half-written stays
(the staging folder and releases/<tag>/ are written under a temporary name, then renamed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from support.farmtools import step_log, steps, wait_release_of
from support.tmpfs import FILLER, full_disk
from support.trustfarm import TAG as TRUST_TAG
from support.trustfarm import make_trust_farm

from velofarm.cli.localfarm import LocalFarm, git
from velofarm.cli.main import main
from velofarm.errors import PublishError, ReleaseError
from velofarm.publish.directory import DirectoryPublisher
from velofarm.release.verify import load_release

SUCCESS, FAILURE = 0, 2
ROOM = 2048  # bytes left on the "full" disk: less than any release needs


def test_assembly_on_a_full_disk_fails_naming_the_folder_and_keeps_nothing(tmp_path: Path) -> None:
    farm = make_trust_farm(tmp_path / "trust")
    with full_disk(tmp_path / "staging", ROOM) as staging:
        out = staging / f"{TRUST_TAG}-1"
        with pytest.raises(ReleaseError) as info:
            farm.assemble(out, TRUST_TAG)
        message = str(info.value)
        assert f"tag {TRUST_TAG}: cannot write the release folder {out}: the disk is full (No space left on " \
               "device" in message
        assert f"free space on the disk that holds {staging}" in message and "release again" in message
        assert sorted(p.name for p in staging.iterdir()) == [FILLER]  # no folder, no .tmp, nothing half-written


def test_the_directory_publisher_on_a_full_disk_publishes_nothing(tmp_path: Path) -> None:
    farm = make_trust_farm(tmp_path / "trust")
    release = load_release(farm.assemble(tmp_path / "staging" / TRUST_TAG, TRUST_TAG))
    with full_disk(tmp_path / "releases", ROOM) as releases:
        with pytest.raises(PublishError) as info:
            DirectoryPublisher(releases).publish(release)
        message = str(info.value)
        assert message.startswith(f"{releases / TRUST_TAG}: release {TRUST_TAG} was not published: the disk is full")
        assert f"free space on the disk that holds {releases} ([release] directory)" in message
        assert sorted(p.name for p in releases.iterdir()) == [FILLER]
        (releases / FILLER).unlink()  # space freed, as the message says: the same publish now works
        outcome = DirectoryPublisher(releases).publish(release)
        assert outcome.state == "published" and load_release(releases / TRUST_TAG).tag == TRUST_TAG


# ------------------------------------------------------------------------------ a real farm

def push_again(farm: LocalFarm, tag: str) -> None:
    """Retry a failed release as README says: delete the tag on the remote and push it again."""
    git("push", "-q", "origin", f":refs/tags/{tag}", cwd=farm.src)
    git("push", "-q", "origin", tag, cwd=farm.src)


def nth_release(farm: LocalFarm, tag: str, n: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        builds = [b for b in farm.api("builders/release/builds?property=tag&order=number")["builds"]
                  if b["properties"].get("tag", [None])[0] == tag]
        return builds[n - 1] if len(builds) >= n and builds[n - 1]["complete"] else None
    return dict(farm.wait(done, 900, f"release {n} of {tag}", every=0.5))


@pytest.mark.integration
def test_a_full_disk_fails_the_release_cleanly_and_the_release_goes_out_once_space_is_freed(
        make_farm: Callable[..., LocalFarm]) -> None:
    farm = make_farm(["linux-x86_64"])
    farm.init_repo()
    farm.start_all()
    releases = farm.root / "releases"
    tag = "v0.1.0"

    # 1. The master's staging folder (where "verify and assemble" writes) is full.
    with full_disk(farm.master_dir / "staging", 64 * 1024) as staging:
        farm.push_tag(tag)
        first = wait_release_of(farm, tag)
        assert first["results"] == FAILURE, first["state_string"]
        failed = {s["name"]: s["results"] for s in steps(farm, first["buildid"])}
        assert failed["verify and assemble"] == FAILURE and "publish" not in failed, failed
        log = step_log(farm, first["buildid"], "verify and assemble")
        assert f"cannot write the release folder {staging}/{tag}-{first['number']}: the disk is full" in log, log
        assert f"free space on the disk that holds {staging}" in log
        assert "Traceback" not in log
        assert sorted(p.name for p in staging.iterdir()) == [FILLER]  # no half-assembled folder is kept
    assert not (releases / tag).exists()

    # 2. The release folder's disk is full: assembly works, publishing writes nothing visible.
    with full_disk(releases, 64 * 1024):
        push_again(farm, tag)
        second = nth_release(farm, tag, 2)
        assert second["results"] == FAILURE, second["state_string"]
        log = step_log(farm, second["buildid"], "publish")
        assert f"{releases / tag}: release {tag} was not published: the disk is full" in log, log
        assert f"free space on the disk that holds {releases} ([release] directory)" in log
        assert "Traceback" not in log
        assert sorted(p.name for p in releases.iterdir()) == [FILLER]  # no releases/<tag>/, no .tmp

    # 3. Space freed: the same tag releases, complete.
    push_again(farm, tag)
    third = nth_release(farm, tag, 3)
    assert third["results"] == SUCCESS, third["state_string"]
    assert main(["verify", str(releases / tag), "--keys", str(farm.root / "keys")]) == 0
