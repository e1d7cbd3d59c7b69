"""Finding 2: the master's folder is private (state.sqlite holds the session signing key)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Callable

import pytest

from velofarm.buildmaster.privacy import make_private, privacy_report
from velofarm.cli.localfarm import LocalFarm, wait_for
from velofarm.cli.masterdir import create_master


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode)
            for p in [root, *root.rglob("*")] if not p.is_symlink()}


def test_make_private_drops_group_and_other_bits(tmp_path: Path) -> None:
    master = tmp_path / "master"
    (master / "artifacts" / "v1.0.0").mkdir(parents=True)
    (master / "state.sqlite").write_text("db")
    (master / "artifacts" / "v1.0.0" / "a.tar.gz").write_text("x")
    for path in (master, master / "artifacts", master / "artifacts" / "v1.0.0"):
        path.chmod(0o755)
    (master / "state.sqlite").chmod(0o644)
    (master / "artifacts" / "v1.0.0" / "a.tar.gz").chmod(0o664)
    changed = make_private(master)
    assert all(mode & 0o077 == 0 for mode in modes(master).values()), modes(master)
    assert modes(master)["state.sqlite"] == 0o600 and modes(master)["artifacts"] == 0o700
    assert "state.sqlite 644->600" in changed and len(changed) == 5
    report = privacy_report(master, changed)
    assert report and "readable by other users" in report and "state.sqlite" in report
    assert make_private(master) == [] and privacy_report(master, []) is None


@pytest.mark.integration
def test_new_master_is_private(tmp_path: Path) -> None:
    from conftest import FARM_TOML
    master = create_master(tmp_path / "master", FARM_TOML)
    assert "0o077" in (master / "buildbot.tac").read_text() and "0o022" not in (master / "buildbot.tac").read_text()
    found = modes(master)
    assert found["state.sqlite"] == 0o600 and found["."] == 0o700, found
    assert all(mode & 0o077 == 0 for mode in found.values()), found


def test_checkout_master_tac_is_private() -> None:
    from conftest import REPO
    tac = (REPO / "master" / "buildbot.tac").read_text()
    assert "umask = 0o077" in tac and "os.umask(0o077)" in tac and "0o022" not in tac


@pytest.mark.integration
def test_existing_loose_deployment_is_fixed_on_start_and_logged(make_farm: Callable[..., LocalFarm]) -> None:
    farm = make_farm(["linux-x86_64"])
    create_master(farm.master_dir, farm.spec_path)
    # As an older velofarm left it: umask 022, and a tac that still passes 0o022.
    tac = farm.master_dir / "buildbot.tac"
    tac.write_text(tac.read_text().replace("0o077", "0o022"))
    for path in [farm.master_dir, *farm.master_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    farm.start_master()
    log = farm.master_dir / "twistd.log"
    wait_for(lambda: "BuildMaster is running" in log.read_text(), 60, "the master to start")
    text = log.read_text()
    assert "the master folder" in text and "made" in text and "state.sqlite 644->600" in text
    found = modes(farm.master_dir)
    assert found["state.sqlite"] == 0o600 and found["."] == 0o700, found
    # What the master wrote after the fix (its log at least) is private too.
    assert found["twistd.log"] & 0o077 == 0, found
