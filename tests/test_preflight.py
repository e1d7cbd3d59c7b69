"""Preflight checks before the build: version vs tag, toolchain, commit time, build command and environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.worker_jobs import make_job, write_job

from velofarm.spec.job import build_argv
from velofarm.worker_tools import preflight

TAG = "v0.1.0"
posix_only = pytest.mark.skipif(os.name == "nt", reason="fake binaries are shell scripts")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = preflight.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -------------------------------------------------------------------------------- version

CARGO_TOML = """\
[package]
name = "velostream"
version = "{version}"  # the release version
edition = "2024"

[[bin]]
name = "velo-sql"
version = "9.9.9"

[dependencies]
serde = {{ version = "1" }}
"""


@pytest.fixture(params=["tomllib", "regex"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # Python < 3.11 workers read the manifest with the regex fallback: test both readers.
    if request.param == "regex":
        monkeypatch.setattr(preflight, "tomllib", None)
    return str(request.param)


@pytest.mark.parametrize("tag, version", [("v0.1.0", "0.1.0"), ("v1.0.0+build.5", "1.0.0"),
                                          ("v1.0.0-rc.1", "1.0.0-rc.1"),
                                          ("v2.0.0-rc.1+sha.abc", "2.0.0-rc.1")])
def test_version_matches(tmp_path: Path, reader: str, tag: str, version: str) -> None:
    (tmp_path / "Cargo.toml").write_text(CARGO_TOML.format(version=version))
    assert preflight.check_version(make_job(), tag, tmp_path) == version


def test_version_mismatch_message(tmp_path: Path, reader: str, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Cargo.toml").write_text(CARGO_TOML.format(version="0.1.0"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "check", write_job(tmp_path / "job.json", make_job()), "--tag", "v0.2.0")
    assert code == 1
    assert err == ("error: tag v0.2.0 expects version 0.2.0 but Cargo.toml has version 0.1.0 "
                   "(platform linux-x86_64); bump Cargo.toml or tag the right commit\n")


def test_version_prerelease_is_not_the_release(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text(CARGO_TOML.format(version="1.0.0"))
    with pytest.raises(preflight.PreflightError, match="expects version 1.0.0-rc.1 but"):
        preflight.check_version(make_job(), "v1.0.0-rc.1", tmp_path)


@pytest.mark.parametrize("tag", ["1.0.0", "v1.0", "v01.0.0", "release-1", "v1.0.0-rc.01", "v1.0.0+"])
def test_non_semver_tag_is_rejected(tmp_path: Path, tag: str) -> None:
    (tmp_path / "Cargo.toml").write_text(CARGO_TOML.format(version="1.0.0"))
    with pytest.raises(preflight.PreflightError, match=re.escape(f"tag {tag} is not 'v' followed by")):
        preflight.check_version(make_job(), tag, tmp_path)


def test_workspace_inherited_version(tmp_path: Path, reader: str) -> None:
    (tmp_path / "Cargo.toml").write_text('[workspace.package]\nversion = "0.3.0"\n\n'
                                         '[package]\nname = "x"\nversion.workspace = true\n')
    assert preflight.check_version(make_job(), "v0.3.0", tmp_path) == "0.3.0"


def test_missing_manifest_names_it(tmp_path: Path) -> None:
    needle = r"tag v0.1.0: Cargo.toml cannot be read.*linux-x86_64"
    with pytest.raises(preflight.PreflightError, match=needle):
        preflight.check_version(make_job(), TAG, tmp_path)


# ------------------------------------------------------------------------------ toolchain

def test_toolchain_missing_linker_and_runner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = make_job(linker="no-such-mingw-gcc", fix_linker="apt-get install gcc-mingw-w64-x86-64",
                   runner=[str(tmp_path / "no-wine64")], fix_runner="apt-get install wine64")
    checks = {c.name: c for c in preflight.check_toolchain(job["platform"], False)}
    assert not checks["linker"].ok and not checks["runner"].ok
    assert checks["linker"].line() == ("MISSING linker no-such-mingw-gcc (not on PATH) -> fix: "
                                       "apt-get install gcc-mingw-w64-x86-64")
    code, out, err = run(capsys, "toolchain", write_job(tmp_path / "job.json", job), "--tag", TAG)
    assert code == 1
    assert "-> fix: apt-get install wine64" in out
    assert err.startswith(f"error: tag {TAG}, platform linux-x86_64: worker ") and "linker, runner" in err


def test_toolchain_protoc_fix_follows_the_worker_os(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    for os_name, fix in [("macos", "brew install protobuf"), ("windows", "choco install protoc")]:
        checks = preflight.check_toolchain(make_job(os=os_name)["platform"], True)
        protoc = next(c for c in checks if c.name == "protoc")
        assert not protoc.ok and protoc.fix == fix


@pytest.mark.skipif(shutil.which("rustc") is None or shutil.which("cargo") is None,
                    reason="needs rustc and cargo on PATH")
def test_toolchain_host_target_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    host = next(line.split(": ", 1)[1] for line in info.splitlines() if line.startswith("host: "))
    job = make_job(target=host)
    checks = preflight.check_toolchain(job["platform"], False)
    assert [(c.name, c.ok) for c in checks] == [("cargo", True), ("rustc", True), ("target", True)]
    assert checks[2].line().startswith(f"ok   target {host} (")
    code, out, _ = run(capsys, "toolchain", write_job(tmp_path / "job.json", job))
    assert code == 0 and f"ok   target {host}" in out


def test_toolchain_missing_target_library(tmp_path: Path) -> None:
    if shutil.which("rustc") is None:
        pytest.skip("needs rustc on PATH")
    riscv = "riscv64gc-unknown-none-elf"
    job = make_job(target=riscv, fix_target=f"rustup target add {riscv}")
    target = next(c for c in preflight.check_toolchain(job["platform"], False) if c.name == "target")
    if target.ok:
        pytest.skip("this machine happens to have the riscv64 standard library")
    assert target.line().startswith("MISSING target riscv64gc-unknown-none-elf (no ")
    assert target.fix == "rustup target add riscv64gc-unknown-none-elf"


def test_toolchain_cross_needs_cross_and_an_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    job = make_job(method="cross", fix_cross="cargo install cross --locked", fix_docker="start docker")
    checks = preflight.check_toolchain(job["platform"], False)
    assert [(c.name, c.ok, c.fix) for c in checks] == [
        ("cross", False, "cargo install cross --locked"), ("docker", False, "start docker")]


# ---------------------------------------------------------------------------------- build

def test_build_argv_golden() -> None:
    cargo = make_job(cargo="/usr/bin/cargo", target="x86_64-pc-windows-gnu")["platform"]
    assert build_argv(cargo) == [
        "/usr/bin/cargo", "build", "--release", "--locked", "--no-default-features",
        "--target", "x86_64-pc-windows-gnu"]
    cross = make_job(method="cross", target="aarch64-unknown-linux-musl")["platform"]
    assert build_argv(cross) == [
        "cross", "build", "--release", "--locked", "--no-default-features",
        "--target", "aarch64-unknown-linux-musl"]
    assert build_argv(cross, "rust/Cargo.toml")[-2:] == ["--manifest-path", "rust/Cargo.toml"]


def test_build_env_remaps_paths_and_sets_epoch() -> None:
    platform = make_job(env={"RUSTC": "/usr/bin/rustc"},
                        rustflags=["-C", "link-arg=-Wl,--no-insert-timestamp"])["platform"]
    env = preflight.build_env(platform, "/b/src", 1767225600, cargo_home="/home/w/.cargo")
    assert env == {
        "RUSTC": "/usr/bin/rustc", "SOURCE_DATE_EPOCH": "1767225600",
        "RUSTFLAGS": "--remap-path-prefix=/b/src=/build --remap-path-prefix=/home/w/.cargo=/cargo "
                     "-C link-arg=-Wl,--no-insert-timestamp"}
    assert env == preflight.build_env(platform, "/b/src", 1767225600, cargo_home="/home/w/.cargo")


def test_build_env_windows_paths_and_spaces() -> None:
    env = preflight.build_env(make_job()["platform"], "C:\\b\\my src", 1, cargo_home="C:\\Users\\w\\.cargo")
    assert "RUSTFLAGS" not in env
    assert env["CARGO_ENCODED_RUSTFLAGS"].split("\x1f") == [
        "--remap-path-prefix=C:\\b\\my src=/build", "--remap-path-prefix=C:\\Users\\w\\.cargo=/cargo"]
    with pytest.raises(ValueError):
        preflight.build_env(make_job()["platform"], "relative/src", 1, cargo_home="/c")


def fake_toolchain(tmp_path: Path) -> dict[str, Any]:
    """A job whose cargo is sh and whose rustc is a script naming a sysroot with the target's library."""
    sysroot = tmp_path / "sysroot"
    (sysroot / "lib" / "rustlib" / "x86_64-unknown-linux-gnu" / "lib").mkdir(parents=True)
    rustc = tmp_path / "rust" / "rustc"
    rustc.parent.mkdir()
    rustc.write_text(f'#!/bin/sh\n[ "$1" = -vV ] && echo "rustc 1.63.0 (Debian)" && echo "host: x" && exit 0\n'
                     f"echo {sysroot}\n")
    rustc.chmod(0o755)
    return make_job(cargo="sh", env={"RUSTC": str(rustc)})


