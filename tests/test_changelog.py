"""The changelog in the notes, from small real git histories: ranges, groups, merges, links, CHANGELOG.md."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.gitrepo import Repo

from velofarm.errors import ReleaseError
from velofarm.release.changelog import Changes, changes_of, previous_release, render_changes, render_entry
from velofarm.release.history import GitHistory, mirror
from velofarm.release.keepachangelog import version_section
from velofarm.spec.farm import DEFAULT_TAG_PATTERN, Spec, parse_spec


def make_spec(tmp_path: Path, **release: str) -> Spec:
    data = {"project": {"name": "demo", "git_url": str(tmp_path / "src"), "binaries": {"demo": ["--version"]}},
            "platforms": {"linux-x86_64": {}}, "workers": {"w": {"platforms": ["linux-x86_64"]}},
            "release": release}
    return parse_spec(data, tmp_path / "farm.toml", registry={})


def releasing(tag: str) -> bool:
    return re.fullmatch(DEFAULT_TAG_PATTERN, tag) is not None


# ------------------------------------------------------------------------- the previous release

@pytest.mark.parametrize("tag,previous", [
    ("v0.1.0", None),                 # the first release
    ("v0.2.0-rc.1", "v0.1.0"),        # a pre-release compares with the previous release of any kind
    ("v0.2.0-rc.2", "v0.2.0-rc.1"),
    ("v0.2.0", "v0.1.0"),             # a final compares with the previous final, skipping its rcs
    ("v0.10.0", "v0.2.0"),            # semantic order, not string order
    ("v1.0.0-alpha", "v0.10.0"),
    ("v1.0.0", "v0.10.0"),
    ("v0.1.1", "v0.1.0"),             # a patch of an older line compares within that order too
])
def test_previous_release_by_semantic_version(tag: str, previous: str | None) -> None:
    tags = ["v0.1.0", "v0.2.0-rc.1", "v0.2.0-rc.2", "v0.2.0", "v0.10.0", "v1.0.0-alpha", "v1.0.0",
            "nightly", "v0.9", "v0.9.9-junk!", "V0.9.0"]  # the last four are not release tags
    assert previous_release(tag, tags, releasing) == previous


def test_previous_release_follows_the_release_pattern() -> None:
    only_finals = r"^v\d+\.\d+\.\d+$"
    matches = lambda t: re.fullmatch(only_finals, t) is not None  # noqa: E731
    assert previous_release("v2.0.0", ["v1.0.0", "v1.5.0-rc.1", "v2.0.0"], matches) == "v1.0.0"
    assert previous_release("v1.0.0+build.7", ["v1.0.0", "v0.9.0"], releasing) == "v0.9.0"  # same version


# ---------------------------------------------------------------- a history with pre-releases

@pytest.fixture
def history(tmp_path: Path) -> tuple[Repo, dict[str, str]]:
    """v0.1.0, two release candidates, v0.2.0, with every kind of commit between them."""
    repo = Repo(tmp_path / "src")
    c = {"init": repo.commit("initial import")}
    repo.tag("v0.1.0")
    c["json"] = repo.commit("feat(cli): add --json output (#12)", author="Bob Builder")
    c["empty"] = repo.commit("fix: handle empty input\n\nCloses #3.")
    repo.tag("v0.2.0-rc.1")
    repo.tag("nightly")  # not a release tag: never a range boundary
    c["perf"] = repo.commit("perf(parser): parse twice as fast", author="Carol Chen")
    c["docs"] = repo.commit("docs: explain the config file")
    repo.tag("v0.2.0-rc.2")
    c["plain"] = repo.commit("Tidy up the build script", author="Bob Builder")
    c["drop"] = repo.commit("feat(api)!: drop the v1 endpoints")
    c["rename"] = repo.commit("refactor: rename the settings\n\nBREAKING CHANGE: `limits` is now `quota`",
                              author="Dan Dee")
    c["pair"] = repo.commit("fix(io): flush on exit\n\nCo-authored-by: Erin Example <erin@example.com>")
    repo.tag("v0.2.0")
    return repo, c


def listed(changes: Changes) -> list[str]:
    return [e.sha for e in changes.entries]


def test_ranges_between_finals_and_prereleases(tmp_path: Path, history: tuple[Repo, dict[str, str]]) -> None:
    repo, c = history
    spec, git = make_spec(tmp_path, notes="git"), GitHistory(repo.path)
    final = changes_of(spec, git, "v0.2.0", repo.git("rev-parse", "v0.2.0"))
    assert final.previous == "v0.1.0"
    assert sorted(listed(final)) == sorted(c[k] for k in ("json", "empty", "perf", "docs", "plain", "drop",
                                                          "rename", "pair"))
    rc2 = changes_of(spec, git, "v0.2.0-rc.2", repo.git("rev-parse", "v0.2.0-rc.2"))
    assert rc2.previous == "v0.2.0-rc.1" and sorted(listed(rc2)) == sorted([c["perf"], c["docs"]])
    rc1 = changes_of(spec, git, "v0.2.0-rc.1", repo.git("rev-parse", "v0.2.0-rc.1"))
    assert rc1.previous == "v0.1.0" and listed(rc1) == [c["empty"], c["json"]]  # newest first
    first = changes_of(spec, git, "v0.1.0", c["init"])
    assert first.previous is None and listed(first) == [c["init"]]
    assert render_changes(first).startswith(f"### Other changes\n\n- initial import (`{c['init'][:7]}`)")


def test_groups_in_order_breaking_first(tmp_path: Path, history: tuple[Repo, dict[str, str]]) -> None:
    repo, c = history
    changes = changes_of(make_spec(tmp_path, notes="git"), GitHistory(repo.path), "v0.2.0", c["pair"])
    kinds = {e.sha: e.kind for e in changes.entries}
    assert kinds == {c["drop"]: "breaking", c["rename"]: "breaking", c["json"]: "feat", c["empty"]: "fix",
                     c["pair"]: "fix", c["perf"]: "perf", c["docs"]: "other", c["plain"]: "other"}
    text = render_changes(changes)
    headings = re.findall(r"^### (.+)$", text, flags=re.MULTILINE)
    assert headings == ["Breaking changes", "Features", "Fixes", "Performance", "Other changes"]
    short = {k: repo.git("rev-parse", "--short", sha) for k, sha in c.items()}
    assert f"- **api:** drop the v1 endpoints (`{short['drop']}`)" in text
    assert f"- rename the settings (`{short['rename']}`)\n  BREAKING CHANGE: `limits` is now `quota`" in text
    assert f"- **parser:** parse twice as fast (`{short['perf']}`)" in text
    assert f"- Tidy up the build script (`{short['plain']}`)" in text  # not conventional: whole subject
    assert f"- docs: explain the config file (`{short['docs']}`)" in text  # other types keep their type
    assert text.count(short["json"]) == 1
    # Everyone who wrote a commit, and co-authors, by name; sorted, each once.
    assert "**Contributors:** Ada Lovelace, Bob Builder, Carol Chen, Dan Dee, Erin Example" in text
    assert "Release Bot" not in text  # the committer is not an author


def test_pull_requests_link_to_the_forge(tmp_path: Path, history: tuple[Repo, dict[str, str]]) -> None:
    repo, c = history
    github = make_spec(tmp_path, publisher="github", github_repo="acme/demo",
                       github_api_url="https://ghe.example/api/v3")
    changes = changes_of(github, GitHistory(repo.path), "v0.2.0", c["pair"])
    text = render_changes(changes)
    assert "add --json output ([#12](https://ghe.example/acme/demo/pull/12))" in text
    assert f"([`{repo.git('rev-parse', '--short', c['json'])}`](https://ghe.example/acme/demo/commit/{c['json']}))" \
        in text
    # The directory publisher has no forge: the number stays plain text, no link is made up.
    plain = render_changes(changes_of(make_spec(tmp_path), GitHistory(repo.path), "v0.2.0", c["pair"]))
    assert "add --json output (#12)" in plain and "http" not in plain


# ---------------------------------------------------------------------------- merges

@pytest.fixture
def merged(tmp_path: Path) -> tuple[Repo, dict[str, str]]:
    """v1.0.0; a feature branch merged through pull request #5 (one of its commits names #7); v1.1.0."""
    repo = Repo(tmp_path / "src")
    c = {"base": repo.commit("feat: first")}
    repo.tag("v1.0.0")
    repo.git("checkout", "-q", "-b", "feature")
    c["a"] = repo.commit("feat: stream results", author="Bob Builder", path="a.txt")
    c["b"] = repo.commit("fix: off-by-one in paging (#7)", author="Bob Builder", path="b.txt")
    repo.git("checkout", "-q", "main")
    c["bump"] = repo.commit("chore: bump dependencies", path="c.txt")
    repo.git("merge", "-q", "--no-ff", "feature", "-m", "Merge pull request #5 from acme/feature")
    c["merge"] = repo.git("rev-parse", "HEAD")
    c["squash"] = repo.commit("feat: export CSV (#9)", author="Carol Chen")
    repo.tag("v1.1.0")
    return repo, c


