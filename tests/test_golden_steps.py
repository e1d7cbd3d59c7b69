"""Golden step commands: every catalogue platform's factory, rendered with fixed properties.

A change to what a worker runs shows up as a diff of tests/golden/<platform>.json. When the
change is intended, regenerate and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_steps.py
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from buildbot.process.properties import Properties
from conftest import FARM_TOML
from twisted.python.failure import Failure

import velofarm
from velofarm.buildmaster.factories import platform_factory
from velofarm.spec.farm import Spec, load_spec
from velofarm.spec.platforms import catalogue_data
from velofarm.worker_tools import preflight

GOLDEN = Path(__file__).resolve().parent / "golden"
ARTIFACTS = Path("/srv/velofarm/master/artifacts")
PLATFORMS = sorted(catalogue_data())
TAG = "v1.2.3"
EPOCH = 1700000000
PACKAGE = str(Path(velofarm.__file__).resolve().parent)

# What a step does, as far as a worker sees it: its command and environment, where it runs, and
# what it transfers. Recorded when the step has the attribute and it is set.
FIELDS = ("command", "env", "workdir", "repourl", "branch", "mode", "method", "alwaysUseLatest", "dir",
          "mastersrc", "workerdest", "workersrc", "masterdest", "s", "property",
          "artifacts_root", "platform", "archive", "source_dir", "python", "bundle", "logEnviron",
          "max_bytes", "job", "bundled", "sets")
FLAGS = ("haltOnFailure", "alwaysRun", "hideStepIf", "flunkOnFailure")


def properties(platform: str, builddir: str | None = None, sep: str = "/") -> Properties:
    """What a build has when its cargo step runs; build_env is what the worker's preflight prints
    (the real function, run here as the worker would, with the worker's paths)."""
    builddir = builddir or f"/w/build-{platform}"
    worker_env = preflight.build_env(spec().platforms[platform].to_json(), f"{builddir}{sep}build", EPOCH,
                                     cargo_home="/home/w/.cargo" if sep == "/" else "C:\\Users\\Build Bot\\.cargo")
    return Properties(tag=TAG, builddir=builddir, source_date_epoch=EPOCH, buildnumber=7,
                      workername="w1", build_env=worker_env)


def render(props: Properties, value: Any) -> Any:
    """Render synchronously: Interpolate and Property need nothing but the properties."""
    results: list[Any] = []
    props.render(value).addBoth(results.append)
    assert results, f"rendering {value!r} did not finish synchronously"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def portable(value: Any) -> Any:
    """The master's checkout path differs between machines; the golden files must not."""
    if isinstance(value, str):
        return value.replace(PACKAGE, "<velofarm>")
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    return value


def describe(step: Any, props: Properties) -> dict[str, Any]:
    record: dict[str, Any] = {"name": step.name, "class": type(step).__name__}
    for field in FIELDS:
        value = getattr(step, field, None)
        if value is None or (field == "env" and value == {}):
            continue
        rendered = render(props, value)
        if field == "s" and isinstance(rendered, bytes):
            continue  # the tools bundle: its job and member names are recorded as data instead
        record[field] = portable(rendered)
    for flag in FLAGS:
        value = getattr(step, flag, None)
        if isinstance(value, bool):
            record[flag] = value
    return record


@cache
def spec() -> Spec:
    return load_spec(FARM_TOML)


@cache
def rendered(platform: str) -> list[dict[str, Any]]:
    factory = platform_factory(spec(), spec().platforms[platform], ARTIFACTS)
    props = properties(platform)
    steps = [describe(step_factory.buildStep(), props) for step_factory in factory.steps]
    # JSON round trip: tuples become lists, exactly as the golden file reads back
    return json.loads(json.dumps(steps))


def golden_text(platform: str) -> str:
    return json.dumps({"platform": platform, "properties": {"tag": TAG, "builddir": f"/w/build-{platform}",
                                                            "source_date_epoch": EPOCH, "buildnumber": 7,
                                                            "workername": "w1"},
                       "steps": rendered(platform)}, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def test_farm_toml_has_every_catalogue_platform() -> None:
    assert sorted(spec().platforms) == PLATFORMS and len(PLATFORMS) == 8


@pytest.mark.parametrize("platform", PLATFORMS)
def test_golden(platform: str) -> None:
    path = GOLDEN / f"{platform}.json"
    text = golden_text(platform)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {Path(__file__).name}"
    expected = json.loads(path.read_text(encoding="utf-8"))
    actual = json.loads(text)
    assert [s["name"] for s in actual["steps"]] == [s["name"] for s in expected["steps"]], \
        "the step list changed: if intended, regenerate with UPDATE_GOLDEN=1 and review the diff"
    for got, want in zip(actual["steps"], expected["steps"], strict=True):
        assert got == want, f"step '{want['name']}' changed: if intended, regenerate with UPDATE_GOLDEN=1"
    assert actual == expected


def test_no_stale_golden_files() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == PLATFORMS


def test_rendering_left_no_placeholders() -> None:
    for platform in PLATFORMS:
        text = json.dumps(rendered(platform))
        assert "%(" not in text and "Interpolate" not in text and "Property(" not in text


# --------------------------------------------------------- facts checked independently of the files

def step(platform: str, name: str) -> dict[str, Any]:
    found = [s for s in rendered(platform) if s["name"] == name]
    assert len(found) == 1, f"{platform}: expected one step named {name!r}"
    return found[0]


def build_step(platform: str) -> dict[str, Any]:
    found = [s for s in rendered(platform) if "build" in s.get("command", [])[1:2] and "--target" in s["command"]]
    assert len(found) == 1, f"{platform}: expected one build step"
    return found[0]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_build_command(platform: str) -> None:
    p = spec().platforms[platform]
    program = "cross" if p.method == "cross" else p.cargo
    assert build_step(platform)["command"] == [program, "build", "--release", "--locked", "--no-default-features",
                                               "--target", p.target]


def test_cross_and_cargo_platforms() -> None:
    programs = {p: build_step(p)["command"][0] for p in PLATFORMS}
    assert programs == {"linux-x86_64-musl": "cross", "linux-arm64-musl": "cross", "macos-x86_64": "cargo",
                        "macos-arm64": "cargo", "windows-x86_64-msvc": "cargo", "linux-x86_64": "cargo",
                        "windows-x86_64-gnu": "/usr/bin/cargo", "linux-arm64": "/usr/bin/cargo"}


def test_windows_gnu_uses_debians_toolchain_without_timestamps() -> None:
    env = build_step("windows-x86_64-gnu")["env"]
    assert env["RUSTC"] == "/usr/bin/rustc"
    flags = env["RUSTFLAGS"].split()
    assert "link-arg=-Wl,--no-insert-timestamp" in flags and flags[flags.index("link-arg=-Wl,--no-insert-timestamp") - 1] == "-C"
    for platform in PLATFORMS:
        if platform not in ("windows-x86_64-gnu", "linux-arm64"):
            assert "RUSTC" not in build_step(platform)["env"]
        if platform != "windows-x86_64-gnu":
            assert "--no-insert-timestamp" not in build_step(platform)["env"]["RUSTFLAGS"]


def test_linux_arm64_cross_links_with_debians_aarch64_gcc_and_smokes_under_qemu() -> None:
    env = build_step("linux-arm64")["env"]
    assert env["RUSTC"] == "/usr/bin/rustc"
    assert env["CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER"] == "aarch64-linux-gnu-gcc"
    assert spec().platforms["linux-arm64"].runner == ("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_reproducibility_env(platform: str) -> None:
    env = build_step(platform)["env"]
    assert f"--remap-path-prefix=/w/build-{platform}/build=/build" in env["RUSTFLAGS"].split()
    assert env["SOURCE_DATE_EPOCH"] == str(EPOCH)
    assert env["CARGO_TARGET_DIR"] == f"/w/build-{platform}/../.cargo-target/{platform}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_tools_run_with_the_platforms_python(platform: str) -> None:
    python = "python" if platform == "windows-x86_64-msvc" else "python3"
    assert spec().platforms[platform].python == python
    tools = {"preflight": "preflight", "smoke test": "gates", "size gate": "gates", "stage": "stage",
             "archive": "pack"}
    for name, tool in tools.items():
        command = step(platform, name)["command"]
        assert command[:3] == [python, "../tools/velofarm-tools.pyz", tool], name
    store = step(platform, "store artifact")  # its command (transfer.py upload) is made when it runs
    assert (store["python"], store["bundle"]) == (python, "../tools/velofarm-tools.pyz")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_about_ten_steps_each_a_phase(platform: str) -> None:
    assert [s["name"] for s in rendered(platform)] == [
        "checkout tag", "send tools", "preflight", "cargo build", "smoke test", "size gate", "stage", "archive",
        "store artifact"]
    assert step(platform, "preflight")["sets"] == ["source_date_epoch", "build_env"]
    assert step(platform, "preflight")["command"][3:] == ["check", "../tools/velofarm-tools.pyz", "--tag", TAG]
    assert "--clean" in step(platform, "stage")["command"]  # stage empties ../dist: no clean-dist step


@pytest.mark.parametrize("platform", PLATFORMS)
def test_archive_name(platform: str) -> None:
    p = spec().platforms[platform]
    ext = "zip" if platform.startswith("windows") else "tar.gz"
    name = f"velostream-v1.2.3-{p.target}.{ext}"
    archive = step(platform, "archive")["command"]
    assert archive[archive.index("--format") + 1] == ext
    assert archive[archive.index("--out") + 1] == f"../dist/{name}"
    assert archive[archive.index("--epoch") + 1] == str(EPOCH)
    # the upload hashes and sends that same file, with no .sha256 beside it (one process does both)
    store = step(platform, "store artifact")
    assert (store["archive"], store["source_dir"]) == (name, "../dist")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_checkout_and_job(platform: str) -> None:
    checkout = rendered(platform)[0]
    assert (checkout["class"], checkout["branch"], checkout["repourl"]) == (
        "Git", f"refs/tags/{TAG}", "https://github.com/velostreamai/velostream.git")
    tools = step(platform, "send tools")
    assert tools["workerdest"] == "../tools/velofarm-tools.pyz"
    assert tools["bundled"] == ["__main__.py", "gates.py", "pack.py", "preflight.py", "stage.py", "transfer.py",
                                "job.json"]
    assert tools["job"]["platform"]["target"] == spec().platforms[platform].target
    assert tools["job"]["project"] == "velostream"
    assert {b["name"] for b in tools["job"]["binaries"]} >= {"velo-sql", "velo-cli"}


@pytest.mark.parametrize("platform", ["linux-x86_64", "windows-x86_64-msvc"])
def test_cargo_home_is_remapped_like_preflight_does(platform: str) -> None:
    env = build_step(platform)["env"]
    flags = env.get("CARGO_ENCODED_RUSTFLAGS", "").split("\x1f") + env.get("RUSTFLAGS", "").split()
    assert any(f.startswith("--remap-path-prefix=") and f.endswith("=/cargo") for f in flags)


def test_builddir_with_a_space_keeps_the_remap_flag_whole() -> None:
    platform = "windows-x86_64-msvc"
    factory = platform_factory(spec(), spec().platforms[platform], ARTIFACTS)
    props = properties(platform, "C:\\Users\\Build Bot\\w\\build-msvc", sep="\\")
    cargo = next(s for s in (f.buildStep() for f in factory.steps) if s.name == "cargo build")
    env = render(props, cargo.env)
    remap = "--remap-path-prefix=C:\\Users\\Build Bot\\w\\build-msvc\\build=/build"
    if "CARGO_ENCODED_RUSTFLAGS" in env:
        assert remap in env["CARGO_ENCODED_RUSTFLAGS"].split("\x1f")
    else:
        assert remap in env["RUSTFLAGS"].split()
