"""A release published to a Gitea stand-in by a real farm (master + worker processes, real cargo
builds): complete, on a tag at the built commit, and the token leaks nowhere."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from support.farmtools import all_step_logs, wait_release_of
from support.gitea_standin import TOKEN, GiteaStandIn

from velofarm.spec.farm import load_spec

pytestmark = pytest.mark.integration


def test_release_publishes_to_gitea_and_the_token_appears_nowhere(make_farm, tmp_path: Path) -> None:
    with GiteaStandIn(repo="acme/velostream") as gitea:
        farm = make_farm(release={"publisher": "gitea", "gitea_url": gitea.url, "gitea_repo": "acme/velostream"})
        farm.secrets.put("gitea-token", TOKEN)
        farm.init_repo()
        farm.start_all()
        farm.push_tag("v0.1.0")
        build = wait_release_of(farm, "v0.1.0")
        assert build["results"] == 0, build["state_string"]
        assert gitea.validation_errors == [] and gitea.incomplete_publishes == []
        [release] = gitea.snapshot()
        commit = subprocess.run(["git", "-C", str(farm.root / "remote.git"), "rev-parse", "v0.1.0^{commit}"],
                                check=True, capture_output=True, text=True).stdout.strip()
        assert release["tag"] == "v0.1.0" and release["draft"] is False and release["prerelease"] is False
        assert release["target"] == commit and release["tag_commit"] == commit
        names = {a[0] for a in release["assets"]}
        staged = farm.master_dir / "artifacts" / "v0.1.0"
        platforms = [p for p in staged.iterdir() if p.is_dir()]  # one folder per platform built
        assert len(platforms) == len(load_spec(farm.spec_path).platforms) >= 2
        assert "SHA256SUMS" in names and len([n for n in names if n.endswith(".sha256")]) == len(platforms)
        archives = list(staged.glob("*/velostream-*[!6]"))
        assert len(archives) == len(platforms)
        for archive in archives:
            digest = hashlib.sha256(archive.read_bytes()).hexdigest()
            assert (archive.name, archive.stat().st_size, digest) in release["assets"]

        # The token: not in any file of the master (logs, database, config), the workers, or a step log.
        leaks = [str(path) for root in (farm.master_dir, farm.root / "workers") for path in root.rglob("*")
                 if path.is_file() and TOKEN.encode() in path.read_bytes()]
        assert leaks == []
        assert TOKEN not in all_step_logs(farm)
        assert TOKEN not in farm.spec_path.read_text()