def test_merge_commits_are_not_listed_twice(tmp_path: Path, merged: tuple[Repo, dict[str, str]]) -> None:
    repo, c = merged
    spec = make_spec(tmp_path, publisher="github", github_repo="acme/demo")
    changes = changes_of(spec, GitHistory(repo.path), "v1.1.0", c["squash"])
    assert sorted(listed(changes)) == sorted([c["a"], c["b"], c["bump"], c["squash"]])  # no merge commit
    by_sha = {e.sha: e for e in changes.entries}
    assert by_sha[c["a"]].merged_pr == 5 and by_sha[c["b"]].merged_pr is None and by_sha[c["bump"]].merged_pr is None
    text = render_changes(changes)
    assert "stream results ([#5](https://github.com/acme/demo/pull/5))" in text
    # a commit that names its own pull request keeps it and does not get the merge's too
    assert "off-by-one in paging ([#7](https://github.com/acme/demo/pull/7)) ([`" in text
    assert "pull/5" not in text.split("off-by-one")[1].split("\n")[0]
    assert "Merge pull request" not in text and text.count("pull/5)") == 1


def test_gitea_pull_request_links(merged: tuple[Repo, dict[str, str]]) -> None:
    repo, c = merged
    [entry] = [e for e in changes_of(make_spec(repo.path.parent, notes="git"), GitHistory(repo.path), "v1.1.0",
                                     c["squash"]).entries if e.sha == c["a"]]
    links = {"pull": "https://git.example/acme/demo/pulls/", "commit": "https://git.example/acme/demo/commit/"}
    assert "([#5](https://git.example/acme/demo/pulls/5))" in render_entry(entry, links)


