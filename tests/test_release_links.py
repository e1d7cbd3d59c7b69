"""Real links in the notes and release.json: GitHub (and Enterprise), a served directory, a local folder."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import urllib.parse
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from support.github_standin import TOKEN, GitHubStandIn
from support.gitrepo import Repo
from test_release_assembly import COMMIT, fill_store

from velofarm.errors import SpecError
from velofarm.publish.directory import DirectoryPublisher
from velofarm.publish.github import GitHubPublisher
from velofarm.publish.links import asset_url, changelog_links, github_web_url, release_page_url
from velofarm.release.assemble import assemble_release
from velofarm.release.changelog import changes_of, render_changes
from velofarm.release.history import GitHistory
from velofarm.release.model import NOTES_FILE, RELEASE_JSON, SUMS_FILE
from velofarm.release.verify import load_release
from velofarm.spec.farm import ReleaseSettings, Spec, parse_spec

TAG = "v1.2.3"
PLATFORMS = ("linux-x86_64", "windows-x86_64-gnu")


def make_spec(tmp_path: Path, **release: Any) -> Spec:
    data = {"project": {"name": "demo", "title": "Demo", "git_url": str(tmp_path / "src"),
                        "ship": ["README.md"], "binaries": {"demo": ["--version"]}},
            "platforms": {p: {} for p in PLATFORMS}, "workers": {"lin-1": {"platforms": list(PLATFORMS)}},
            "release": release}
    return parse_spec(data, tmp_path / "farm.toml", registry={})


def assemble(spec: Spec, tmp_path: Path, tag: str = TAG, **kw: Any) -> Path:
    fill_store(spec, tmp_path / "artifacts", tag)
    return assemble_release(spec, tag, COMMIT, tmp_path / "artifacts", tmp_path / "staging" / tag, **kw)


def links_in(notes: str) -> set[str]:
    """Every link target of the notes: markdown links and the download commands' URLs."""
    found = set(re.findall(r"\]\(([^)\s]+)\)", notes))
    found |= set(re.findall(r"(?:curl -LO|Invoke-WebRequest -OutFile \S+) (\S+)", notes))
    return found


# ------------------------------------------------------------------------------ URLs from settings

@pytest.mark.parametrize("api,web", [
    ("https://api.github.com", "https://github.com"),
    ("https://ghe.example/api/v3", "https://ghe.example"),
    ("https://ghe.example:8443/git/api/v3", "https://ghe.example:8443/git"),
    ("https://api.acme.ghe.com", "https://acme.ghe.com"),
])
def test_github_web_host_from_the_api_url(api: str, web: str) -> None:
    assert github_web_url(api) == web


def test_asset_urls_per_publisher() -> None:
    github = ReleaseSettings(publisher="github", github_repo="acme/demo", github_api_url="https://ghe.example/api/v3")
    assert asset_url(github, "v1.0.0", "demo-v1.0.0-x.tar.gz") == \
        "https://ghe.example/acme/demo/releases/download/v1.0.0/demo-v1.0.0-x.tar.gz"
    assert release_page_url(github, "v1.0.0") == "https://ghe.example/acme/demo/releases/tag/v1.0.0"
    assert changelog_links(github) == {"pull": "https://ghe.example/acme/demo/pull/",
                                       "commit": "https://ghe.example/acme/demo/commit/"}
    served = ReleaseSettings(base_url="https://dl.example/releases")
    assert asset_url(served, "v1.0.0+build.5", "a b.zip") == "https://dl.example/releases/v1.0.0+build.5/a%20b.zip"
    assert release_page_url(served, "v1.0.0") == "https://dl.example/releases/v1.0.0/"
    local = ReleaseSettings()
    assert asset_url(local, "v1.0.0", SUMS_FILE) == SUMS_FILE and release_page_url(local, "v1.0.0") == ""
    assert changelog_links(local) == changelog_links(served) == {}


def test_gitea_branch_uses_the_gitea_fields() -> None:
    gitea = ReleaseSettings(publisher="gitea", gitea_url="https://git.example/", gitea_repo="acme/demo")
    assert asset_url(gitea, "v1.0.0", "x.zip") == "https://git.example/acme/demo/releases/download/v1.0.0/x.zip"
    assert changelog_links(gitea)["pull"] == "https://git.example/acme/demo/pulls/"


@pytest.mark.parametrize("value", ["ftp://dl.example/releases", "dl.example/releases", "file:///srv/releases",
                                   "https://", "https://dl.example/r?x=1", 42])
def test_base_url_must_be_http(tmp_path: Path, value: Any) -> None:
    with pytest.raises(SpecError, match=r"farm.toml: release.base_url: .* not an http:// or https:// URL|"
                                        r"farm.toml: release.base_url: .*query or fragment"):
        make_spec(tmp_path, base_url=value)
    assert make_spec(tmp_path, base_url="http://dl.example/r/").release.base_url == "http://dl.example/r"


def test_notes_source_is_checked(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"farm.toml: release.notes: 'markdown' is not one of git, changelog, both"):
        make_spec(tmp_path, notes="markdown")
    assert make_spec(tmp_path).release.notes == "both"


