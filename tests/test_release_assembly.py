"""Release assembly and verification over a fake artifact store: complete and verified, or nothing at all."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from conftest import need

from velofarm.artifacts.store import BuildIdentity, commit_incoming, incoming_dir
from velofarm.errors import ReleaseError
from velofarm.release.assemble import assemble_release
from velofarm.release.checksums import checksum_line, parse_sums, read_checksum_file
from velofarm.release.model import NOTES_FILE, RELEASE_JSON, SUMS_FILE, content_type
from velofarm.release.verify import load_release, verify_release
from velofarm.spec.farm import Spec, parse_spec
from velofarm.spec.job import archive_name
from velofarm.spec.platforms import catalogue
from velofarm.worker_tools import pack

TAG = "v1.2.3"
COMMIT = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
PLATFORMS = ("linux-x86_64", "windows-x86_64-gnu")  # both build on one Linux worker


def make_spec(tmp_path: Path, platforms: tuple[str, ...] = PLATFORMS) -> Spec:
    data = {
        "project": {"name": "demo", "title": "Demo", "git_url": "https://example.invalid/demo.git",
                    "ship": ["README.md", "configs"],
                    "binaries": {"demo-gen": [], "demo": ["--version"]}},
        "platforms": {p: {} for p in platforms},
        "workers": {"lin-1": {"platforms": list(platforms)}},
    }
    return parse_spec(data, tmp_path / "farm.toml", registry={})


def archive_bytes(spec: Spec, platform: str, salt: str = "") -> bytes:
    """A small real archive, different for each platform (and salt)."""
    p = spec.platforms[platform]
    text = f"{spec.project.name} {platform} {salt}\n".encode()
    if p.archive == "zip":
        buf = BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(zipfile.ZipInfo("demo/README.md", (2024, 1, 1, 0, 0, 0)), text)
        return buf.getvalue()
    return gzip.compress(text, mtime=0)


BUILDS = {"linux-x86_64": [11], "windows-x86_64-gnu": [12]}  # the builds "this release triggered"


def store_builds(spec: Spec) -> dict[str, list[int]]:
    """The build ids fill_store uses: one per platform, from 11 in farm.toml's order (BUILDS for PLATFORMS)."""
    return {name: [11 + i] for i, name in enumerate(spec.platforms)}


def store_build(root: Path, spec: Spec, tag: str, name: str, build_id: int, content: bytes,
                commit: str = COMMIT) -> Path:
    """Put one build's archive into the store the way the master does (commit_incoming)."""
    archive = archive_name(spec.project.name, tag, spec.platforms[name])
    incoming = incoming_dir(root, tag, name, build_id)
    incoming.mkdir(parents=True)
    (incoming / archive).write_bytes(content)
    pack.write_checksum(incoming / archive)
    record = BuildIdentity(tag=tag, platform=name, build_id=build_id, build_number=build_id % 100,
                         builder=f"build-{name}", worker="lin-1", commit=commit, archive=archive)
    return commit_incoming(root, record)


def fill_store(spec: Spec, root: Path, tag: str = TAG, salt: str = "") -> dict[str, Path]:
    """One stored build per platform (store_builds), as the master's upload step leaves them."""
    return {name: store_build(root, spec, tag, name, ids[0], archive_bytes(spec, name, salt))
            for name, ids in store_builds(spec).items()}


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    return make_spec(tmp_path)


@pytest.fixture
def store(spec: Spec, tmp_path: Path) -> dict[str, Path]:
    return fill_store(spec, tmp_path / "artifacts")


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    folder = tmp_path / "staging"
    folder.mkdir()
    return folder


def assemble(spec: Spec, tmp_path: Path, staging: Path, tag: str = TAG) -> Path:
    return assemble_release(spec, tag, COMMIT, tmp_path / "artifacts", staging / tag, BUILDS)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------- assembly

def test_assembled_release_holds_exactly_the_assets(spec: Spec, store: dict[str, Path], tmp_path: Path,
                                                    staging: Path) -> None:
    out = assemble(spec, tmp_path, staging)
    names = sorted(p.name for p in store.values())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        names + [f"{n}.sha256" for n in names] + [SUMS_FILE, NOTES_FILE, RELEASE_JSON])
    for path in store.values():
        assert (out / path.name).read_bytes() == path.read_bytes()
        assert (out / f"{path.name}.sha256").read_text() == f"{sha(path)}  {path.name}\n"
    assert [p.name for p in staging.iterdir()] == [TAG]  # no temporary folder left beside it


