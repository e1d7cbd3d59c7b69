"""`velofarm check`: the spec is validated, then Buildbot's own checkconfig runs on its master."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import FARM_TOML


def velofarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "velofarm.cli.main", *args], capture_output=True, text=True, timeout=300)


def test_check_accepts_the_repository_farm(tmp_path: Path) -> None:
    spec = tmp_path / "farm.toml"
    spec.write_text(FARM_TOML.read_text() + '\n', encoding="utf-8")
    text = spec.read_text().replace('poll_interval = 60', f'poll_interval = 60\nsecrets_dir = "{tmp_path}/secrets"')
    spec.write_text(text)
    out = velofarm("check", "--spec", str(spec))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "8 platforms" in out.stdout and "Config file is good!" in out.stdout


def test_check_names_the_bad_field_and_the_fix(tmp_path: Path) -> None:
    spec = tmp_path / "farm.toml"
    spec.write_text(FARM_TOML.read_text().replace("[platforms.macos-arm64]",
                                                  '[platforms.macos-arm64]\ntarget = "aarch64-apple-darwn"'))
    out = velofarm("check", "--spec", str(spec))
    assert out.returncode == 1
    assert ("platforms.macos-arm64.target: unknown target 'aarch64-apple-darwn' "
            "(did you mean 'aarch64-apple-darwin'?)") in out.stderr
    assert "Traceback" not in out.stderr