# ------------------------------------------------------------------------------ the directory publisher

@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP server for `releases/` on loopback, as a web server in front of the folder would be."""
    root = tmp_path / "releases"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root
    server.shutdown()
    server.server_close()


def test_directory_release_with_base_url_links_to_served_files(tmp_path: Path, served: tuple[str, Path]) -> None:
    base_url, root = served
    spec = make_spec(tmp_path, base_url=base_url)
    out = assemble(spec, tmp_path)
    DirectoryPublisher(root).publish(load_release(out))
    notes = (root / TAG / NOTES_FILE).read_text(encoding="utf-8")
    assert "<release-url>" not in notes
    meta = json.loads((root / TAG / RELEASE_JSON).read_text(encoding="utf-8"))
    urls = {a["name"]: a["url"] for a in meta["assets"]}
    assert set(urls) == {p.name for p in out.iterdir()} - {NOTES_FILE, RELEASE_JSON}
    assert meta["release_url"] == f"{base_url.rstrip('/')}/{TAG}/"
    assert {p["url"] for p in meta["platforms"]} <= set(urls.values())
    # Every link the notes hold is one of the assets, and every asset downloads to what was published.
    assert links_in(notes) - set(urls.values()) == set()
    archives = [p["archive"] for p in meta["platforms"]]
    assert {urls[a] for a in archives} | {urls[SUMS_FILE]} <= links_in(notes)
    linux = next(a for a in archives if a.endswith(".tar.gz"))
    assert f"curl -LO {urls[linux + '.sha256']}" in notes
    for name, url in urls.items():
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert hashlib.sha256(resp.read()).hexdigest() == hashlib.sha256((out / name).read_bytes()).hexdigest()


def test_directory_release_without_base_url_links_next_to_the_notes(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    out = assemble(spec, tmp_path)
    root = tmp_path / "releases"
    DirectoryPublisher(root).publish(load_release(out))
    notes_file = root / TAG / NOTES_FILE
    notes = notes_file.read_text(encoding="utf-8")
    assert "<release-url>" not in notes and "curl" not in notes and "Invoke-WebRequest" not in notes
    assert "in the folder that holds these notes" in notes
    targets = links_in(notes)
    assert SUMS_FILE in targets and len(targets) == 3  # SHA256SUMS and the two archives
    for target in targets:
        assert (notes_file.parent / urllib.parse.unquote(target)).is_file(), target


# ------------------------------------------------------------------------------ GitHub (Enterprise)

@pytest.mark.parametrize("prefix", ["", "/api/v3"])
def test_github_release_notes_link_to_what_github_serves(tmp_path: Path, prefix: str) -> None:
    with GitHubStandIn("acme/demo", api_prefix=prefix) as gh:
        spec = make_spec(tmp_path, publisher="github", github_repo="acme/demo", github_api_url=gh.api_url)
        out = assemble(spec, tmp_path)
        release = load_release(out)
        GitHubPublisher("acme/demo", TOKEN, gh.api_url, log=lambda line: None, sleep=lambda s: None,
                        min_write_interval=0).publish(release)
        assert gh.validation_errors == []
        [stored] = gh.releases
        served = {a.name: gh.asset_json(stored, a)["browser_download_url"] for a in stored.assets}
        page = gh.release_json(stored)["html_url"]
    meta = json.loads((out / RELEASE_JSON).read_text(encoding="utf-8"))
    assert {a["name"]: a["url"] for a in meta["assets"]} == served
    assert meta["release_url"] == page
    assert "<release-url>" not in stored.body and stored.body == release.notes
    assert links_in(stored.body) <= set(served.values())
    for p in meta["platforms"]:
        assert f"curl -LO {served[p['archive']]}" in stored.body or \
            f"Invoke-WebRequest -OutFile {p['archive']} {served[p['archive']]}" in stored.body


# ------------------------------------------------------------------------------ the changelog in the notes

def test_notes_open_with_the_tag_message_and_the_changelog(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "src")
    repo.commit("feat: first")
    repo.tag("v1.2.2")
    repo.commit("fix(cli): exit 2 on bad flags (#41)", author="Bob Builder")
    sha = repo.commit("feat!: config v2")
    repo.tag(TAG, "Demo 1.2.3: a new config format.")
    spec = make_spec(tmp_path, publisher="github", github_repo="acme/demo")
    changes = changes_of(spec, GitHistory(repo.path), TAG, sha)
    out = assemble(spec, tmp_path, changes=changes)
    notes = (out / NOTES_FILE).read_text(encoding="utf-8")
    assert notes.startswith(f"# Demo {TAG}\n\nDemo 1.2.3: a new config format.\n\nBuilt from commit")
    assert notes.index("## What's changed since v1.2.2") < notes.index("### Breaking changes") < \
        notes.index("### Fixes") < notes.index("## Install")
    assert "exit 2 on bad flags ([#41](https://github.com/acme/demo/pull/41))" in notes
    meta = json.loads((out / RELEASE_JSON).read_text(encoding="utf-8"))
    assert meta["changelog"] == render_changes(changes) and meta["previous_tag"] == "v1.2.2"
    assert load_release(out).notes == notes  # the release still verifies
