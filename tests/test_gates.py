"""The gates after a build (gates.py): each binary's smoke command, then the size limit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from support.worker_jobs import make_job, write_job

from velofarm.worker_tools import gates

TAG = "v0.1.0"
posix_only = pytest.mark.skipif(os.name == "nt", reason="fake binaries are shell scripts")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = gates.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------- smoke

def fake_binary(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


SMOKE_JOB_BINARIES: list[dict[str, Any]] = [{"name": "velo-sql", "smoke": ["--version"]},
                      {"name": "velo-schema-generator", "smoke": None}]


@posix_only
def test_smoke_passes_and_skips_unsafe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_binary(tmp_path / "bin" / "velo-sql", 'echo "velo-sql $1 0.1.0"')
    fake_binary(tmp_path / "bin" / "velo-schema-generator", "touch SHOULD-NOT-RUN; exit 1")
    job = write_job(tmp_path / "job.json", make_job(SMOKE_JOB_BINARIES))
    code, out, err = run(capsys, "smoke", job, "--tag", TAG, "--bin-dir", str(tmp_path / "bin"))
    assert (code, err) == (0, "")
    assert "velo-sql --version 0.1.0" in out
    assert "velo-schema-generator: not run (declared unsafe to run bare)" in out


@posix_only
@pytest.mark.parametrize("body, needle", [('echo "velo-sql 1.0.0"', "printed no version 0.1.0"),
                                          ('echo "velo-sql 10.1.0"', "printed no version 0.1.0"),
                                          ('echo "0.1.0"; exit 1', "exit 1")])
def test_smoke_failures_name_the_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        body: str, needle: str) -> None:
    fake_binary(tmp_path / "bin" / "velo-sql", body)
    fake_binary(tmp_path / "bin" / "velo-schema-generator", "exit 0")
    job = write_job(tmp_path / "job.json", make_job(SMOKE_JOB_BINARIES))
    code, _, err = run(capsys, "smoke", job, "--tag", TAG, "--bin-dir", str(tmp_path / "bin"))
    assert code == 1
    assert err.startswith(f"error: tag {TAG}, platform linux-x86_64: smoke test failed for velo-sql (")
    assert needle in err and err.count("\n") == 1


@posix_only
def test_smoke_missing_binary_fails(tmp_path: Path) -> None:
    fake_binary(tmp_path / "bin" / "velo-sql", 'echo "0.1.0"')
    results = gates.smoke_test(make_job(SMOKE_JOB_BINARIES), TAG, tmp_path / "bin")
    assert [(r.binary, r.ok) for r in results] == [("velo-sql", True), ("velo-schema-generator", False)]
    assert results[1].note.startswith("missing from ")


@posix_only
def test_smoke_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gates, "SMOKE_TIMEOUT", 0.5)
    fake_binary(tmp_path / "bin" / "velo-sql", "sleep 5")
    [result] = gates.smoke_test(make_job(), TAG, tmp_path / "bin")
    assert not result.ok and "did not finish within 0.5 s" in result.note


@posix_only
def test_smoke_through_a_wine_runner_quiets_wine(tmp_path: Path) -> None:
    runner = fake_binary(tmp_path / "wine" / "wine64", 'echo "WINEDEBUG=$WINEDEBUG"; exec "$@"')
    fake_binary(tmp_path / "bin" / "velo-sql.exe", 'echo "velo-sql 0.1.0"')
    job = make_job(exe_suffix=".exe", runner=[str(runner)])
    [result] = gates.smoke_test(job, TAG, tmp_path / "bin")
    assert result.ok, result
    assert result.argv[0] == str(runner) and "WINEDEBUG=-all" in result.output


def test_version_in_output() -> None:
    assert gates.version_in_output("0.1.0", "velo-sql v0.1.0\n")
    assert gates.version_in_output("0.1.0", "velo-sql 0.1.0+g1234.")
    assert not gates.version_in_output("0.1.0", "velo-sql 10.1.0")
    assert not gates.version_in_output("0.1.0", "velo-sql 0.1.0-rc.1")
    assert not gates.version_in_output("1.0.0-rc.1", "1.0.0-rc.10")


# ----------------------------------------------------------------------------------- size

def test_size_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "velo-sql").write_bytes(b"x" * 3 * 1024 * 1024)
    job = make_job(size_limit_bytes=2 * 1024 * 1024)
    argv = ["size", write_job(tmp_path / "job.json", job), "--tag", TAG, "--bin-dir", str(tmp_path / "bin")]
    code, out, err = run(capsys, *argv)
    assert code == 1 and "OVER" in out
    assert err == (f"error: tag {TAG}, platform linux-x86_64: velo-sql is 3 MB, over the 2 MB limit; "
                   "shrink the binary or raise platforms.linux-x86_64.size_limit_mb in farm.toml\n")
    job["platform"]["size_limit_bytes"] = 30 << 20
    code, out, _ = run(capsys, "size", write_job(tmp_path / "job.json", job), *argv[2:])
    assert code == 0 and "velo-sql" in out


def test_size_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(gates.GateError, match=f"tag {TAG}, platform linux-x86_64: binary velo-sql"):
        gates.binary_sizes(make_job(), TAG, tmp_path)
