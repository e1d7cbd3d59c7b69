"""Publishers carry the signatures, provenance and SBOM; verify checks a published release."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from support.github_standin import TOKEN, GitHubStandIn
from support.trustfarm import TAG, TrustFarm, make_trust_farm

from velofarm.cli.main import main
from velofarm.publish.directory import DirectoryPublisher
from velofarm.publish.github import GitHubPublisher
from velofarm.release.verify import load_release

TRUST_ASSETS = {"SHA256SUMS.minisig": "text/plain", "SHA256SUMS.sig": "text/plain",
                f"demo-{TAG}.intoto.jsonl": "application/jsonl", f"demo-{TAG}.cdx.json": "application/vnd.cyclonedx+json"}


@pytest.fixture
def farm(tmp_path: Path) -> TrustFarm:
    return make_trust_farm(tmp_path / "farm")


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_directory_publisher_carries_and_serves_a_verifiable_release(farm: TrustFarm, http_root: tuple[Path, str],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    release = load_release(farm.assemble(farm.root / "staging" / TAG))
    assert {a.name: a.content_type for a in release.assets if a.name in TRUST_ASSETS} == TRUST_ASSETS
    root, url = http_root
    publisher = DirectoryPublisher(root / "releases")
    assert publisher.publish(release).state == "published"
    assert publisher.publish(release).state == "already-published"  # a re-run changes nothing
    assert main(["verify", str(root / "releases" / TAG), "--keys", str(farm.keys)]) == 0
    assert main(["verify", f"{url}releases/{TAG}/", "--keys", str(farm.keys)]) == 0, capsys.readouterr().out
    capsys.readouterr()
    (root / "releases" / TAG / "SHA256SUMS.minisig").write_text("untrusted comment: x\nRWQ=\ntrusted comment: x\nAA==\n")
    assert main(["verify", f"{url}releases/{TAG}/", "--keys", str(farm.keys)]) == 1
    assert "FAIL SHA256SUMS.minisig: " in capsys.readouterr().out
    assert main(["verify", f"{url}releases/v9.9.9/", "--keys", str(farm.keys)]) == 2  # nothing there to check
    assert "cannot download it" in capsys.readouterr().out


def test_github_publisher_uploads_the_trust_assets_once(farm: TrustFarm) -> None:
    release = load_release(farm.assemble(farm.root / "staging" / TAG))
    with GitHubStandIn(repo="acme/demo") as gh:
        GitHubPublisher("acme/demo", TOKEN, api_url=gh.api_url, sleep=lambda s: None).publish(release)
        first = gh.snapshot()
        assert gh.validation_errors == []
        uploaded = {name: ctype for name, _, _, _, ctype in first[0]["assets"]}
        assert {n: uploaded[n] for n in TRUST_ASSETS} == TRUST_ASSETS
        assert set(uploaded) == {a.name for a in release.assets}
        writes = len(gh.writes())
        GitHubPublisher("acme/demo", TOKEN, api_url=gh.api_url, sleep=lambda s: None).publish(release)
        assert gh.snapshot() == first and len(gh.writes()) == writes  # the re-run changes nothing


def test_verify_downloads_a_github_release_and_checks_it(farm: TrustFarm, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    release = load_release(farm.assemble(farm.root / "staging" / TAG))
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with GitHubStandIn(repo="acme/demo", keep_data=True) as gh:
        GitHubPublisher("acme/demo", TOKEN, api_url=gh.api_url, sleep=lambda s: None).publish(release)
        args = ["verify", "--github", "acme/demo", TAG, "--api-url", gh.api_url, "--token-file", str(token),
                "--keys", str(farm.keys)]
        assert main([*args, "--commit", farm.commit]) == 0, capsys.readouterr().out
        capsys.readouterr()
        assert main([*args, "--commit", "f" * 40]) == 1
        assert f"built from commit {farm.commit}, but the release is {'f' * 40}" in capsys.readouterr().out
        archive = next(n for n in gh.keep_data or {} if n[1].endswith(".zip"))
        gh.keep_data[archive] = b"PK tampered"  # type: ignore[index]
        assert main(args) == 1
        assert f"FAIL {archive[1]}: SHA-256 does not match SHA256SUMS" in capsys.readouterr().out
        assert gh.validation_errors == []


def test_publish_by_hand_refuses_a_tampered_signature(farm: TrustFarm, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    staging = farm.assemble(farm.root / "staging" / TAG)
    args = ["publish", str(staging), "--to", "directory", "--dest", str(tmp_path / "releases"),
            "--keys", str(farm.keys)]
    sig = staging / "SHA256SUMS.sig"
    good = sig.read_text()
    line = good.splitlines()[3]  # inside the signature bytes
    sig.write_text(good.replace(line, line[:7] + ("A" if line[7] != "A" else "B") + line[8:], 1))
    assert main(args) == 1
    assert "SHA256SUMS.sig: " in capsys.readouterr().err
    assert not (tmp_path / "releases").exists()  # nothing published
    sig.write_text(good)
    assert main(args) == 0
    assert main(["verify", str(tmp_path / "releases" / TAG), "--keys", str(farm.keys)]) == 0