def test_sha256sums_is_sorted_and_exact(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path) -> None:
    out = assemble(spec, tmp_path, staging)
    text = (out / SUMS_FILE).read_text(encoding="utf-8")
    expected = "".join(checksum_line(sha(p), p.name) for p in sorted(store.values(), key=lambda p: p.name))
    assert text == expected
    assert "\r" not in text and text.endswith("\n")
    assert parse_sums(text, SUMS_FILE) == {p.name: sha(p) for p in store.values()}


def test_real_sha256sum_accepts_the_release(spec: Spec, store: dict[str, Path], tmp_path: Path,
                                            staging: Path) -> None:
    tool = need("sha256sum", "coreutils")
    out = assemble(spec, tmp_path, staging)
    done = subprocess.run([tool, "--strict", "-c", SUMS_FILE], check=False, cwd=out, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(done.stdout.splitlines()) == sorted(f"{p.name}: OK" for p in store.values())
    for path in store.values():
        one = subprocess.run([tool, "--strict", "-c", f"{path.name}.sha256"], check=False, cwd=out, capture_output=True)
        assert one.returncode == 0
    # ... and it would notice a damaged archive
    with open(out / store["linux-x86_64"].name, "ab") as fh:
        fh.write(b"x")
    assert subprocess.run([tool, "-c", SUMS_FILE], check=False, cwd=out, capture_output=True).returncode != 0


def notes_sections(notes: str) -> dict[str, str]:
    parts = re.split(r"^### ", notes, flags=re.MULTILINE)[1:]
    return {part.split(" ", 1)[0]: part.split("\n## ", 1)[0] for part in parts}


def test_notes_cover_exactly_the_built_platforms(spec: Spec, store: dict[str, Path], tmp_path: Path,
                                                 staging: Path) -> None:
    notes = (assemble(spec, tmp_path, staging) / NOTES_FILE).read_text(encoding="utf-8")
    assert notes.startswith(f"# Demo {TAG}\n")
    assert COMMIT in notes and "for 2 platform(s)" in notes
    for name, platform in spec.platforms.items():
        assert f"### {name} (`{platform.target}`)" in notes
        assert sha(store[name]) in notes
    others = [p.target for n, p in catalogue().items() if n not in spec.platforms]
    assert len(others) == 6
    for target in others:
        assert target not in notes
    assert "Pre-release" not in notes
    assert "- `demo`" in notes and "- `demo-gen`" in notes and "├── configs" in notes


def test_notes_install_windows_the_windows_way(spec: Spec, store: dict[str, Path], tmp_path: Path,
                                               staging: Path) -> None:
    notes = (assemble(spec, tmp_path, staging) / NOTES_FILE).read_text(encoding="utf-8")
    sections = notes_sections(notes)
    assert set(sections) == set(PLATFORMS)
    win, lin = sections["windows-x86_64-gnu"], sections["linux-x86_64"]
    zip_name = store["windows-x86_64-gnu"].name
    assert "```powershell" in win and "```sh" not in win
    assert f"Get-FileHash -Algorithm SHA256 {zip_name}" in win and sha(store["windows-x86_64-gnu"]) in win
    assert f"Expand-Archive {zip_name}" in win
    # the smoke-tested binary is the one shown running, with its .exe
    assert "\\demo.exe --version" in win
    assert "```sh" in lin and "powershell" not in lin.lower()
    assert f"sha256sum -c {store['linux-x86_64'].name}.sha256" in lin and f"tar xzf {store['linux-x86_64'].name}" in lin
    assert "/demo --version" in lin


def test_release_json(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path) -> None:
    out = assemble(spec, tmp_path, staging)
    meta = json.loads((out / RELEASE_JSON).read_text(encoding="utf-8"))
    assert (meta["project"], meta["tag"], meta["version"], meta["commit"], meta["prerelease"], meta["title"]) == (
        "demo", TAG, "1.2.3", COMMIT, False, f"Demo {TAG}")
    assert [(p["name"], p["target"], p["archive"], p["sha256"], p["size"]) for p in meta["platforms"]] == [
        (n, spec.platforms[n].target, store[n].name, sha(store[n]), store[n].stat().st_size) for n in PLATFORMS]
    assets = {a["name"]: a for a in meta["assets"]}
    assert set(assets) == {p.name for p in out.iterdir()} - {NOTES_FILE, RELEASE_JSON}
    for name, entry in assets.items():
        assert (entry["size"], entry["sha256"]) == ((out / name).stat().st_size, sha(out / name))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["created_at"])


