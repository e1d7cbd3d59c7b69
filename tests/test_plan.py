"""`velofarm plan TAG` on small real repositories: what a release would do, and why not."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support.gitrepo import Repo

from velofarm.cli.main import main
from velofarm.spec.farm import load_spec
from velofarm.spec.job import archive_name

FARM = """
[project]
name = "demo"
title = "Demo"
git_url = "https://example.invalid/demo.git"
binaries = {{ demo = ["--version"] }}

[release]
notes = "{notes}"

[platforms.linux-x86_64]
[platforms.windows-x86_64-gnu]

[workers.lin-1]
platforms = ["linux-x86_64", "windows-x86_64-gnu"]
"""


def cargo(version: str) -> str:
    return f'[package]\nname = "demo"\nversion = "{version}"\nedition = "2021"\n'


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "farm.toml"
    path.write_text(FARM.format(notes="both"), encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """v0.1.0, then work towards 0.2.0 (the version bumped, not yet tagged)."""
    repo = Repo(tmp_path / "src")
    repo.write("Cargo.toml", cargo("0.1.0"), "initial import")
    repo.tag("v0.1.0")
    repo.commit("feat(cli): add --json output (#12)", author="Bob Builder")
    repo.write("Cargo.toml", cargo("0.2.0"), "chore: release 0.2.0")
    return repo


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_good_tag(capsys: pytest.CaptureFixture[str], spec_path: Path, repo: Repo) -> None:
    repo.tag("v0.2.0", "Demo 0.2.0: JSON output.")
    code, out, err = plan(capsys, "v0.2.0", "--spec", str(spec_path), "--repo", str(repo.path), "--no-master")
    assert code == 0, err
    commit = repo.git("rev-parse", "HEAD")
    assert f"  commit     {commit[:12]} (tag v0.2.0)" in out
    assert "  tag        tag 'v0.2.0' matches the release pattern" in out
    assert "  version    Cargo.toml 0.2.0 = tag 0.2.0" in out
    assert "  kind       final release, marked latest; the latest now is v0.1.0" in out
    spec = load_spec(spec_path)
    for name, platform in spec.platforms.items():
        line = next(x for x in out.splitlines() if x.strip().startswith(name))
        assert archive_name("demo", "v0.2.0", platform) in line and "lin-1 (connection unknown)" in line
    assert f"  publish    directory: {spec_path.parent / 'releases'}/v0.2.0/" in out
    notes = out.split("--- RELEASE_NOTES.md", 1)[1]
    assert "# Demo v0.2.0\n\nDemo 0.2.0: JSON output.\n\n" in notes
    assert "## What's changed since v0.1.0" in notes and "- **cli:** add --json output (#12)" in notes
    assert out.rstrip().endswith("result: a release of v0.2.0 would start") and err == ""


def test_a_mismatched_version(capsys: pytest.CaptureFixture[str], spec_path: Path, repo: Repo) -> None:
    code, out, err = plan(capsys, "v0.3.0", "--spec", str(spec_path), "--repo", str(repo.path), "--no-master")
    assert code == 1
    assert "  version    Cargo.toml 0.2.0 differs from tag 0.3.0" in out
    assert "error: Cargo.toml says version '0.2.0' but tag v0.3.0 needs '0.3.0': set version = \"0.3.0\"" in err
    assert "result: no release of v0.3.0 would start" in err


@pytest.mark.parametrize("tag", ["nightly", "v0.2", "v0.2.0-", "release-0.2.0"])
def test_a_tag_that_does_not_release(capsys: pytest.CaptureFixture[str], spec_path: Path, repo: Repo,
                                     tag: str) -> None:
    code, out, err = plan(capsys, tag, "--spec", str(spec_path), "--repo", str(repo.path), "--no-master")
    assert code == 1
    assert f"error: tag '{tag}' does not match the release pattern" in err
    assert "commit" not in out and "RELEASE_NOTES" not in out


def test_a_tag_not_created_yet_plans_from_head(capsys: pytest.CaptureFixture[str], spec_path: Path,
                                               repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.path)  # run in the project's checkout: no --repo needed
    code, out, err = plan(capsys, "v0.2.0", "--spec", str(spec_path), "--no-master")
    assert code == 0, err
    head = repo.git("rev-parse", "HEAD")
    assert f"  commit     HEAD {head[:12]}: tag v0.2.0 does not exist yet, so this plans from HEAD" in out
    assert "add --json output (#12)" in out and "release 0.2.0" in out
    assert "result: a release of v0.2.0 would start once the tag is pushed" in out
    assert repo.git("tag", "--list") == "v0.1.0"  # nothing was created


def test_a_git_url_plans_from_its_head(capsys: pytest.CaptureFixture[str], spec_path: Path, repo: Repo,
                                       tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(remote))
    repo.commit("feat: not pushed")  # the remote's HEAD is what counts
    code, out, err = plan(capsys, "v0.2.0", "--spec", str(spec_path), "--repo", f"file://{remote}", "--no-master")
    assert code == 0, err
    assert f"HEAD {repo.git('rev-parse', 'HEAD~1')[:12]}: tag v0.2.0 does not exist yet" in out
    assert "not pushed" not in out and "add --json output" in out


def test_prereleases_and_older_finals_are_not_latest(capsys: pytest.CaptureFixture[str], spec_path: Path,
                                                     repo: Repo) -> None:
    repo.write("Cargo.toml", cargo("0.3.0-rc.1"), "chore: 0.3.0-rc.1")
    repo.tag("v0.3.0-rc.1")
    code, out, _ = plan(capsys, "v0.3.0-rc.1", "--spec", str(spec_path), "--repo", str(repo.path), "--no-master")
    assert code == 0 and "  kind       pre-release, not marked latest; the latest now is v0.1.0" in out
    assert "**Pre-release**" in out
    repo.git("tag", "v0.2.0", "HEAD~1")
    repo.write("Cargo.toml", cargo("0.1.1"), "fix: backport")
    code, out, _ = plan(capsys, "v0.1.1", "--spec", str(spec_path), "--repo", str(repo.path), "--no-master")
    assert code == 0 and "final release, not marked latest (older); the latest now is v0.2.0" in out


def test_an_unreachable_master_is_reported_not_an_error(capsys: pytest.CaptureFixture[str], spec_path: Path,
                                                        repo: Repo) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    code, out, _ = plan(capsys, "v0.2.0", "--spec", str(spec_path), "--repo", str(repo.path), "--url", url)
    assert code == 0
    assert "connections unknown: the master at" in out and "did not answer" in out
    assert "lin-1 (connection unknown)" in out


def test_a_changelog_without_the_section(capsys: pytest.CaptureFixture[str], spec_path: Path, repo: Repo) -> None:
    spec_path.write_text(FARM.format(notes="changelog"), encoding="utf-8")
    repo.write("CHANGELOG.md", "# Changelog\n\n## [0.1.0] - 2026-01-01\n- First.\n", "docs: changelog")
    code, _, err = plan(capsys, "v0.2.0", "--spec", str(spec_path), "--repo", str(repo.path), "--no-master")
    assert code == 1
    assert "error: CHANGELOG.md (at " in err and "has no section for 0.2.0" in err


def test_a_tag_the_plan_cannot_find(capsys: pytest.CaptureFixture[str], spec_path: Path, tmp_path: Path) -> None:
    empty = Repo(tmp_path / "empty")
    code, _, err = plan(capsys, "v0.2.0", "--spec", str(spec_path), "--repo", str(empty.path), "--no-master")
    assert code == 1 and "tag v0.2.0 is not in" in err and "no commit to plan from" in err
    code, _, err = plan(capsys, "v0.2.0", "--spec", str(spec_path), "--repo", str(tmp_path), "--no-master")
    assert code == 1 and "not a git repository" in err


def test_a_github_release_says_where_and_links_pull_requests(capsys: pytest.CaptureFixture[str], spec_path: Path,
                                                             repo: Repo) -> None:
    text = FARM.format(notes="git").replace('[release]\n', '[release]\npublisher = "github"\n'
                                            'github_repo = "acme/demo"\n'
                                            'github_api_url = "https://ghe.example/api/v3"\n')
    spec_path.write_text(text, encoding="utf-8")
    code, out, err = plan(capsys, "v0.2.0", "--spec", str(spec_path), "--repo", str(repo.path), "--no-master")
    assert code == 0, err
    assert "  publish    github: https://ghe.example/acme/demo/releases/tag/v0.2.0" in out
    assert "add --json output ([#12](https://ghe.example/acme/demo/pull/12))" in out


def test_a_gitea_release_says_where_links_pull_requests_and_what_gitea_calls_latest(
        capsys: pytest.CaptureFixture[str], spec_path: Path, repo: Repo) -> None:
    text = FARM.format(notes="git").replace('[release]\n', '[release]\npublisher = "gitea"\n'
                                            'gitea_url = "https://git.example/forge"\n'
                                            'gitea_repo = "acme/demo"\n')
    spec_path.write_text(text, encoding="utf-8")
    code, out, err = plan(capsys, "v0.2.0", "--spec", str(spec_path), "--repo", str(repo.path), "--no-master")
    assert code == 0, err
    assert "  publish    gitea: https://git.example/forge/acme/demo/releases/tag/v0.2.0" in out
    assert "add --json output ([#12](https://git.example/forge/acme/demo/pulls/12))" in out
    assert "final release, marked latest" in out
    repo.git("tag", "v0.2.0")
    repo.write("Cargo.toml", cargo("0.1.1"), "fix: backport")
    code, out, _ = plan(capsys, "v0.1.1", "--spec", str(spec_path), "--repo", str(repo.path), "--no-master")
    assert code == 0 and "older, yet Gitea shows it as latest once published" in out
