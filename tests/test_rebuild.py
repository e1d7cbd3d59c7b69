"""`velofarm verify --rebuild TAG`: rebuild a released tag here and compare the archives.

The comparison and the tag check are tested on real archives and a real git repository; the
end-to-end tests release the example with a real farm (master, workers, cargo) and rebuild it.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import FARM_TOML, need_host_toolchains
from support.farmtools import wait_release_of

from velofarm.cli.localfarm import LocalFarm, git, write_farm
from velofarm.cli.main import main
from velofarm.errors import ReleaseError
from velofarm.release.checksums import sha256_file
from velofarm.release.rebuild import DIFFERS, MATCH, SKIPPED, checkout_release, compare_archive, rebuild
from velofarm.spec.farm import parse_spec
from velofarm.worker_tools import pack

TAG = "v0.1.0"
LINUX_TGZ = f"velostream-{TAG}-x86_64-unknown-linux-gnu.tar.gz"


def _pack(root: Path, readme: bytes, name: str = "demo-v1.0.0-x86_64-unknown-linux-gnu") -> Path:
    stage_dir = root / name
    stage_dir.mkdir(parents=True)
    (stage_dir / "demo").write_bytes(b"\x7fELF binary\n")
    (stage_dir / "README.md").write_bytes(readme)
    return pack.write_archive(stage_dir, "tar.gz", 1_700_000_000, root / f"{name}.tar.gz", ["demo"])


def test_an_identical_rebuild_matches(tmp_path: Path) -> None:
    published, rebuilt = _pack(tmp_path / "a", b"hi\n"), _pack(tmp_path / "b", b"hi\n")
    entry = {"name": "linux-x86_64", "sha256": sha256_file(published), "archive": published.name}
    result = compare_archive(entry, published, rebuilt)
    assert result.outcome == MATCH, result.line()


def test_a_different_rebuild_names_the_platform_and_the_first_differing_file(tmp_path: Path) -> None:
    published, rebuilt = _pack(tmp_path / "a", b"hi\n"), _pack(tmp_path / "b", b"hello\n")
    entry = {"name": "linux-x86_64", "sha256": sha256_file(published), "archive": published.name}
    result = compare_archive(entry, published, rebuilt)
    assert result.outcome == DIFFERS
    assert result.line().startswith("linux-x86_64: differs: ")
    assert "demo-v1.0.0-x86_64-unknown-linux-gnu/README.md: content differs" in result.detail


def test_a_signed_platform_is_compared_by_its_recorded_unsigned_digest(tmp_path: Path) -> None:
    signed, unsigned = _pack(tmp_path / "a", b"signed\n"), _pack(tmp_path / "b", b"hi\n")
    entry = {"name": "windows-x86_64-gnu", "sha256": sha256_file(signed), "archive": signed.name,
             "builds": [{"authenticode": {"unsigned_sha256": sha256_file(unsigned), "files": ["demo.exe"]}}]}
    assert compare_archive(entry, signed, unsigned).outcome == MATCH
    other = _pack(tmp_path / "c", b"other\n")
    result = compare_archive(entry, signed, other)
    assert result.outcome == DIFFERS and "unsigned archive's digest" in result.detail


def test_a_moved_tag_is_refused_naming_both_commits(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "a").write_text("1")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "one", cwd=repo)
    released = git("rev-parse", "HEAD", cwd=repo)
    (repo / "a").write_text("2")
    git("commit", "-q", "-am", "two", cwd=repo)
    git("tag", TAG, cwd=repo)  # the tag now points at a later commit than the release's
    with pytest.raises(ReleaseError, match=f"tag {TAG} now points at .* built from {released}"):
        checkout_release(str(repo), TAG, released, tmp_path / "clone")
    checkout_release(str(repo), TAG, git("rev-parse", "HEAD", cwd=repo), tmp_path / "ok")
    assert (tmp_path / "ok" / "a").read_text() == "2"


def test_a_platform_this_host_cannot_build_is_skipped_naming_the_missing_tool(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Cargo.toml").write_text('[package]\nname = "demo"\nversion = "1.2.3"\n')
    git("init", "-q", "-b", "main", cwd=src)
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "demo", cwd=src)
    git("tag", "v1.2.3", cwd=src)
    data = {"project": {"name": "demo", "git_url": str(src), "binaries": {"demo": ["--version"]}},
            "platforms": {"windows-x86_64-gnu": {"linker": "velofarm-no-such-linker",
                                                 "fix_linker": "apt-get install the-linker"}},
            "workers": {"w-1": {"platforms": ["windows-x86_64-gnu"]}}}
    spec = parse_spec(data, tmp_path / "farm.toml", registry={})
    meta = {"tag": "v1.2.3", "commit": git("rev-parse", "HEAD", cwd=src),
            "platforms": [{"name": "windows-x86_64-gnu", "archive": "demo.zip", "sha256": "0" * 64}]}
    [result] = rebuild(spec, meta, tmp_path, spec.repo_url, tmp_path / "work")
    assert result.outcome == SKIPPED, result.line()
    assert "lacks linker velofarm-no-such-linker (fix: apt-get install the-linker)" in result.detail


def test_bad_rebuild_input_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "release.json").write_text(json.dumps({"tag": "v1.0.0"}))
    assert main(["verify", str(folder), "--unsigned", "--rebuild", "v2.0.0"]) == 2
    out = capsys.readouterr().out
    assert "--rebuild v2.0.0: this release is of tag v1.0.0; pass --rebuild v1.0.0" in out and "ok:" not in out
    assert main(["verify", "--github", "o/r", "v1.0.0", "--unsigned", "--rebuild", "v1.0.0"]) == 2
    assert "--rebuild needs the release's release.json" in capsys.readouterr().out


# ------------------------------------------------------------------------- with a real farm

@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    need_host_toolchains()
    farm = write_farm(tmp_path_factory.mktemp("rebuild") / "farm", FARM_TOML, ["linux-x86_64", "windows-x86_64-gnu"])
    farm.init_repo()
    farm.start_all()
    try:
        farm.push_tag(TAG)
        build: dict[str, Any] = wait_release_of(farm, TAG, timeout=1200)
        assert build["results"] == 0, build["state_string"]
    finally:
        farm.stop_all()
    yield farm


@pytest.mark.integration
def test_a_rebuild_of_the_released_tag_matches_on_every_host_platform(
        released: LocalFarm, capsys: pytest.CaptureFixture[str]) -> None:
    folder = released.root / "releases" / TAG
    code = main(["verify", str(folder), "--keys", str(released.root / "keys"), "--rebuild", TAG,
                 "--spec", str(released.spec_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "rebuild linux-x86_64: match: " in out and "rebuild windows-x86_64-gnu: match: " in out
    assert f"rebuild of {TAG}: 2 of 2 platforms match the release" in out


@pytest.mark.integration
def test_a_release_whose_archive_differs_from_the_rebuild_fails_naming_platform_and_file(
        released: LocalFarm, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / TAG
    shutil.copytree(released.root / "releases" / TAG, folder)
    # A different archive, consistent with its checksums (checked --unsigned: no keys can re-sign it).
    with tarfile.open(folder / LINUX_TGZ) as tf:
        members = tf.getmembers()
        tf.extractall(tmp_path / "unpacked")
    epoch = members[0].mtime  # the tag's commit time, as the farm packed it
    executables = [m.name.split("/", 1)[1] for m in members if m.isfile() and m.mode & 0o111]
    top = tmp_path / "unpacked" / LINUX_TGZ.removesuffix(".tar.gz")
    (top / "README.md").write_text("not what the tag holds\n")
    meta = json.loads((folder / "release.json").read_text())
    pack.write_archive(top, "tar.gz", epoch, folder / LINUX_TGZ, executables)
    pack.write_checksum(folder / LINUX_TGZ)
    digest = sha256_file(folder / LINUX_TGZ)
    old = next(p for p in meta["platforms"] if p["name"] == "linux-x86_64")["sha256"]
    (folder / "release.json").write_text((folder / "release.json").read_text().replace(old, digest))
    (folder / "SHA256SUMS").write_text((folder / "SHA256SUMS").read_text().replace(old, digest))
    code = main(["verify", str(folder), "--unsigned", "--rebuild", TAG, "--spec", str(released.spec_path),
                 "--platform", "linux-x86_64"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAIL rebuild linux-x86_64: differs: " in out, out
    assert f"{LINUX_TGZ.removesuffix('.tar.gz')}/README.md: content differs" in out, out
    assert "windows-x86_64-gnu" not in out.split("ok: checksums verify")[-1]