def test_subjects_are_text_not_markup(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "src")
    sha = repo.commit("fix: escape <script>alert(1)</script> & friends")
    repo.tag("v0.1.0")
    text = render_changes(changes_of(make_spec(tmp_path), GitHistory(repo.path), "v0.1.0", sha))
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in text


def test_no_commits_since_the_previous_release(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "src")
    sha = repo.commit("feat: all of it")
    repo.tag("v1.0.0")
    repo.tag("v1.0.1")  # the same commit, tagged again
    changes = changes_of(make_spec(tmp_path), GitHistory(repo.path), "v1.0.1", sha)
    assert changes.entries == () and render_changes(changes) == "No commits since v1.0.0.\n"


# ------------------------------------------------------------------------ the tag's message

def test_annotated_tag_message_and_lightweight_tags(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "src")
    sha = repo.commit("feat: everything")
    repo.tag("v1.0.0", "Velostream 1.0: the first stable release.\n\nThanks to everyone who tested it.")
    repo.tag("v1.0.1")
    repo.tag("v1.0.2", "v1.0.2")  # a message that only repeats the tag says nothing
    git, spec = GitHistory(repo.path), make_spec(tmp_path)
    assert changes_of(spec, git, "v1.0.0", sha).annotation == ("Velostream 1.0: the first stable release.\n\n"
                                                               "Thanks to everyone who tested it.")
    assert changes_of(spec, git, "v1.0.1", sha).annotation == ""
    assert changes_of(spec, git, "v1.0.2", sha).annotation == ""


