"""The coordinator's "verify and assemble" step: `python -m velofarm.release.assemble`, run the way
the release factory runs it (the master's interpreter, the farm's farm.toml, a filled store)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_release_assembly import COMMIT, TAG, fill_store

from velofarm.spec.farm import load_spec

FARM_TOML = Path(__file__).resolve().parent.parent / "farm.toml"


def assemble(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "velofarm.release.assemble", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_it_assembles_and_lists_every_asset(tmp_path: Path) -> None:
    spec = load_spec(FARM_TOML)
    archives = fill_store(spec, tmp_path / "artifacts")
    out = tmp_path / "staging" / TAG
    result = assemble("--spec", str(FARM_TOML), "--tag", TAG, "--commit", COMMIT,
                      "--artifacts", str(tmp_path / "artifacts"), "--out", str(out), "--unsigned")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"release {TAG} assembled in {out}: every archive matches its .sha256")
    meta = json.loads((out / "release.json").read_text())
    assert {p["name"] for p in meta["platforms"]} == set(archives)
    for asset in meta["assets"]:
        assert f"  {asset['sha256']}  {asset['size']:>10}  {asset['name']}\n" in result.stdout


def test_a_missing_platform_is_one_error_line_and_no_folder(tmp_path: Path) -> None:
    spec = load_spec(FARM_TOML)
    archives = fill_store(spec, tmp_path / "artifacts")
    gone = sorted(archives)[0]
    archives[gone].unlink()
    out = tmp_path / "staging" / TAG
    result = assemble("--spec", str(FARM_TOML), "--tag", TAG, "--commit", COMMIT,
                      "--artifacts", str(tmp_path / "artifacts"), "--out", str(out), "--unsigned")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: tag {TAG}: platform {gone}: ") and result.stderr.count("\n") == 1
    assert not out.exists()


def test_signing_needs_the_build_records(tmp_path: Path) -> None:
    spec = load_spec(FARM_TOML)
    fill_store(spec, tmp_path / "artifacts")
    out = tmp_path / "staging" / TAG
    result = assemble("--spec", str(FARM_TOML), "--tag", TAG, "--commit", COMMIT,
                      "--artifacts", str(tmp_path / "artifacts"), "--out", str(out))
    assert result.returncode == 1 and "error: --records FILE (the coordinator's build records)" in result.stderr
    assert not out.exists()


def test_the_ops_face_no_longer_has_the_plumbing() -> None:
    for gone in ("release-assemble", "resolve-tag"):
        result = subprocess.run([sys.executable, "-m", "velofarm.cli.main", gone, "--help"], capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 2 and "invalid choice" in result.stderr
