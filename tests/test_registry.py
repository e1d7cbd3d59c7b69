"""The worker registry: `worker add|remove|rotate` edits, spec merging, and refusals of bad input."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import FARM_TOML

from velofarm.errors import SpecError
from velofarm.onboard.manage import add_worker, remove_worker, rotate_worker
from velofarm.spec import registry
from velofarm.spec.farm import load_spec


@pytest.fixture
def farm(tmp_path: Path) -> Path:
    """A copy of the repository's farm.toml with its own (empty) secrets folder and registry."""
    spec = tmp_path / "farm.toml"
    spec.write_text(FARM_TOML.read_text(encoding="utf-8"), encoding="utf-8")
    return spec


def state(spec: Path) -> dict[str, object]:
    """Everything `worker add` may write: to prove a refused command wrote nothing."""
    root = spec.parent
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
             if p.is_file() and p.name != ".registry.toml.lock"}
    return files


def test_add_registers_and_spec_merges(farm: Path) -> None:
    added = add_worker(farm, "lin-2", ["linux-x86_64", "windows-x86_64-gnu"], max_builds=2)
    assert added.os == "linux"
    spec = load_spec(farm)
    worker = spec.workers["lin-2"]
    assert worker.platforms == ("linux-x86_64", "windows-x86_64-gnu")
    assert (worker.max_builds, worker.os, worker.source) == (2, "linux", "workers/registry.toml")
    assert spec.workers["linux-1"].source == "farm.toml"
    assert "lin-2" in [w.name for w in spec.workers_for("windows-x86_64-gnu")]
    assert registry.read_registry(farm.parent / "workers" / "registry.toml") == {
        "lin-2": {"platforms": ["linux-x86_64", "windows-x86_64-gnu"], "max_builds": 2, "os": "linux"}}


