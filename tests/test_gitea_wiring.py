"""The Gitea publisher as farm.toml, the master's release builder and `velofarm publish` reach it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support.gitea_standin import TOKEN, GiteaStandIn
from test_release_assembly import COMMIT, fill_store, make_spec
from test_release_links import assemble, links_in
from test_release_links import make_spec as make_linked_spec

from velofarm.cli.main import main
from velofarm.errors import PublishError
from velofarm.publish.gitea import GiteaPublisher
from velofarm.publish.select import publisher_for, token_secret
from velofarm.release.assemble import assemble_release
from velofarm.release.model import RELEASE_JSON
from velofarm.release.verify import load_release
from velofarm.spec.farm import parse_spec

REPO = "acme/velostream"


def gitea_spec(tmp_path: Path, **release: str) -> Any:
    data = {"project": {"name": "demo", "git_url": "https://example.invalid/demo.git", "binaries": {"demo": []}},
            "platforms": {"linux-x86_64": {}}, "workers": {"lin-1": {"platforms": ["linux-x86_64"]}},
            "release": {"publisher": "gitea", "gitea_url": "https://git.example.org", "gitea_repo": REPO,
                        **release}}
    return parse_spec(data, tmp_path / "farm.toml", registry={})


def test_farm_toml_selects_the_gitea_publisher(tmp_path: Path) -> None:
    spec = gitea_spec(tmp_path, gitea_token_secret="forgejo-token")
    pub = publisher_for(spec, "t0ken", log=lambda line: None)
    assert isinstance(pub, GiteaPublisher)
    assert (pub.http.api_url, pub.repo) == ("https://git.example.org/api/v1", REPO)
    assert token_secret(spec) == "forgejo-token"
    with pytest.raises(PublishError, match="publisher gitea: no token; .*'forgejo-token'"):
        publisher_for(spec, None)


def test_release_builder_reads_the_gitea_token_secret(tmp_path: Path) -> None:
    from buildbot.process.properties import Secret

    from velofarm.buildmaster.factories import release_factory
    factory = release_factory(gitea_spec(tmp_path), tmp_path / "artifacts", tmp_path / "staging")
    [publish] = [s for s in factory.steps if s.kwargs.get("name") == "publish"]
    token = publish.kwargs["token"]
    assert isinstance(token, Secret) and token.secret_name == "gitea-token"


@pytest.fixture
def release_dir(tmp_path: Path) -> Path:
    spec = make_spec(tmp_path)
    fill_store(spec, tmp_path / "artifacts", tag="v0.3.0")
    return assemble_release(spec, "v0.3.0", COMMIT, tmp_path / "artifacts", tmp_path / "staging" / "v0.3.0")


def test_velofarm_publish_to_gitea(release_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "gitea-token"
    token_file.write_text(TOKEN + "\n")
    with GiteaStandIn(REPO) as gitea:
        argv = ["publish", str(release_dir), "--to", "gitea", "--url", gitea.url, "--repo", REPO,
                "--token-file", str(token_file), "--unsigned"]  # release_dir is made without keys
        assert main(argv) == 0
        [release] = gitea.snapshot()
        assert release["tag"] == "v0.3.0" and not release["draft"] and release["tag_commit"] == COMMIT
        assert {a[0] for a in release["assets"]} >= {"SHA256SUMS"}
        assert main(argv) == 0
        assert gitea.validation_errors == []
    out = capsys.readouterr()
    assert "v0.3.0: published: " in out.out and "v0.3.0: already-published: " in out.out
    assert TOKEN not in out.out + out.err


@pytest.mark.parametrize("args,message", [
    (["--repo", REPO, "--token-file", "TOKEN"], "--to gitea needs --url"),
    (["--url", "gitea.example.com", "--repo", REPO, "--token-file", "TOKEN"], "needs a scheme and a host"),
    (["--url", "https://g.example", "--repo", REPO, "--token-file", "missing"], "missing: cannot read it"),
])
def test_velofarm_publish_to_gitea_refuses_bad_input(release_dir: Path, tmp_path: Path, args: list[str],
                                                     message: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "TOKEN").write_text("t0ken")
    args = [str(tmp_path / a) if a in ("TOKEN", "missing") else a for a in args]
    assert main(["publish", str(release_dir), "--to", "gitea", "--unsigned", *args]) == 1
    assert message in capsys.readouterr().err


def test_gitea_release_notes_link_to_what_gitea_serves(tmp_path: Path) -> None:
    with GiteaStandIn("acme/demo") as gitea:
        spec = make_linked_spec(tmp_path, publisher="gitea", gitea_url=gitea.url, gitea_repo="acme/demo")
        out = assemble(spec, tmp_path)
        release = load_release(out)
        GiteaPublisher(gitea.url, "acme/demo", TOKEN, log=lambda line: None, sleep=lambda s: None,
                       min_write_interval=0).publish(release)
        assert gitea.validation_errors == []
        [stored] = gitea.releases
        meta = json.loads((out / RELEASE_JSON).read_text(encoding="utf-8"))
        assert meta["release_url"] == gitea.release_json(stored)["html_url"]
        downloads = {link for link in links_in(stored.body) if "/releases/download/" in link}
        urls = {a["url"] for a in meta["assets"]}
        assert {a["url"] for a in meta["assets"] if not a["name"].endswith(".sha256")} <= downloads <= urls
        assert len(urls) == len(release.assets) and "<release-url>" not in stored.body
        for asset in meta["assets"]:  # every link is what Gitea serves, without a token
            with urllib.request.urlopen(asset["url"]) as answer:
                assert answer.read() == (out / asset["name"]).read_bytes(), asset["url"]