# ------------------------------------------------------------------------ CHANGELOG.md

CHANGELOG = """# Changelog

## [Unreleased]
- nothing yet

## [0.2.0] - 2026-11-30
### Added
- `velo-sql --json`.

### Fixed
- Empty input no longer crashes.

## [0.1.0] - 2026-01-01
- First release.

[0.2.0]: https://github.com/acme/demo/compare/v0.1.0...v0.2.0
[0.1.0]: https://github.com/acme/demo/releases/tag/v0.1.0
"""


def test_version_section() -> None:
    assert version_section(CHANGELOG, "0.2.0") == ("### Added\n- `velo-sql --json`.\n\n### Fixed\n"
                                                  "- Empty input no longer crashes.")
    assert version_section(CHANGELOG, "0.1.0") == "- First release."  # link definitions left out
    assert version_section(CHANGELOG, "0.3.0") is None
    assert version_section(CHANGELOG, "0.2") is None
    assert version_section("## v1.0.0-rc.1\nText\n", "1.0.0-rc.1") == "Text"
    assert version_section("## 1.0.0 (2026-02-02)\n\n- a\n", "1.0.0") == "- a"


@pytest.fixture
def with_changelog(tmp_path: Path) -> tuple[Repo, str]:
    repo = Repo(tmp_path / "src")
    repo.commit("feat: first")
    repo.tag("v0.1.0")
    repo.commit("feat: add --json output")
    sha = repo.write("CHANGELOG.md", CHANGELOG, "docs: changelog for 0.2.0")
    repo.tag("v0.2.0")
    return repo, sha


@pytest.mark.parametrize("mode", ["git", "changelog", "both"])
def test_notes_source(tmp_path: Path, with_changelog: tuple[Repo, str], mode: str) -> None:
    repo, sha = with_changelog
    text = render_changes(changes_of(make_spec(tmp_path, notes=mode), GitHistory(repo.path), "v0.2.0", sha))
    has_section, has_commits = "Empty input no longer crashes." in text, "add --json output" in text
    assert (has_section, has_commits) == {"git": (False, True), "changelog": (True, False),
                                          "both": (True, True)}[mode]
    if mode == "both":  # the section first; the commits after it, folded
        assert text.index("### Added") < text.index("<details>") < text.index("add --json output")
        assert "<summary>2 commit(s)</summary>" in text


def test_missing_section_is_refused_when_the_notes_need_it(tmp_path: Path, with_changelog: tuple[Repo, str]) -> None:
    repo, _ = with_changelog
    repo.commit("fix: later")
    sha = repo.git("rev-parse", "HEAD")
    repo.tag("v0.3.0")
    git = GitHistory(repo.path)
    with pytest.raises(ReleaseError, match=r"CHANGELOG.md \(at [0-9a-f]{12}\) has no section for 0.3.0; add one "
                                           r"such as '## \[0.3.0\] - YYYY-MM-DD'.*notes = \"git\""):
        changes_of(make_spec(tmp_path, notes="changelog"), git, "v0.3.0", sha)
    # "both" falls back to the commits
    both = changes_of(make_spec(tmp_path, notes="both"), git, "v0.3.0", sha)
    assert both.section is None and [e.text for e in both.entries] == ["later"]
    # and a repository without CHANGELOG.md at all says so
    with pytest.raises(ReleaseError, match=r"CHANGELOG.md \(at [0-9a-f]{12}\) does not exist"):
        changes_of(make_spec(tmp_path, notes="changelog"), git, "v0.1.0", repo.git("rev-parse", "v0.1.0"))