def test_password_is_strong_private_and_nowhere_else(farm: Path) -> None:
    added = add_worker(farm, "lin-2", ["linux-x86_64"])
    password = added.secret.read_text().strip()
    assert len(password) >= 32
    assert stat.S_IMODE(added.secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(added.secret.parent.stat().st_mode) == 0o700
    for path in farm.parent.rglob("*"):
        if path.is_file() and path != added.secret:
            assert password not in path.read_text(errors="replace"), path


def test_os_comes_from_the_platforms_or_must_match_them(farm: Path) -> None:
    assert add_worker(farm, "mac-2", ["macos-arm64", "macos-x86_64"]).os == "macos"
    assert add_worker(farm, "win-2", ["windows-x86_64-msvc"], os_name="windows").os == "windows"
    with pytest.raises(SpecError, match=r"workers\.m3\.os: 'linux', but platform macos-arm64 builds on macos"):
        add_worker(farm, "m3", ["macos-arm64"], os_name="linux")
    with pytest.raises(SpecError, match="build on different systems; one worker runs one OS"):
        add_worker(farm, "mixed", ["linux-x86_64", "macos-arm64"])


@pytest.mark.parametrize("name, platforms, message", [
    ("lin-2", ["linux-x86"], r"--platform 'linux-x86': not a platform of farm.toml \(did you mean 'linux-x86_64'\?\)"),
    ("lin-2", [], "give at least one --platform"),
    ("lin-2", ["linux-x86_64", "linux-x86_64"], "given twice"),
    ("linux-1", ["linux-x86_64"], r"worker 'linux-1' already exists in farm.toml \[workers.linux-1\]"),
    ("../evil", ["linux-x86_64"], "must not contain a path separator"),
    ("a b", ["linux-x86_64"], "may use only letters, digits"),
    ("x;rm -rf", ["linux-x86_64"], "may use only letters, digits"),
    ("-flag", ["linux-x86_64"], "may use only letters, digits"),
    ("release-coordinator", ["linux-x86_64"], "reserved for the master's own worker"),
])
def test_bad_input_is_refused_and_nothing_written(farm: Path, name: str, platforms: list[str],
                                                  message: str) -> None:
    before = state(farm)
    with pytest.raises(SpecError, match=message):
        add_worker(farm, name, platforms)
    assert state(farm) == before


def test_duplicate_in_registry_is_refused(farm: Path) -> None:
    add_worker(farm, "lin-2", ["linux-x86_64"])
    before = state(farm)
    with pytest.raises(SpecError, match=r"'lin-2' already exists in workers/registry.toml.*worker remove lin-2"):
        add_worker(farm, "lin-2", ["linux-x86_64"])
    assert state(farm) == before


def test_max_builds_out_of_range_is_refused(farm: Path) -> None:
    with pytest.raises(SpecError, match=r"workers\.lin-2\.max_builds: must be a whole number from 1 to 64"):
        add_worker(farm, "lin-2", ["linux-x86_64"], max_builds=0)


def test_secrets_folder_readable_by_others_is_refused(farm: Path) -> None:
    secrets = farm.parent / "secrets"
    secrets.mkdir(mode=0o755)
    secrets.chmod(0o755)
    before = state(farm)
    with pytest.raises(SpecError, match=f"{secrets}: secrets folder is readable by others.*chmod 700 {secrets}"):
        add_worker(farm, "lin-2", ["linux-x86_64"])
    assert state(farm) == before


def test_a_failed_registry_write_leaves_nothing_behind(farm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_worker(farm, "lin-2", ["linux-x86_64"])
    before = state(farm)
    real_replace = os.replace

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name == "registry.toml":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        add_worker(farm, "lin-3", ["linux-x86_64"])
    assert state(farm) == before  # no secret, no bundle, registry as it was, no temporary file


def test_name_in_both_files_names_both(farm: Path) -> None:
    reg = farm.parent / "workers" / "registry.toml"
    registry.write_registry(reg, {"linux-1": {"platforms": ["linux-x86_64"]}})
    with pytest.raises(SpecError, match=r"worker 'linux-1' is declared in both farm.toml \[workers.linux-1\] "
                                        r"and workers/registry.toml; keep one"):
        load_spec(farm)


@pytest.mark.parametrize("text, message", [
    ("[workers.w\nplatforms = 1", r"workers/registry.toml: not valid TOML"),
    ('[workers.w]\nplatforms = ["linux-x86"]\n',
     r"workers/registry.toml: workers.w.platforms: unknown platform 'linux-x86' \(did you mean 'linux-x86_64'\?\)"),
    ('[workers.w]\nplatforms = ["linux-x86_64"]\nmax_builds = "2"\n', r"workers.w.max_builds: must be a whole number"),
    ('[workers.w]\nplatforms = ["linux-x86_64"]\npassword = "x"\n',
     r"workers/registry.toml: workers.w: unknown field 'password'"),
    ('[workers.w]\nplatforms = []\n', r"workers.w.platforms: list the platforms this worker builds"),
    ('[workers."bad name"]\nplatforms = ["linux-x86_64"]\n', r"name 'bad name' may use only"),
    ('[servers.w]\nplatforms = ["linux-x86_64"]\n', r"unknown top-level key 'servers'"),
    ('[workers.w]\nplatforms = ["linux-x86_64"]\nos = "beos"\n', r"workers.w.os: 'beos' is not one of linux, macos"),
])
def test_hand_edited_registry_is_refused_naming_the_problem(farm: Path, text: str, message: str) -> None:
    reg = farm.parent / "workers" / "registry.toml"
    reg.parent.mkdir()
    reg.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_spec(farm)


def test_a_broken_registry_entry_can_still_be_removed(farm: Path) -> None:
    add_worker(farm, "lin-2", ["linux-x86_64"])
    reg = farm.parent / "workers" / "registry.toml"
    reg.write_text(reg.read_text() + '\n[workers.typo]\nplatforms = ["linux-x86"]\n')
    with pytest.raises(SpecError, match="unknown platform 'linux-x86'"):
        load_spec(farm)
    remove_worker(farm, "typo")
    assert sorted(w for w, v in load_spec(farm).workers.items() if v.source != "farm.toml") == ["lin-2"]


def test_registry_alone_can_hold_the_workers(farm: Path) -> None:
    text = farm.read_text()
    farm.write_text(text[:text.index("[workers.")])  # farm.toml with no [workers] at all
    with pytest.raises(SpecError, match=r"platforms\.[a-z0-9_-]+: no worker serves this platform"):
        load_spec(farm)
    farm.write_text(text[:text.index("[platforms.")] + "[platforms.linux-x86_64]\n")
    add_worker(farm, "only", ["linux-x86_64"])
    assert list(load_spec(farm).workers) == ["only"]


def test_registry_path_is_configurable(farm: Path) -> None:
    farm.write_text(farm.read_text().replace("[master]\n", '[master]\nworker_registry = "fleet/workers.toml"\n'))
    added = add_worker(farm, "lin-2", ["linux-x86_64"])
    assert (farm.parent / "fleet" / "workers.toml").is_file()
    assert added.bundle == farm.parent / "fleet" / "lin-2"
    assert load_spec(farm).workers["lin-2"].source == "fleet/workers.toml"


def test_remove_deletes_entry_password_and_bundle(farm: Path) -> None:
    added = add_worker(farm, "lin-2", ["linux-x86_64"])
    os_name, steps = remove_worker(farm, "lin-2")
    assert os_name == "linux" and "systemctl disable --now velofarm-worker-lin-2.service" in steps
    assert "lin-2" not in load_spec(farm).workers
    assert not added.secret.exists() and not added.bundle.exists()


def test_remove_refuses_what_it_cannot_or_must_not_do(farm: Path) -> None:
    with pytest.raises(SpecError, match=r"declared in farm.toml \[workers.linux-1\], not in workers/registry.toml"):
        remove_worker(farm, "linux-1")
    with pytest.raises(SpecError, match="no worker 'ghost' in workers/registry.toml"):
        remove_worker(farm, "ghost")
    text = farm.read_text()
    farm.write_text(text[:text.index("[platforms.")] + "[platforms.linux-x86_64]\n")
    add_worker(farm, "solo", ["linux-x86_64"])
    with pytest.raises(SpecError, match="cannot remove worker 'solo': without it, .*no worker serves this platform"):
        remove_worker(farm, "solo")


def test_rotate_writes_a_new_password(farm: Path) -> None:
    added = add_worker(farm, "lin-2", ["linux-x86_64"])
    old = added.secret.read_text()
    assert rotate_worker(farm, "lin-2") == added.secret
    assert added.secret.read_text() != old
    assert stat.S_IMODE(added.secret.stat().st_mode) == 0o600
    rotate_worker(farm, "linux-1")  # farm.toml's workers have passwords in the same folder
    with pytest.raises(SpecError, match="no worker 'ghost'"):
        rotate_worker(farm, "ghost")


def test_write_is_atomic_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "workers" / "registry.toml"
    tables = {"b": {"platforms": ["x"], "max_builds": 1, "os": "linux"}, "a": {"platforms": ["y", "z"]}}
    registry.write_registry(path, tables)
    assert registry.read_registry(path) == tables
    assert list(registry.read_registry(path)) == ["a", "b"]  # sorted: stable diffs
    assert sorted(p.name for p in path.parent.iterdir()) == ["registry.toml"]
    assert registry.read_registry(tmp_path / "missing.toml") == {}
