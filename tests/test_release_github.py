"""A release published to a GitHub stand-in by a real farm: complete, and the token leaks nowhere."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from support.farmtools import all_step_logs, wait_release_of
from support.github_standin import TOKEN, GitHubStandIn

from velofarm.spec.farm import load_spec

pytestmark = pytest.mark.integration


def test_release_publishes_to_github_and_the_token_appears_nowhere(make_farm, tmp_path: Path) -> None:
    with GitHubStandIn(repo="acme/velostream") as gh:
        farm = make_farm(release={"publisher": "github", "github_repo": "acme/velostream",
                                  "github_api_url": gh.api_url})
        farm.secrets.put("github-token", TOKEN)
        farm.init_repo()
        farm.start_all()
        farm.push_tag("v0.1.0")
        build = wait_release_of(farm, "v0.1.0")
        assert build["results"] == 0, build["state_string"]
        assert gh.validation_errors == []
        assert gh.incomplete_publishes == []
        [release] = gh.snapshot()
        assert release["tag"] == "v0.1.0" and release["draft"] is False and release["prerelease"] is False
        names = {a[0] for a in release["assets"]}
        staged = farm.master_dir / "artifacts" / "v0.1.0"
        platforms = [p for p in staged.iterdir() if p.is_dir()]  # one folder per platform built
        assert len(platforms) == len(load_spec(farm.spec_path).platforms) >= 2
        assert "SHA256SUMS" in names and len([n for n in names if n.endswith(".sha256")]) == len(platforms)
        for archive in staged.glob("*/velostream-*[!6]"):
            digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
            assert (archive.name, archive.stat().st_size, digest) in {a[:3] for a in release["assets"]}
        assert all(a[3] == "uploaded" for a in release["assets"])
        # The notes link to what GitHub serves (its browser_download_url), and say what changed.
        [stored] = gh.releases
        served = {a.name: gh.asset_json(stored, a)["browser_download_url"] for a in stored.assets}
        for name in [n for n in served if n.endswith((".tar.gz", ".zip"))] + ["SHA256SUMS"]:
            assert served[name] in release["body"], name
        assert "<release-url>" not in release["body"] and "## What's changed (first release)" in release["body"]

        # The token: not in any file of the master (logs, database, config), the workers, or a step log.
        leaks = []
        for root in (farm.master_dir, farm.root / "workers"):
            for path in root.rglob("*"):
                if path.is_file() and TOKEN.encode() in path.read_bytes():
                    leaks.append(str(path))
        assert leaks == []
        assert TOKEN not in all_step_logs(farm)
        assert TOKEN not in farm.spec_path.read_text()
