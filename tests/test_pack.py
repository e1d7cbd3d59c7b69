"""Staging and packing: stage.py -> deterministic archive -> checksum (pack.py), as a worker runs them."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from velofarm.worker_tools import pack, stage

TAG = "v0.1.0"
EPOCH = 1767225600  # 2026-01-01T00:00:00Z
STAGE = "velostream-v0.1.0-x86_64-unknown-linux-gnu"
SOURCE_FILES = {
    "demo/quickstart/run.sh": "#!/bin/sh\necho quickstart\n",
    "demo/quickstart/README.md": "quickstart\n",
    "demo/trading/data.csv": "a,b\n1,2\n",
    "demo/trading/empty.txt": "",
    "configs/base.yaml": "kafka: {}\n",
    "configs/prod/overrides.yaml": "x: 1\n",
    "README.md": "# Velostream\n",
    "LICENSE": "Apache-2.0\n",
    "docs/user-guides/INSTALL.md": "install\n",
}
BINARIES = ["velo-sql", "velo-cli"]


def make_job(**platform: Any) -> dict[str, Any]:
    base = {"name": "linux-x86_64", "target": "x86_64-unknown-linux-gnu", "os": "linux",
            "method": "cargo", "archive": "tar.gz", "exe_suffix": "", "size_limit_bytes": 30 << 20}
    return {"format": 1, "project": "velostream", "manifest": "Cargo.toml", "needs_protoc": False,
            "ship": ["demo", "configs", "README.md", "LICENSE", "docs/user-guides/INSTALL.md"],
            "binaries": [{"name": b, "smoke": ["--version"]} for b in BINARIES],
            "platform": {**base, **platform}}


def make_tree(root: Path, reverse: bool = False, mtime: int = 1_000_000_000, umask: int = 0o022) -> Path:
    """A source tree and bin dir under root; order, mtimes and umask vary between copies."""
    old = os.umask(umask)
    try:
        items = sorted(SOURCE_FILES.items(), reverse=reverse)
        for rel, text in items:
            path = root / "src" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if rel.endswith(".sh"):
                path.chmod(path.stat().st_mode | 0o111)
            os.utime(path, (mtime, mtime))
        (root / "bin").mkdir()
        for name in sorted(BINARIES, reverse=reverse):
            (root / "bin" / name).write_bytes(b"\x7fELF fake " + name.encode() * 100)
            os.utime(root / "bin" / name, (mtime, mtime))
    finally:
        os.umask(old)
    return root


def staged(root: Path, job: dict[str, Any] | None = None) -> Path:
    job = job or make_job()
    name = f"{job['project']}-{TAG}-{job['platform']['target']}"
    return stage.stage(job, TAG, root / "src", root / "bin", root / "out", name)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "a")


# ---------------------------------------------------------------------------------- stage

def test_stage_copies_binaries_and_ship_entries(tree: Path) -> None:
    folder = staged(tree)
    assert folder == (tree / "out" / STAGE).resolve()
    for rel, text in SOURCE_FILES.items():
        assert (folder / rel).read_text() == text
    for name in BINARIES:
        assert (folder / name).stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in (tree / "out").iterdir()) == [STAGE]


def test_stage_adds_exe_suffix(tree: Path) -> None:
    for name in BINARIES:
        (tree / "bin" / name).rename(tree / "bin" / f"{name}.exe")
    folder = staged(tree, make_job(exe_suffix=".exe", target="x86_64-pc-windows-gnu"))
    assert folder.name == "velostream-v0.1.0-x86_64-pc-windows-gnu"
    assert (folder / "velo-sql.exe").is_file()


def test_stage_is_rerunnable_and_drops_stale_files(tree: Path) -> None:
    folder = staged(tree)
    (folder / "stale.txt").write_text("from an earlier run")
    (tree / "out" / f".{STAGE}.tmp-99999").mkdir()  # a crashed run's leftovers
    assert staged(tree) == folder
    assert not (folder / "stale.txt").exists()
    assert sorted(p.name for p in (tree / "out").iterdir()) == [STAGE]


def test_stage_clean_empties_the_out_folder_but_never_the_sources(tree: Path) -> None:
    (tree / "out").mkdir()
    (tree / "out" / "velostream-v0.0.9-x86_64-unknown-linux-gnu.tar.gz").write_text("an earlier build's archive")
    (tree / "out" / "old-stage").mkdir()
    name = f"velostream-{TAG}-x86_64-unknown-linux-gnu"
    folder = stage.stage(make_job(), TAG, tree / "src", tree / "bin", tree / "out", name, clean=True)
    assert sorted(p.name for p in (tree / "out").iterdir()) == [folder.name]
    for out in (tree / "src", tree, tree / "bin"):  # the source tree, a folder holding it, the binaries
        with pytest.raises(stage.StageError, match="--clean would empty .*; stage into a folder of its own"):
            stage.stage(make_job(), TAG, tree / "src", tree / "bin", out, name, clean=True)
    assert (tree / "src" / "README.md").is_file() and (tree / "bin" / BINARIES[0]).is_file()


def assert_fails(tree: Path, *needles: str, job: dict[str, Any] | None = None) -> None:
    with pytest.raises(stage.StageError) as info:
        staged(tree, job)
    for needle in (TAG, "linux-x86_64", *needles):
        assert needle in str(info.value)
    # Atomic: no stage folder, no temporary folder left behind.
    assert list((tree / "out").iterdir()) == []


def test_missing_ship_entry_fails_naming_it(tree: Path) -> None:
    shutil.rmtree(tree / "src" / "configs")
    assert_fails(tree, "'configs'", "missing", "project.ship")


def test_missing_ship_file_fails_naming_it(tree: Path) -> None:
    (tree / "src" / "docs" / "user-guides" / "INSTALL.md").unlink()
    assert_fails(tree, "docs/user-guides/INSTALL.md")


def test_empty_folder_fails(tree: Path) -> None:
    # The old workflow shipped an empty configs/; here it stops the build.
    shutil.rmtree(tree / "src" / "configs")
    (tree / "src" / "configs" / "nested" / "deeper").mkdir(parents=True)
    assert_fails(tree, "'configs'", "no files")


def test_empty_regular_file_is_allowed(tree: Path) -> None:
    (tree / "src" / "LICENSE").write_text("")
    assert (staged(tree) / "LICENSE").read_text() == ""


def test_missing_binary_fails_and_leaves_nothing(tree: Path) -> None:
    (tree / "bin" / "velo-cli").unlink()
    assert_fails(tree, "velo-cli")


def test_failure_after_previous_success_removes_the_old_stage(tree: Path) -> None:
    staged(tree)
    (tree / "src" / "README.md").unlink()
    assert_fails(tree, "README.md")


def test_ship_entry_escaping_the_tree_is_refused(tree: Path) -> None:
    assert_fails(tree, "'../etc'", job={**make_job(), "ship": ["../etc"]})


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_outside_the_tree_is_refused(tree: Path) -> None:
    outside = tree / "secret.txt"
    outside.write_text("worker secrets")
    (tree / "src" / "configs" / "leak.yaml").symlink_to(outside)
    assert_fails(tree, "'configs'", "outside the source tree")


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_inside_the_tree_is_copied_and_loops_refused(tree: Path) -> None:
    (tree / "src" / "configs" / "readme-link.md").symlink_to(tree / "src" / "README.md")
    folder = staged(tree)
    link = folder / "configs" / "readme-link.md"
    assert not link.is_symlink() and link.read_text() == SOURCE_FILES["README.md"]
    (tree / "src" / "demo" / "loop").symlink_to(tree / "src" / "demo")
    assert_fails(tree, "symlink loop")


def test_cli_stage_error_is_one_line(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    job_file = tree / "job.json"
    job_file.write_text(json.dumps({**make_job(), "ship": ["configs", "nope"]}))
    code = stage.main([str(job_file), "--tag", TAG, "--name", "x-" + TAG, "--src", str(tree / "src"),
                       "--bin-dir", str(tree / "bin"), "--out", str(tree / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "'nope'" in err and TAG in err and "linux-x86_64" in err


# -------------------------------------------------------------------------------- archive

@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_archive_is_deterministic(tmp_path: Path, fmt: str) -> None:
    # Two copies at different paths, created in opposite orders, other mtimes and umask.
    a = make_tree(tmp_path / "first", reverse=False, mtime=1_000_000_000, umask=0o022)
    b = make_tree(tmp_path / "second" / "deeper", reverse=True, mtime=1_700_000_000, umask=0o077)
    out_a = pack.write_archive(staged(a), fmt, EPOCH, tmp_path / f"a.{fmt}")
    old = os.umask(0o077)  # the stage step's own folders get other modes too
    try:
        stage_b = staged(b)
    finally:
        os.umask(old)
    for path in stage_b.rglob("*"):
        os.utime(path, (42, 42))
    out_b = pack.write_archive(stage_b, fmt, EPOCH, tmp_path / f"b.{fmt}")
    assert out_a.read_bytes() == out_b.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_tar_gz_layout_modes_owners_and_times(tree: Path, tmp_path: Path) -> None:
    out = pack.write_archive(staged(tree), "tar.gz", EPOCH, tmp_path / "x.tar.gz")
    with tarfile.open(out, "r:gz") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names[0] == STAGE and {n.split("/")[0] for n in names} == {STAGE}
        assert names == sorted(names, key=lambda n: n.split("/"))
        assert names.index(f"{STAGE}/demo") < names.index(f"{STAGE}/demo/quickstart")
        modes = {m.name.split("/", 1)[-1]: m.mode for m in members}
        assert modes[STAGE] == modes["demo"] == modes["configs/prod"] == 0o755
        assert modes["velo-sql"] == modes["demo/quickstart/run.sh"] == 0o755
        assert modes["README.md"] == modes["configs/base.yaml"] == 0o644
        assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", EPOCH)}
        readme = tar.extractfile(f"{STAGE}/README.md")
        assert readme is not None and readme.read() == SOURCE_FILES["README.md"].encode()
    raw = out.read_bytes()
    assert raw[3] & 0x08 == 0  # no FNAME: the temporary name is not in the gzip header
    assert int.from_bytes(raw[4:8], "little") == EPOCH
    with gzip.open(out) as gz, tarfile.open(fileobj=io.BytesIO(gz.read())) as again:
        assert len(again.getmembers()) == len(members)


def test_zip_layout_modes_and_times(tree: Path, tmp_path: Path) -> None:
    out = pack.write_archive(staged(tree), "zip", EPOCH, tmp_path / "x.zip")
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert infos[0].filename == f"{STAGE}/"
        assert {i.filename.split("/")[0] for i in infos} == {STAGE}
        modes = {i.filename[len(STAGE) + 1:].rstrip("/"): i.external_attr >> 16 for i in infos}
        assert modes["demo"] == stat.S_IFDIR | 0o755
        assert modes["velo-cli"] == modes["demo/quickstart/run.sh"] == stat.S_IFREG | 0o755
        assert modes["LICENSE"] == stat.S_IFREG | 0o644
        assert {(i.date_time, i.create_system) for i in infos} == {((2026, 1, 1, 0, 0, 0), 3)}
        assert zf.read(f"{STAGE}/configs/base.yaml") == SOURCE_FILES["configs/base.yaml"].encode()


def test_declared_executable_gets_0755(tree: Path, tmp_path: Path) -> None:
    folder = staged(tree)
    (folder / "velo-sql").chmod(0o644)  # as on a filesystem without x bits
    out = pack.write_archive(folder, "tar.gz", EPOCH, tmp_path / "x.tar.gz", executables=["velo-sql"])
    with tarfile.open(out) as tar:
        assert tar.getmember(f"{STAGE}/velo-sql").mode == 0o755


def test_zip_time_is_clamped_to_1980() -> None:
    assert pack.zip_date_time(0) == (1980, 1, 1, 0, 0, 0)
    assert pack.zip_date_time(EPOCH + 3) == (2026, 1, 1, 0, 0, 3)


def test_cli_archive_and_bad_format(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = staged(tree)
    assert pack.main(["archive", str(folder), "--format", "zip", "--epoch", str(EPOCH),
                      "--out", str(tmp_path / "x.zip")]) == 0
    assert "x.zip" in capsys.readouterr().out
    with pytest.raises(pack.PackError, match="not one of"):
        pack.write_archive(folder, "rar", EPOCH, tmp_path / "x.rar")


# ------------------------------------------------------------------------------- checksum

def test_checksum_line_format() -> None:
    assert pack.checksum_line("ab" * 32, "x.zip") == f"{'ab' * 32}  x.zip\n"
    with pytest.raises(pack.PackError):
        pack.checksum_line("AB" * 32, "x.zip")


@pytest.mark.parametrize("tool", [["sha256sum", "-c"], ["shasum", "-a", "256", "-c"]])
def test_checksum_verifies_with_real_tools(tree: Path, tmp_path: Path, tool: list[str]) -> None:
    if shutil.which(tool[0]) is None:
        pytest.skip(f"{tool[0]} is not installed")
    archive = pack.write_archive(staged(tree), "tar.gz", EPOCH, tmp_path / f"{STAGE}.tar.gz")
    line = pack.write_checksum(archive)
    sums = archive.with_name(archive.name + ".sha256")
    assert sums.read_bytes() == line.encode() and line.endswith(f"  {archive.name}\n")
    result = subprocess.run([*tool, sums.name], check=False, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    archive.write_bytes(archive.read_bytes() + b"tampered")
    assert subprocess.run([*tool, sums.name], check=False, cwd=tmp_path, capture_output=True).returncode != 0


def test_cli_checksum_prints_line_and_missing_file_fails(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.zip").write_bytes(b"hello")
    assert pack.main(["checksum", str(tmp_path / "a.zip")]) == 0
    digest = pack.sha256_file(tmp_path / "a.zip")
    assert capsys.readouterr().out == f"{digest}  a.zip\nsummary: archive 0 KiB sha256 {digest[:8]}…\n"
    assert pack.main(["checksum", str(tmp_path / "b.zip")]) == 1
    assert capsys.readouterr().err.startswith("error: archive ")


def test_runs_as_a_standalone_script(tree: Path, tmp_path: Path) -> None:
    # The worker runs a downloaded copy with its own Python: no velofarm package around.
    copy = tmp_path / "elsewhere" / "pack.py"
    copy.parent.mkdir()
    shutil.copy(pack.__file__, copy)
    (tmp_path / "a.bin").write_bytes(b"x")
    result = subprocess.run([sys.executable, "-I", str(copy), "checksum", str(tmp_path / "a.bin")],
                            capture_output=True, text=True, cwd=copy.parent, check=False)
    assert result.returncode == 0, result.stderr
    assert "  a.bin\nsummary: archive " in result.stdout