@pytest.mark.parametrize("tag,prerelease,version", [
    ("v1.2.3-rc.1", True, "1.2.3-rc.1"), ("v0.0.1-test.9", True, "0.0.1-test.9"),
    ("v1.2.3+build.5", False, "1.2.3"), ("v2.0.0-sprint", True, "2.0.0-sprint"),
])
def test_prerelease_follows_semver(spec: Spec, tmp_path: Path, staging: Path, tag: str, prerelease: bool,
                                   version: str) -> None:
    fill_store(spec, tmp_path / "artifacts", tag=tag)
    out = assemble(spec, tmp_path, staging, tag=tag)
    meta = json.loads((out / RELEASE_JSON).read_text(encoding="utf-8"))
    assert (meta["prerelease"], meta["version"]) == (prerelease, version)
    assert ("**Pre-release**" in (out / NOTES_FILE).read_text(encoding="utf-8")) == prerelease
    assert verify_release(out) == []
    assert load_release(out).prerelease is prerelease


def test_load_release(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path) -> None:
    out = assemble(spec, tmp_path, staging)
    assert verify_release(out) == []
    release = load_release(out)
    assert (release.tag, release.version, release.commit, release.project, release.prerelease) == (
        TAG, "1.2.3", COMMIT, "demo", False)
    assert release.platforms == PLATFORMS
    assert release.notes == (out / NOTES_FILE).read_text(encoding="utf-8")
    by_name = {a.name: a for a in release.assets}
    zip_name = store["windows-x86_64-gnu"].name
    assert by_name[zip_name].sha256 == sha(store["windows-x86_64-gnu"])
    assert by_name[zip_name].content_type == "application/zip"
    assert by_name[store["linux-x86_64"].name].content_type == "application/gzip"
    assert by_name[SUMS_FILE].content_type == "text/plain"
    assert content_type("x.bin") == "application/octet-stream"


# ------------------------------------------------------------------------------ assembly refusals

def refused(spec: Spec, tmp_path: Path, staging: Path, tag: str = TAG) -> str:
    with pytest.raises(ReleaseError) as info:
        assemble(spec, tmp_path, staging, tag=tag)
    assert list(staging.iterdir()) == [], "a refused assembly must leave no output and no temporary folder"
    return str(info.value)


@pytest.mark.parametrize("suffix", ["", ".sha256"])
def test_missing_platform_artifact(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path,
                                   suffix: str) -> None:
    path = store["windows-x86_64-gnu"]
    Path(f"{path}{suffix}").unlink()
    msg = refused(spec, tmp_path, staging)
    assert f"tag {TAG}: platform windows-x86_64-gnu: {path}{suffix} is missing" in msg
    assert "build 12, which this release triggered, stored nothing; rebuild the release" in msg


def test_platform_never_built(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path) -> None:
    shutil.rmtree(store["linux-x86_64"].parent)
    assert "platform linux-x86_64:" in refused(spec, tmp_path, staging)


def test_tampered_archive(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path) -> None:
    path = store["linux-x86_64"]
    good = sha(path)
    with open(path, "ab") as fh:
        fh.write(b"\0")
    msg = refused(spec, tmp_path, staging)
    assert f"tag {TAG}: platform linux-x86_64: {path.name} has SHA-256 {sha(path)} but its .sha256 says {good}" in msg
    assert "rebuild the platform" in msg


@pytest.mark.parametrize("mangle", [
    lambda hexd, name: f"{hexd.upper()}  {name}\n",
    lambda hexd, name: f"{hexd} {name}\n",
    lambda hexd, name: f"{hexd}  {name}",
    lambda hexd, name: f"{hexd[:-1]}  {name}\n",
    lambda hexd, name: f"{hexd} *{name}\n",
    lambda hexd, name: f"{hexd}  {name}\n{hexd}  {name}\n",
    lambda hexd, name: f"{hexd}  ./{name}\n",
    lambda hexd, name: "",
], ids=["uppercase", "one-space", "no-newline", "short-hex", "binary-mode", "two-lines", "path", "empty"])
def test_malformed_checksum_file(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path,
                                 mangle: object) -> None:
    path = store["windows-x86_64-gnu"]
    sums = Path(f"{path}.sha256")
    sums.write_bytes(mangle(sha(path), path.name).encode())  # type: ignore[operator]
    msg = refused(spec, tmp_path, staging)
    assert sums.name in msg