# ------------------------------------------------------------------------ the master's mirror

def test_mirror_fetches_tags_and_forgets_deleted_ones(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "src")
    sha = repo.commit("feat: first")
    repo.tag("v0.1.0", "the first one")
    repo.tag("v0.1.1")
    remote = tmp_path / "remote.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(remote))
    cache = tmp_path / "cache"
    copy = mirror(str(remote), cache)
    assert sorted(copy.tags()) == ["v0.1.0", "v0.1.1"] and copy.commit_of("refs/tags/v0.1.0") == sha
    assert copy.tag_message("v0.1.0") == "the first one"
    subprocess.run(["git", "-C", str(remote), "tag", "-d", "v0.1.1"], check=True, capture_output=True)
    again = mirror(str(remote), cache)
    assert again.git_dir == copy.git_dir and again.tags() == ["v0.1.0"]
    assert [p.name for p in cache.iterdir() if p.suffix == ".git"] == [copy.git_dir.name]  # one per URL


def test_a_token_in_the_git_url_never_reaches_an_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing answers there
    url = f"http://ci-bot:tok3n-s3cret@127.0.0.1:{port}/acme/demo.git"
    with pytest.raises(ReleaseError) as caught:
        mirror(url, tmp_path / "cache")
    assert "tok3n-s3cret" not in str(caught.value) and "***@127.0.0.1" in str(caught.value)
    assert not any("tok3n-s3cret" in p.read_text(errors="replace") for p in (tmp_path / "cache").rglob("*")
                   if p.is_file())


def test_the_coordinator_step(tmp_path: Path, with_changelog: tuple[Repo, str]) -> None:
    """`python -m velofarm.release.changelog`, as the release builder runs it: the changelog, or one error line."""
    repo, sha = with_changelog
    farm = tmp_path / "farm.toml"

    def step(notes: str, tag: str, commit: str) -> subprocess.CompletedProcess[str]:
        farm.write_text(f'[project]\nname = "demo"\ngit_url = "{repo.path}"\nbinaries = {{ demo = [] }}\n'
                        f'[release]\nnotes = "{notes}"\n[platforms.linux-x86_64]\n'
                        '[workers.w]\nplatforms = ["linux-x86_64"]\n')
        return subprocess.run([sys.executable, "-m", "velofarm.release.changelog", "--spec", str(farm), "--tag", tag,
                               "--commit", commit, "--git-cache", str(tmp_path / "cache")],
                              capture_output=True, text=True)

    done = step("both", "v0.2.0", sha)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## What's changed since v0.1.0\n\n### Added\n")
    first = repo.git("rev-parse", "v0.1.0")
    refused = step("changelog", "v0.1.0", first)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: CHANGELOG.md (at ") and refused.stderr.count("\n") == 1


def test_a_long_history_is_cut_with_the_command_that_lists_the_rest(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from velofarm.release import changelog
    monkeypatch.setattr(changelog, "MAX_ENTRIES", 2)  # GitHub's body limit, scaled down
    repo = Repo(tmp_path / "src")
    repo.commit("feat: first")
    repo.tag("v0.1.0")
    for n in range(4):
        sha = repo.commit(f"fix: number {n}")
    repo.tag("v0.2.0")
    changes = changes_of(make_spec(tmp_path), GitHistory(repo.path), "v0.2.0", sha)
    assert [e.text for e in changes.entries] == ["number 3", "number 2"] and changes.omitted == 2
    assert "... and 2 more commits (`git log --oneline v0.1.0..v0.2.0`)." in render_changes(changes)
