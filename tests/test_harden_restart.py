"""The master SIGKILLed mid-release, with real processes: while a platform uploads its archive, and
while the release step publishes to GitHub (the stand-in).

Each time the master is started again, Buildbot ends the cut-off builds RETRY and runs the
release's request again by itself (the automatic retry): it rebuilds, uploads with a new grant
(grants live in memory; the old build's partial upload is removed at start) and publishes. The
published release must hold each asset exactly once, whole, with the digests the store has; there
is one release and no leftover draft.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Any, Callable

import pytest
from support.farmtools import step_log
from support.github_standin import TOKEN, GitHubStandIn
from support.holdproxy import HoldProxy

from velofarm.cli.localfarm import LocalFarm, free_port, wait_for
from velofarm.cli.main import main

pytestmark = pytest.mark.integration
PLATFORM = "linux-x86_64"
TAG = "v0.1.0"
SUCCESS, RETRY = 0, 5


def sigkill_master(farm: LocalFarm) -> None:
    """As a power cut or the OOM killer would: no shutdown, no goodbye to workers or the database."""
    pid_file = farm.master_dir / "twistd.pid"
    pid = int(pid_file.read_text().strip())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: gone_or_zombie(pid), 30, "the master to die")
    pid_file.unlink(missing_ok=True)


def gone_or_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def release_builds(farm: LocalFarm) -> list[dict[str, Any]]:
    return list(farm.api("builders/release/builds?order=number")["builds"])


def wait_for_retried_release(farm: LocalFarm) -> dict[str, Any]:
    """The first release build after the cut-off one (which the restarted master ends RETRY)."""
    def done() -> dict[str, Any] | None:
        builds = release_builds(farm)
        ended = [b for b in builds if b["complete"] and b["results"] != RETRY]
        return ended[0] if ended else None
    return dict(farm.wait(done, 900, "the release's automatic retry after the restart", every=1))


def restart_and_finish(farm: LocalFarm) -> dict[str, Any]:
    farm.start_master()
    farm.wait(lambda: farm.connected_workers() >= set(farm.workers), 120, "the worker to reconnect")
    release = wait_for_retried_release(farm)
    first = release_builds(farm)[0]
    assert first["number"] == 1 and first["results"] == RETRY, first  # the cut-off one
    assert release["results"] == SUCCESS, (release["number"], release["state_string"])
    return release


def stored_archives(farm: LocalFarm, build_ids: list[int]) -> dict[str, tuple[int, str]]:
    """name -> (size, sha256) of the archives the published release is made of (the store, by build id)."""
    found = {}
    for build_id in build_ids:
        for path in (farm.master_dir / "artifacts" / TAG / PLATFORM / "builds" / str(build_id)).iterdir():
            if path.name.endswith((".tar.gz", ".zip")):
                found[path.name] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def published_builds(farm: LocalFarm, release: dict[str, Any]) -> list[int]:
    props = farm.api(f"builds/{release['buildid']}/properties")["properties"][0]
    return [int(i) for i in props["platform_builds"][0][PLATFORM]]


def test_a_master_killed_while_a_platform_uploads_finishes_the_release_after_restart(
        make_farm: Callable[..., LocalFarm]) -> None:
    upload_port, proxy_port = free_port(), free_port()
    farm = make_farm([PLATFORM], master={"upload_port": upload_port,
                                         "upload_url": f"http://127.0.0.1:{proxy_port}/upload/"})
    with HoldProxy(proxy_port, upload_port, hold_after=8192) as proxy:
        farm.init_repo()
        farm.start_all()
        farm.push_tag(TAG)
        store = farm.master_dir / "artifacts" / TAG

        def partial() -> list[Path]:
            # Opened as the body starts; its bytes reach the disk a 1 MiB buffer at a time.
            return list(store.glob(".incoming-*/.*.part")) if store.exists() else []

        assert proxy.held.wait(600), "the platform build never reached its upload"
        [part] = farm.wait(partial, 60, "the receiver's partial .part file")
        cut_off = part.parent
        sigkill_master(farm)  # mid-upload: the worker has sent 8 KiB of its archive
        proxy.disarm()
        assert cut_off.exists()  # nothing cleaned it up: the master died

        release = restart_and_finish(farm)

    log = (farm.master_dir / "twistd.log").read_text(errors="replace")
    assert not cut_off.exists() and f"removed {cut_off}" in log and "did not finish" in log
    assert list(store.glob(".incoming-*")) == []
    # The retried release uploaded with a grant of its own, into a build of its own.
    builds = published_builds(farm, release)
    assert int(cut_off.name.rsplit("-", 1)[1]) not in builds
    assert "stored" in step_log(farm, builds[0], "store artifact")
    # Published once, whole: every archive with the store's digest, and the folder verifies.
    folder = farm.root / "releases" / TAG
    assert [p.name for p in (farm.root / "releases").iterdir()] == [TAG]
    for name, (size, digest) in stored_archives(farm, builds).items():
        assert (folder / name).stat().st_size == size
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    assert main(["verify", str(folder), "--keys", str(farm.root / "keys")]) == 0


def test_a_master_killed_while_the_release_publishes_finishes_it_after_restart(
        make_farm: Callable[..., LocalFarm]) -> None:
    with GitHubStandIn(repo="acme/velostream", keep_data=True) as gh:
        farm = make_farm([PLATFORM], release={"publisher": "github", "github_repo": "acme/velostream",
                                              "github_api_url": gh.api_url})
        farm.secrets.put("github-token", TOKEN)
        hold = gh.faults.add("upload", "hold", skip=1)  # the second asset: caught half uploaded
        farm.init_repo()
        farm.start_all()
        farm.push_tag(TAG)
        assert hold.held.wait(900), "the release never reached its publish step"
        sigkill_master(farm)
        hold.release()
        [draft] = gh.releases
        assert draft.draft and any(a.state == "open" for a in draft.assets)  # half published, as a draft

        release = restart_and_finish(farm)

        assert gh.validation_errors == [] and gh.incomplete_publishes == []
        [published] = gh.snapshot()  # one release: the draft was finished, no second one created
        assert published["tag"] == TAG and published["draft"] is False
        assert len(gh.publishes) == 1
        names = [a[0] for a in published["assets"]]
        assert len(names) == len(set(names)) and all(a[3] == "uploaded" for a in published["assets"])
        have = {a[0]: (a[1], a[2]) for a in published["assets"]}
        for name, (size, digest) in stored_archives(farm, published_builds(farm, release)).items():
            assert have[name] == (size, f"sha256:{digest}"), name
        token = farm.root / "token"
        token.write_text(TOKEN)
        assert main(["verify", "--github", "acme/velostream", TAG, "--api-url", gh.api_url,
                     "--token-file", str(token), "--keys", str(farm.root / "keys")]) == 0