@pytest.mark.parametrize("text", ["{hexd}  {name}\r\n", "{hexd}  {name}\n\n"], ids=["crlf", "blank-line"])
def test_checksum_file_with_other_line_endings(spec: Spec, store: dict[str, Path], tmp_path: Path,
                                               staging: Path, text: str) -> None:
    path = store["windows-x86_64-gnu"]
    sums = Path(f"{path}.sha256")
    sums.write_bytes(text.format(hexd=sha(path), name=path.name).encode())
    assert sums.name in refused(spec, tmp_path, staging)


def test_checksum_file_naming_another_file(spec: Spec, store: dict[str, Path], tmp_path: Path,
                                           staging: Path) -> None:
    path = store["linux-x86_64"]
    Path(f"{path}.sha256").write_text(checksum_line(sha(path), "other.tar.gz"), encoding="utf-8")
    msg = refused(spec, tmp_path, staging)
    assert f"tag {TAG}: platform linux-x86_64: {path.name}.sha256 names 'other.tar.gz', not '{path.name}'" in msg


@pytest.mark.parametrize("tag", ["nightly", "v1.2", "1.2.3", "v1.2.3-01"])
def test_non_semver_tag(spec: Spec, tmp_path: Path, staging: Path, tag: str) -> None:
    msg = refused(spec, tmp_path, staging, tag=tag)
    assert f"tag {tag}: not v + a semantic version" in msg


def test_output_folder_already_exists(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path) -> None:
    out = staging / TAG
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ReleaseError, match=r"already exists; remove it or pick another output folder"):
        assemble(spec, tmp_path, staging)
    assert [p.name for p in staging.iterdir()] == [TAG]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_failure_while_writing_leaves_nothing(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ReleaseError, match=r"cannot write the release folder .*: the disk is full \(No space left "
                                           r"on device\); free space on the disk that holds"):
        assemble(spec, tmp_path, staging)
    monkeypatch.undo()
    assert list(staging.iterdir()) == []


def test_assembly_does_not_touch_the_store(spec: Spec, store: dict[str, Path], tmp_path: Path,
                                           staging: Path) -> None:
    before = {p: p.read_bytes() for p in (tmp_path / "artifacts").rglob("*") if p.is_file()}
    out = assemble(spec, tmp_path, staging)
    (out / store["linux-x86_64"].name).unlink()  # the release's copy is its own
    assert {p: p.read_bytes() for p in (tmp_path / "artifacts").rglob("*") if p.is_file()} == before


# ------------------------------------------------------------------------------------ verification

@pytest.fixture
def release_dir(spec: Spec, store: dict[str, Path], tmp_path: Path, staging: Path) -> Path:
    out = assemble(spec, tmp_path, staging)
    assert verify_release(out) == []
    return out


def edit_meta(directory: Path, change: object) -> None:
    path = directory / RELEASE_JSON
    meta = json.loads(path.read_text(encoding="utf-8"))
    change(meta)  # type: ignore[operator]
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def linux_archive(directory: Path) -> str:
    return next(p.name for p in directory.iterdir() if p.name.endswith(".tar.gz"))


def test_modified_archive(release_dir: Path) -> None:
    name = linux_archive(release_dir)
    with open(release_dir / name, "ab") as fh:
        fh.write(b"!")
    problems = verify_release(release_dir)
    assert problems and all(p.startswith(f"{name}: ") for p in problems), problems
    assert f"{name}: SHA-256 does not match {SUMS_FILE}" in problems


def test_same_size_modification_is_caught(release_dir: Path) -> None:
    name = linux_archive(release_dir)
    data = bytearray((release_dir / name).read_bytes())
    data[-1] ^= 0xFF
    (release_dir / name).write_bytes(bytes(data))
    problems = verify_release(release_dir)
    assert f"{name}: SHA-256 differs from {RELEASE_JSON}" in problems
    assert not any("size" in p for p in problems)


def test_deleted_checksum_file(release_dir: Path) -> None:
    side = f"{linux_archive(release_dir)}.sha256"
    (release_dir / side).unlink()
    problems = verify_release(release_dir)
    assert f"{side}: listed in {RELEASE_JSON} but missing" in problems
    assert all(p.startswith(f"{side}: ") for p in problems), problems


def test_extra_file(release_dir: Path) -> None:
    (release_dir / "evil.sh").write_text("rm -rf /\n", encoding="utf-8")
    assert verify_release(release_dir) == [f"evil.sh: present but not listed in {RELEASE_JSON}"]


