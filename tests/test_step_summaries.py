"""Step summaries say what happened: the worker tools' last `summary:` line, or the error's cause.

The tools run for real (their `main`, as the worker runs them); the step's parser reads their
output exactly as the UI will show it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.worker_jobs import make_job, write_job
from test_gates import SMOKE_JOB_BINARIES, fake_binary
from test_preflight import fake_toolchain, git_source

from velofarm.buildmaster.toolsteps import failure_cause, properties_from_output, summary_from_output
from velofarm.worker_tools import gates, pack, preflight, stage

TAG = "v0.1.0"
posix_only = pytest.mark.skipif(os.name == "nt", reason="fake binaries are shell scripts")


def summary_of(capsys: pytest.CaptureFixture[str], main: object, *argv: str) -> tuple[int, str]:
    code = main(list(argv))  # type: ignore[operator]
    out, err = capsys.readouterr()
    return code, summary_from_output(out, err)


@posix_only
def test_preflight_summary_names_each_check(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    job = write_job(tmp_path / "job.json", fake_toolchain(tmp_path))
    monkeypatch.chdir(git_source(tmp_path / "src", "0.1.0", 1700000000))
    assert summary_of(capsys, preflight.main, "check", job, "--tag", TAG) == (
        0, "version 0.1.0 = tag v0.1.0; toolchain ok (rustc 1.63.0); commit time 2023-11-14T22:13:20Z; "
           "build env (3 variables)")
    code, summary = summary_of(capsys, preflight.main, "check", job, "--tag", "v0.2.0")
    assert code == 1
    assert summary == "tag v0.2.0 expects version 0.2.0 but Cargo.toml has version 0.1.0 (platform linux-x86_64)"


def test_toolchain_summary_lists_compiler_and_tools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rustc = fake_binary(tmp_path / "rust" / "rustc", f'[ "$1" = -vV ] && echo "rustc 1.63.0 (Debian)" '
                                                    f'&& exit 0; echo {tmp_path / "sysroot"}')
    (tmp_path / "sysroot" / "lib" / "rustlib" / "x86_64-unknown-linux-gnu" / "lib").mkdir(parents=True)
    linker = fake_binary(tmp_path / "bin" / "x86_64-w64-mingw32-gcc", "exit 0")
    job = make_job(cargo="sh", env={"RUSTC": str(rustc)}, linker=str(linker))
    code, summary = summary_of(capsys, preflight.main, "toolchain", write_job(tmp_path / "job.json", job))
    assert (code, summary) == (0, "toolchain ok (rustc 1.63.0, x86_64-w64-mingw32-gcc)")

    job["platform"]["linker"] = "/nonexistent/x86_64-w64-mingw32-gcc"
    job["platform"]["fix_linker"] = "apt-get install gcc-mingw-w64-x86-64"
    code, summary = summary_of(capsys, preflight.main, "toolchain", write_job(tmp_path / "job.json", job))
    assert code == 1
    assert summary == ("missing linker /nonexistent/x86_64-w64-mingw32-gcc "
                       "(fix: apt-get install gcc-mingw-w64-x86-64)")


@posix_only
def test_smoke_summary_counts_what_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_binary(tmp_path / "bin" / "velo-sql", 'echo "velo-sql 0.1.0"')
    fake_binary(tmp_path / "bin" / "velo-schema-generator", "exit 1")
    job = write_job(tmp_path / "job.json", make_job(SMOKE_JOB_BINARIES))
    argv = ("smoke", job, "--tag", TAG, "--bin-dir", str(tmp_path / "bin"))
    assert summary_of(capsys, gates.main, *argv) == (0, "smoke: 1 binary prints 0.1.0, 1 not run (declared unsafe)")
    fake_binary(tmp_path / "bin" / "velo-sql", 'echo "velo-sql 0.0.9"')
    assert summary_of(capsys, gates.main, *argv) == (1, "smoke failed: velo-sql exit 0 but printed no version 0.1.0")


def test_size_summary_names_the_largest_and_the_one_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binaries = [{"name": "velo-sql", "smoke": None}, {"name": "velo-cli", "smoke": None}]
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "velo-sql").write_bytes(b"x" * (2 * 1024 * 1024 + 100 * 1024))
    (tmp_path / "bin" / "velo-cli").write_bytes(b"x" * 1024)
    job = make_job(binaries, size_limit_bytes=30 << 20)
    argv = ("size", write_job(tmp_path / "job.json", job), "--tag", TAG, "--bin-dir", str(tmp_path / "bin"))
    assert summary_of(capsys, gates.main, *argv) == (0, "2 binaries, largest velo-sql 2.1 MiB of 30 MiB")
    job["platform"]["size_limit_bytes"] = 2 << 20
    argv = ("size", write_job(tmp_path / "job.json", job), *argv[2:])
    assert summary_of(capsys, gates.main, *argv) == (1, "velo-sql 2.1 MiB over the 2 MiB limit")


def test_archive_and_checksum_summaries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stage = tmp_path / "velostream-v0.1.0-x86_64-unknown-linux-gnu"
    stage.mkdir()
    (stage / "README.md").write_bytes(os.urandom(300 * 1024))  # incompressible: the size is known
    out = tmp_path / "velostream-v0.1.0-x86_64-unknown-linux-gnu.tar.gz"
    code, summary = summary_of(capsys, pack.main, "archive", str(stage), "--format", "tar.gz",
                               "--epoch", "1700000000", "--out", str(out))
    assert code == 0 and summary == f"{out.name}: 2 entries, {out.stat().st_size / 2**20:.1f} MiB"
    code, summary = summary_of(capsys, pack.main, "checksum", str(out))
    assert (code, summary) == (0, f"archive 0.3 MiB sha256 {pack.sha256_file(out)[:8]}…")


def test_stage_failure_names_the_missing_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src").mkdir()
    fake_binary(tmp_path / "bin" / "velo-sql", "exit 0")
    job = write_job(tmp_path / "job.json", {**make_job(), "ship": ["configs"]})
    code, summary = summary_of(capsys, stage.main, job, "--tag", TAG, "--name", "velostream-v0.1.0-x",
                               "--src", str(tmp_path / "src"), "--bin-dir", str(tmp_path / "bin"),
                               "--out", str(tmp_path / "dist"))
    assert code == 1
    assert summary.startswith("ship entry 'configs' is missing from the source tree ")


def test_the_last_summary_line_wins_and_errors_lose_their_context() -> None:
    out = "summary: first\nnoise\nsummary: second\nmore noise\n"
    assert summary_from_output(out, "error: ignored") == "second"
    assert summary_from_output("no summary here", "") == ""
    assert failure_cause("tag v1.0.0, platform p: binary x is missing from /b; check the log") == \
        "binary x is missing from /b"
    assert failure_cause("platform p: worker w lacks linker; run the fix") == "worker w lacks linker"
    assert len(summary_from_output("summary: " + "x" * 500, "")) == 160


def test_the_preflight_sets_only_the_properties_it_is_allowed() -> None:
    out = 'noise\nproperties: {"source_date_epoch": 5, "build_env": {"A": "1"}, "tag": "v9.9.9"}\nsummary: x\n'
    assert properties_from_output(out, ("source_date_epoch", "build_env")) == {
        "source_date_epoch": 5, "build_env": {"A": "1"}}  # a worker cannot set the tag (or anything else)
    assert properties_from_output("properties: [1]\n", ("a",)) == {}
    assert properties_from_output("properties: {not json\n", ("a",)) == {}
    assert properties_from_output("no line\n", ("a",)) == {}
