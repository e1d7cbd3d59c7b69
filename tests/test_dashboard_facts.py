"""The Releases page, grown up: failing steps linked, running steps timed, trust facts, the filter."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_dashboard import LINUX, RELEASE, WINDOWS, Fetch, build, page, release, store

from velofarm.release.dashboard_data import StepNote, matching, notable_step, release_facts, release_rows
from velofarm.spec.farm import parse_spec


@pytest.fixture
def farm_spec(tmp_path: Path) -> Any:
    data = {"project": {"name": "velostream", "title": "Velostream", "git_url": "remote.git",
                        "binaries": {"velo-sql": ["--version"]}},
            "platforms": {"linux-x86_64": {}, "windows-x86_64-gnu": {}},
            "workers": {"box": {"platforms": ["linux-x86_64", "windows-x86_64-gnu"]}}}
    return parse_spec(data, tmp_path / "farm.toml")


STEPS = [StepNote(1, "checkout tag", "update", 0, True),
         StepNote(2, "send tools", "sent 5 tools and the job (31 KiB)", 0, True, hidden=True),
         StepNote(3, "preflight", "missing linker /nonexistent/gcc (fix: apt-get install gcc) (failure)", 2,
                  True, log="stdio"),
         StepNote(4, "clean staging", "removed", 2, True)]


def test_the_failing_step_of_a_failed_build_and_the_current_step_of_a_running_one() -> None:
    assert notable_step("failure", STEPS) == STEPS[2]
    assert notable_step("success", STEPS) is None
    running = [StepNote(1, "checkout tag", "update", 0, True, started_at=10.0),
               StepNote(2, "cargo build", "building", None, False, started_at=12.0),
               StepNote(3, "smoke test", "", None, False)]
    assert notable_step("running", running) == running[1]
    assert notable_step("failure", [StepNote(1, "hidden", "x", 2, True, hidden=True)]) is None


def test_release_facts_keep_only_the_allow_list() -> None:
    meta = {"tag": "v1.0.0", "changelog": "## v1.0.0\n- faster", "signatures": ["SHA256SUMS.minisig"],
            "provenance": "provenance.intoto.jsonl", "reproduced": True, "token": "ghp_secret", "sbom": ""}
    assert release_facts(meta) == {"changelog": "## v1.0.0\n- faster", "signatures": ["SHA256SUMS.minisig"],
                                   "provenance": "provenance.intoto.jsonl", "reproduced": True}
    assert len(str(release_facts({"changelog": "x" * 50_000})["changelog"])) == 20_000


def test_the_filter_matches_part_of_a_tag() -> None:
    builds = release("v1.0.0", 1) + release("v1.1.0-rc.1", 2) + release("v2.0.0", 3)
    rows = release_rows(builds, RELEASE, {LINUX: "linux-x86_64", WINDOWS: "windows-x86_64-gnu"})
    assert [r.tag for r in matching(rows, "RC")] == ["v1.1.0-rc.1"]
    assert len(matching(rows, " ")) == 3


def test_a_failed_platform_links_its_failing_steps_log(farm_spec: Any, tmp_path: Path) -> None:
    builds = release("v1.0.0", 1, results=2)
    builds[2] = replace(builds[2], step=STEPS[2])  # windows failed at its preflight (the toolchain)
    builds[1] = replace(builds[1], results=0)
    html = page(farm_spec, tmp_path, Fetch(builds))
    cell = re.search(r'<td class="cell failure" data-platform="windows-x86_64-gnu".*?</td>', html, re.S)
    assert cell is not None
    assert 'href="../../../#/builders/3/builds/1/steps/3/logs/stdio"' in cell.group(0)
    assert "failed at preflight" in cell.group(0) and "missing linker /nonexistent/gcc" in cell.group(0)
    assert 'data-platform="linux-x86_64" data-state="success"' in html


def test_a_running_platform_shows_its_step_and_elapsed_time(farm_spec: Any, tmp_path: Path,
                                                            monkeypatch: Any) -> None:
    monkeypatch.setattr("velofarm.buildmaster.dashboard.time.time", lambda: 1000.0 + 75)
    builds = [replace(build(RELEASE, 1, "v1.0.0", results=None, started=1000.0),
                      step=StepNote(2, "build platforms", "triggering", None, False, started_at=1000.5)),
              replace(build(LINUX, 1, "v1.0.0", results=None, started=1001.0),
                      step=StepNote(9, "cargo build", "building", None, False, started_at=1010.0))]
    html = page(farm_spec, tmp_path, Fetch(builds))
    assert "now: cargo build · 1 min 14 s" in html
    assert "now: build platforms · 1 min 15 s" in html  # the release's own step, in its column


def test_trust_facts_and_changelog_or_placeholders(farm_spec: Any, tmp_path: Path) -> None:
    facts = {"changelog": "## v1.0.0\n- <b>faster</b>", "signatures": ["a.minisig", "b.minisig"], "reproduced": False}
    html = page(farm_spec, tmp_path, Fetch(release("v1.0.0", 1, release_facts=facts) + release("v0.9.0", 2, dry_run=True)))
    first, second = html.split('data-tag="v0.9.0"')
    assert "yes (2 files)" in first and '<span class="fact-reproduced">no</span>' in first
    assert "&lt;b&gt;faster&lt;/b&gt;" in first and "<b>faster</b>" not in first  # markdown shown as text
    assert '<span class="fact-provenance">–</span>' in first
    assert '<span class="fact-signed">–</span>' in second and '<td class="changelog">–</td>' in second
    assert "to folder releases" in first and "to folder" not in second  # a dry run goes nowhere


def test_the_filter_on_the_page(farm_spec: Any, tmp_path: Path) -> None:
    builds = [b for n in range(60) for b in release(f"v1.{n}.0", n + 1)]
    html = page(farm_spec, tmp_path, Fetch(builds), "?q=v1.5")
    assert re.findall(r'data-tag="([^"]+)"', html) == ["v1.59.0", "v1.58.0", "v1.57.0", "v1.56.0", "v1.55.0",
                                                         "v1.54.0", "v1.53.0", "v1.52.0", "v1.51.0", "v1.50.0",
                                                         "v1.5.0"]
    assert "11 of 60 tags match" in html
    assert "No tag contains" in page(farm_spec, tmp_path, Fetch(builds), "?q=nope")
    store(tmp_path, "v1.0.0", "linux-x86_64", "a.tar.gz", b"x")  # the store's tags are filtered too
    assert 'data-tag="v1.0.0"' in page(farm_spec, tmp_path, Fetch([]), "?q=1.0")


def test_the_publish_target_names_the_publisher_and_where(tmp_path: Path) -> None:
    from velofarm.buildmaster.dashboard import publish_target

    base = {"project": {"name": "velostream", "git_url": "remote.git", "binaries": {"velo-sql": ["--version"]}},
            "platforms": {"linux-x86_64": {}}, "workers": {"box": {"platforms": ["linux-x86_64"]}}}
    github = parse_spec({**base, "release": {"publisher": "github", "github_repo": "acme/velostream"}},
                        tmp_path / "farm.toml")
    gitea = parse_spec({**base, "release": {"publisher": "gitea", "gitea_url": "https://git.example.org",
                                            "gitea_repo": "acme/velostream"}}, tmp_path / "farm.toml")
    assert publish_target(github) == "GitHub acme/velostream"
    assert publish_target(gitea) == "Gitea acme/velostream at https://git.example.org"


def test_reproduced_reads_as_n_of_n_platforms() -> None:
    both = {"builds_per_platform": 2, "platforms": {"linux": {"agreed": [11, 21]}, "win": {"agreed": [12, 22]}}}
    assert release_facts({"reproduced": both})["reproduced"] == "2 of 2 platforms (2 builds each)"
    one_short = {"builds_per_platform": 2, "platforms": {"linux": {"agreed": [11, 21]}, "win": {"agreed": [12]}}}
    assert release_facts({"reproduced": one_short})["reproduced"] == "1 of 2 platforms (2 builds each)"
    single = {"builds_per_platform": 1, "platforms": {"linux": {"agreed": [11]}}}
    assert release_facts({"reproduced": single})["reproduced"] == "not checked (reproduce = 1)"