def test_sums_line_changed(release_dir: Path) -> None:
    name = linux_archive(release_dir)
    path = release_dir / SUMS_FILE
    path.write_text(re.sub(rf"^[0-9a-f]{{64}}(  {re.escape(name)})$", "0" * 64 + r"\1",
                           path.read_text(encoding="utf-8"), flags=re.MULTILINE), encoding="utf-8")
    problems = verify_release(release_dir)
    assert f"{SUMS_FILE}: SHA-256 differs from {RELEASE_JSON}" in problems
    assert f"{name}: SHA-256 does not match {SUMS_FILE}" in problems
    assert f"{name}.sha256: disagrees with {SUMS_FILE}" in problems


def test_sums_missing_a_line(release_dir: Path) -> None:
    name = linux_archive(release_dir)
    path = release_dir / SUMS_FILE
    path.write_text("".join(line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                            if not line.endswith(f"  {name}\n")), encoding="utf-8")
    assert f"{SUMS_FILE}: {name} is not listed" in verify_release(release_dir)


def test_release_json_size_wrong(release_dir: Path) -> None:
    name = linux_archive(release_dir)
    real = (release_dir / name).stat().st_size

    def change(meta: dict) -> None:  # type: ignore[type-arg]
        next(a for a in meta["assets"] if a["name"] == name)["size"] = real + 1
    edit_meta(release_dir, change)
    assert verify_release(release_dir) == [f"{name}: size {real} but {RELEASE_JSON} says {real + 1}"]


def test_prerelease_flag_flipped(release_dir: Path) -> None:
    edit_meta(release_dir, lambda meta: meta.update(prerelease=True))
    assert verify_release(release_dir) == [f"{RELEASE_JSON}: prerelease is True but tag {TAG} says otherwise"]


def test_missing_notes(release_dir: Path) -> None:
    (release_dir / NOTES_FILE).unlink()
    assert verify_release(release_dir) == [f"{NOTES_FILE}: missing"]


def test_missing_or_broken_release_json(release_dir: Path) -> None:
    (release_dir / RELEASE_JSON).write_text("{", encoding="utf-8")
    assert len(problems := verify_release(release_dir)) == 1 and "not valid JSON" in problems[0]
    (release_dir / RELEASE_JSON).write_text("[1]", encoding="utf-8")
    assert len(problems := verify_release(release_dir)) == 1 and "not a JSON object" in problems[0]
    edit_path = release_dir / RELEASE_JSON
    edit_path.write_text(json.dumps({"tag": TAG}), encoding="utf-8")
    assert verify_release(release_dir) == [f"{edit_path}: field 'commit' is missing"]
    edit_path.unlink()
    assert len(problems := verify_release(release_dir)) == 1 and f"{RELEASE_JSON} is missing" in problems[0]


def test_load_release_lists_every_problem(release_dir: Path) -> None:
    (release_dir / NOTES_FILE).unlink()
    (release_dir / "extra.bin").write_bytes(b"x")
    with pytest.raises(ReleaseError) as info:
        load_release(release_dir)
    msg = str(info.value)
    assert msg.startswith(f"{release_dir}: does not verify:")
    assert f"{NOTES_FILE}: missing" in msg and f"extra.bin: present but not listed in {RELEASE_JSON}" in msg


def test_checksum_file_reader(tmp_path: Path) -> None:
    good = tmp_path / "a.tar.gz.sha256"
    good.write_text(checksum_line("ab" * 32, "a.tar.gz"), encoding="utf-8")
    assert read_checksum_file(good) == ("ab" * 32, "a.tar.gz")
    bad = tmp_path / "b.sha256"
    bad.write_text(f"{'AB' * 32}  b\n", encoding="utf-8")
    with pytest.raises(ReleaseError, match=r"^b\.sha256: not a checksum line"):
        read_checksum_file(bad)
    with pytest.raises(ReleaseError, match="listed twice"):
        parse_sums(checksum_line("ab" * 32, "x") * 2, SUMS_FILE)
    with pytest.raises(ReleaseError, match=r"SHA256SUMS: line 2 is not"):
        parse_sums(checksum_line("ab" * 32, "x") + "garbage\n", SUMS_FILE)


@pytest.mark.parametrize("name", ["../outside.txt", "sub/../../outside.txt"])
def test_asset_names_must_be_plain_file_names(release_dir: Path, name: str) -> None:
    outside = release_dir.parent / "outside.txt"
    outside.write_bytes(b"not part of the release")
    edit_meta(release_dir, lambda meta: meta["assets"].append(
        {"name": name, "size": outside.stat().st_size, "sha256": sha(outside)}))
    (release_dir / "sub").mkdir()
    problems = verify_release(release_dir)
    assert any(name in p for p in problems), problems
