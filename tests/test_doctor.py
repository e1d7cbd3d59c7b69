"""`velofarm doctor`: the toolchain checks of a platform build, run on this machine, with fixes."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import FARM_TOML

from velofarm.cli.localfarm import LocalFarm
from velofarm.errors import SpecError
from velofarm.onboard.doctor import diagnose, render, select_platforms
from velofarm.spec import tomlwrite
from velofarm.spec.farm import load_spec
from velofarm.spec.job import build_job
from velofarm.worker_tools import preflight

MISSING_LINKER = "velofarm-test-no-such-linker"
FIX = "apt-get install velofarm-test-linker"


def spec_with_missing_linker(path: Path) -> Path:
    """farm.toml whose linux-x86_64 platform needs a linker no machine has."""
    data = tomllib.loads(FARM_TOML.read_text())
    data["platforms"]["linux-x86_64"] = {"linker": MISSING_LINKER, "fix_linker": FIX}
    path.write_text(tomlwrite.dumps(data))
    return path


def doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "velofarm.cli.main", "doctor", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def test_missing_item_is_named_with_the_command_that_installs_it(tmp_path: Path) -> None:
    spec = spec_with_missing_linker(tmp_path / "farm.toml")
    out = doctor("--spec", str(spec), "--platform", "linux-x86_64")
    assert out.returncode == 1
    assert f"MISSING linker {MISSING_LINKER} (not on PATH) -> fix: {FIX}" in out.stdout
    assert "lacks linker; run the fix commands above on it, then rebuild" in out.stdout
    assert "doctor: 1 of 1 platforms lack something here (linux-x86_64)" in out.stdout


def test_doctor_prints_what_the_toolchain_step_prints(tmp_path: Path) -> None:
    """One implementation: the doctor's lines are the build step's (preflight.py toolchain)."""
    spec = load_spec(spec_with_missing_linker(tmp_path / "farm.toml"))
    job = tmp_path / "job.json"
    job.write_text(json.dumps(build_job(spec, spec.platforms["linux-x86_64"])))
    step = subprocess.run([sys.executable, preflight.__file__, "toolchain", str(job)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert step.returncode == 1
    ours = doctor("--spec", str(spec.path), "--platform", "linux-x86_64").stdout.splitlines()
    for line in (step.stdout + step.stderr).splitlines():
        if not line.startswith("summary: "):  # the step's one-line summary for the UI
            assert line in ours


def test_linux_arm64_on_a_host_without_the_multiarch_packages_names_each_package(tmp_path: Path) -> None:
    """A PATH without the cross gcc and qemu, and a RUSTC without the arm64 standard library."""
    data = tomllib.loads(FARM_TOML.read_text())
    data["platforms"]["linux-arm64"] = {"env": {"RUSTC": str(tmp_path / "no-rustc")}}
    (tmp_path / "farm.toml").write_text(tomlwrite.dumps(data))
    empty = tmp_path / "bin"
    empty.mkdir()
    out = subprocess.run([sys.executable, "-m", "velofarm.cli.main", "doctor", "--spec", str(tmp_path / "farm.toml"),
                          "--platform", "linux-arm64"], capture_output=True, text=True, timeout=300, check=False,
                         env={"PATH": str(empty), "HOME": str(tmp_path)})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "MISSING linker aarch64-linux-gnu-gcc (not on PATH) -> fix: apt-get install gcc-aarch64-linux-gnu " \
           "libc6-dev-arm64-cross" in out.stdout
    assert "MISSING runner qemu-aarch64 (not on PATH) -> fix: apt-get install qemu-user" in out.stdout
    assert "dpkg --add-architecture arm64 && apt-get update && apt-get install rustc cargo libstd-rust-dev:arm64" \
        in out.stdout
    assert "lacks rustc, target, linker, runner" in out.stdout


def test_every_check_of_a_cross_platform_is_made(tmp_path: Path) -> None:
    spec = load_spec(FARM_TOML)
    calls: list[tuple[str, bool]] = []

    def fake(platform: dict, needs_protoc: bool) -> list[preflight.Check]:  # type: ignore[type-arg]
        calls.append((platform["name"], needs_protoc))
        return preflight.check_toolchain(platform, needs_protoc)
    reports = diagnose(spec, [spec.platforms["linux-arm64-musl"]], check=fake)
    assert calls == [("linux-arm64-musl", False)]
    assert [c.name for c in reports[0].checks] == ["cross", "docker", "runner"]
    text = render(reports, node="builder")
    assert "toolchain for platform linux-arm64-musl (target aarch64-unknown-linux-musl, method cross) on builder:" in text


def test_protoc_is_checked_when_the_project_needs_it(tmp_path: Path) -> None:
    data = tomllib.loads(FARM_TOML.read_text())
    data["project"]["needs_protoc"] = True
    (tmp_path / "farm.toml").write_text(tomlwrite.dumps(data))
    spec = load_spec(tmp_path / "farm.toml")
    report = diagnose(spec, [spec.platforms["macos-arm64"]])[0]
    protoc = next(c for c in report.checks if c.name == "protoc")
    assert protoc.fix == "brew install protobuf"


def test_which_platforms_are_checked() -> None:
    spec = load_spec(FARM_TOML)
    assert [p.name for p in select_platforms(spec, [], None, "macos")] == ["macos-x86_64", "macos-arm64"]
    assert [p.name for p in select_platforms(spec, [], "linux-1", "macos")] == ["linux-x86_64",
                                                                                "windows-x86_64-gnu", "linux-arm64"]
    assert [p.name for p in select_platforms(spec, ["macos-arm64"], None, "linux")] == ["macos-arm64"]
    with pytest.raises(SpecError, match=r"--platform 'macos-arm': not a platform of farm.toml \(did you mean"):
        select_platforms(spec, ["macos-arm"], None, "linux")
    with pytest.raises(SpecError, match="--worker 'nobody': no such worker"):
        select_platforms(spec, [], "nobody", "linux")
    with pytest.raises(SpecError, match="no platform of farm.toml builds on beos"):
        select_platforms(spec, [], None, "beos")


@pytest.mark.integration
def test_a_build_on_a_worker_without_the_toolchain_fails_with_the_doctors_message(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm: LocalFarm = make_farm(["linux-x86_64"], name="doctor")
    data = tomllib.loads(farm.spec_path.read_text())
    data["platforms"]["linux-x86_64"] = {"linker": MISSING_LINKER, "fix_linker": FIX}
    farm.spec_path.write_text(tomlwrite.dumps(data))
    farm.init_repo()
    farm.start_all()
    farm.push_tag("v0.1.0")
    assert farm.wait_release(1, timeout=300)["results"] != 0
    build = farm.builds("build-linux-x86_64")[-1]
    steps = farm.api(f"builds/{build['buildid']}/steps")["steps"]
    failed = [s["name"] for s in steps if s["results"] not in (0, None)]
    assert failed == ["preflight"], failed
    step = next(s for s in steps if s["name"] == "preflight")
    assert step["state_string"].startswith(f"missing linker {MISSING_LINKER} (fix: {FIX})")
    log = ""
    for entry in farm.api(f"steps/{step['stepid']}/logs")["logs"]:
        log += "".join(c["content"] for c in farm.api(f"logs/{entry['logid']}/contents")["logchunks"])
    ours = doctor("--spec", str(farm.spec_path), "--platform", "linux-x86_64").stdout.splitlines()
    missing = f"MISSING linker {MISSING_LINKER} (not on PATH) -> fix: {FIX}"
    verdict = next(line for line in ours if line.startswith("error: platform linux-x86_64"))
    assert missing in ours and missing in log
    assert verdict in log