def git_source(path: Path, version: str, epoch: int) -> Path:
    """A real git checkout whose one commit was made at `epoch`."""
    path.mkdir()
    (path / "Cargo.toml").write_text(CARGO_TOML.format(version=version))
    env = {**os.environ, "GIT_AUTHOR_DATE": f"@{epoch} +0000", "GIT_COMMITTER_DATE": f"@{epoch} +0000"}
    for argv in (["init", "-q"], ["add", "Cargo.toml"],
                 ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "release"]):
        subprocess.run(["git", *argv], cwd=path, env=env, check=True, capture_output=True)
    return path


@posix_only
def test_check_runs_every_preflight_check_in_one_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    job = fake_toolchain(tmp_path)
    source = git_source(tmp_path / "src", "0.1.0", 1700000000)
    monkeypatch.chdir(source)
    code, out, err = run(capsys, "check", write_job(tmp_path / "job.json", job), "--tag", TAG)
    assert (code, err) == (0, "")
    sections = [line for line in out.splitlines() if line.startswith("== ")]
    assert sections == ["== version", "== toolchain", "== commit time", "== build environment"]
    assert "ok: tag v0.1.0 matches Cargo.toml version 0.1.0" in out and "rustc -vV: rustc 1.63.0 (Debian)" in out
    assert "SOURCE_DATE_EPOCH 1700000000 (2023-11-14T22:13:20Z)" in out
    props = json.loads(next(line for line in out.splitlines() if line.startswith("properties: "))[12:])
    assert props == {"source_date_epoch": 1700000000,
                     "build_env": preflight.build_env(job["platform"], source, 1700000000)}
    assert out.splitlines()[-1] == ("summary: version 0.1.0 = tag v0.1.0; toolchain ok (rustc 1.63.0); "
                                    "commit time 2023-11-14T22:13:20Z; build env (3 variables)")


@posix_only
def test_check_stops_at_the_first_failed_check_and_says_which(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    job = fake_toolchain(tmp_path)
    source = tmp_path / "not-a-checkout"
    source.mkdir()
    (source / "Cargo.toml").write_text(CARGO_TOML.format(version="0.1.0"))
    monkeypatch.chdir(source)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no enclosing repository counts
    code, out, err = run(capsys, "check", write_job(tmp_path / "job.json", job), "--tag", TAG)
    assert code == 1 and "toolchain ok" not in out and "properties: " not in out and "summary: " not in out
    assert err.startswith(f"error: tag {TAG}: {source} has no readable commit time (")
