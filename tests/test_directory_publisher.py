"""The directory publisher: releases/<tag>/ appears complete and verified, once, or not at all."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from test_release_assembly import BUILDS, COMMIT, TAG, fill_store, make_spec

from velofarm.errors import PublishError, ReleaseError
from velofarm.publish.directory import DirectoryPublisher
from velofarm.release.assemble import assemble_release
from velofarm.release.model import NOTES_FILE, RELEASE_JSON, Release
from velofarm.release.verify import load_release, verify_release


def build_release(tmp_path: Path, name: str, salt: str = "", tag: str = TAG) -> Release:
    """A verified release of two platforms, assembled under tmp_path/name."""
    spec = make_spec(tmp_path)
    fill_store(spec, tmp_path / name / "artifacts", tag=tag, salt=salt)
    out = assemble_release(spec, tag, COMMIT, tmp_path / name / "artifacts", tmp_path / name / "staging" / tag,
                           BUILDS)
    return load_release(out)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture
def release(tmp_path: Path) -> Release:
    return build_release(tmp_path, "one")


def test_publish_writes_the_complete_release(tmp_path: Path, release: Release) -> None:
    root = tmp_path / "releases"
    outcome = DirectoryPublisher(root).publish(release)
    final = root / TAG
    assert (outcome.state, outcome.location) == ("published", str(final))
    expected = sorted([a.name for a in release.assets] + [NOTES_FILE, RELEASE_JSON])
    assert sorted(p.name for p in final.iterdir()) == expected
    assert outcome.actions == [f"wrote {len(expected)} files"]
    for name in expected:
        assert (final / name).read_bytes() == (release.directory / name).read_bytes()
    assert verify_release(final) == []
    assert [p.name for p in root.iterdir()] == [TAG]  # no temporary folder left


def test_published_release_is_independent_of_staging(tmp_path: Path, release: Release) -> None:
    root = tmp_path / "releases"
    DirectoryPublisher(root).publish(release)
    shutil.rmtree(release.directory)
    assert load_release(root / TAG).tag == TAG


def test_republish_identical_changes_nothing(tmp_path: Path, release: Release) -> None:
    root = tmp_path / "releases"
    publisher = DirectoryPublisher(root)
    publisher.publish(release)
    before = snapshot(root / TAG)
    again = build_release(tmp_path, "two")  # rebuilt: same bytes, another folder, later mtimes
    assert again.directory != release.directory
    outcome = publisher.publish(again)
    assert outcome.state == "already-published"
    assert outcome.actions == ["nothing changed: identical release exists"]
    assert snapshot(root / TAG) == before
    assert [p.name for p in root.iterdir()] == [TAG]


def test_different_release_for_a_published_tag_is_refused(tmp_path: Path, release: Release) -> None:
    root = tmp_path / "releases"
    publisher = DirectoryPublisher(root)
    publisher.publish(release)
    before = snapshot(root / TAG)
    other = build_release(tmp_path, "two", salt="rebuilt differently")
    with pytest.raises(PublishError) as info:
        publisher.publish(other)
    msg = str(info.value)
    assert f"{root / TAG}: release {TAG} is already published with different assets" in msg
    assert "demo-v1.2.3-x86_64-unknown-linux-gnu.tar.gz" in msg and "never overwritten" in msg
    assert snapshot(root / TAG) == before
    assert [p.name for p in root.iterdir()] == [TAG]


def test_other_tags_publish_beside(tmp_path: Path, release: Release) -> None:
    root = tmp_path / "releases"
    publisher = DirectoryPublisher(root)
    publisher.publish(release)
    publisher.publish(build_release(tmp_path, "rc", tag="v1.2.4-rc.1"))
    assert sorted(p.name for p in root.iterdir()) == [TAG, "v1.2.4-rc.1"]
    assert load_release(root / "v1.2.4-rc.1").prerelease


def test_failure_mid_copy_leaves_nothing(tmp_path: Path, release: Release, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "releases"
    real_copy2 = shutil.copy2
    copied: list[str] = []

    def copy_then_fail(src: object, dst: object, **kwargs: object) -> object:
        if copied:
            raise PermissionError(13, "Permission denied", str(src))
        copied.append(str(dst))
        return real_copy2(src, dst, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "copy2", copy_then_fail)
    with pytest.raises(PublishError, match=r"was not published: Permission denied: .*; make .*releases "
                                           r"writable for the master"):
        DirectoryPublisher(root).publish(release)
    monkeypatch.undo()
    assert len(copied) == 1
    assert list(root.iterdir()) == []  # neither releases/<tag> nor a temporary folder
    # ... and a retry publishes normally
    assert DirectoryPublisher(root).publish(release).state == "published"


def test_release_damaged_after_loading_is_not_published(tmp_path: Path, release: Release) -> None:
    root = tmp_path / "releases"
    archive = next(a for a in release.assets if a.name.endswith(".zip"))
    with open(archive.path, "ab") as fh:
        fh.write(b"late damage")
    with pytest.raises(ReleaseError, match="does not verify"):
        DirectoryPublisher(root).publish(release)
    assert list(root.iterdir()) == []


def test_stale_temporary_folder_is_replaced(tmp_path: Path, release: Release) -> None:
    root = tmp_path / "releases"
    stale = root / f".{TAG}.tmp-{os.getpid()}"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("from a crashed run", encoding="utf-8")
    DirectoryPublisher(root).publish(release)
    assert not (root / TAG / "junk").exists()
    assert verify_release(root / TAG) == []
    assert [p.name for p in root.iterdir()] == [TAG]


def test_publisher_writes_nothing_outside_the_tag_folder(tmp_path: Path, release: Release) -> None:
    outside = release.directory.parent / "outside.txt"
    outside.write_bytes(b"not part of the release")
    meta_path = release.directory / RELEASE_JSON
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["assets"].append({"name": "../outside.txt", "size": outside.stat().st_size,
                           "sha256": hashlib.sha256(outside.read_bytes()).hexdigest()})
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    root = tmp_path / "releases"
    try:
        DirectoryPublisher(root).publish(load_release(release.directory))
    except (ReleaseError, PublishError):
        pass
    assert not (root / "outside.txt").exists()
