"""End to end: [release] reproduce = 2 and Authenticode, with a real master, real workers and real cargo.

One farm releases both host platforms twice each (linux-x86_64 on two workers, windows-x86_64-gnu
twice on one worker in two builder folders) and signs the Windows binaries on the master; another
releases a variant of the example whose build script embeds the time, which must fail.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import FARM_TOML, need, need_host_toolchains
from support.codesigning import SigningPKI, install_signer, make_pki, osslsigncode_verify
from support.farmtools import release_builds, step_log, wait_release_of
from test_www_auth import PASSWORDS, add_users, rpc, session

from velofarm.cli.localfarm import EXAMPLE, LocalFarm, git, write_farm

pytestmark = pytest.mark.integration
TAG = "v0.1.0"
WINDOWS_ZIP = f"velostream-{TAG}-x86_64-pc-windows-gnu.zip"
LINUX_TOP = f"velostream-{TAG}-x86_64-unknown-linux-gnu"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SigningPKI:
    need("osslsigncode", "osslsigncode")
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, pki: SigningPKI) -> Iterator[LocalFarm]:
    need_host_toolchains()
    root = tmp_path_factory.mktemp("reproduce") / "farm"
    farm = write_farm(root, FARM_TOML, ["linux-x86_64", "windows-x86_64-gnu"], release={"reproduce": 2})
    text = farm.spec_path.read_text()
    text = text.replace("[platforms.windows-x86_64-gnu]", "[platforms.windows-x86_64-gnu]\nauthenticode = true")
    text = text.replace("[workers.local-linux-x86_64-1]", '[workers.local-linux-x86_64-2]\nplatforms = ["linux-x86_64"]\n'
                        "max_builds = 1\n\n[workers.local-linux-x86_64-1]")
    farm.spec_path.write_text(text)
    farm.workers["local-linux-x86_64-2"] = ["linux-x86_64"]
    farm.secrets.generate("worker-local-linux-x86_64-2")
    install_signer(pki, farm.secrets.directory)
    add_users(farm, {"rita": "release-manager"}, PASSWORDS)
    farm.init_repo()
    farm.start_all()
    yield farm
    farm.stop_all()


@pytest.fixture(scope="module")
def release(farm: LocalFarm) -> dict[str, Any]:
    farm.push_tag(TAG)
    return wait_release_of(farm, TAG, timeout=1200)


def triggered(farm: LocalFarm, release_build: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The builds the release triggered, by build id, as Buildbot records them (buildsets' parent)."""
    found = {}
    for buildset in farm.api(f"buildsets?parent_buildid={release_build['buildid']}")["buildsets"]:
        for request in farm.api(f"buildrequests?buildsetid={buildset['bsid']}")["buildrequests"]:
            for build in farm.api(f"buildrequests/{request['buildrequestid']}/builds?property=workername")["builds"]:
                found[build["buildid"]] = build
    return found


def test_each_platform_is_built_twice_and_the_release_records_which_builds_agreed(
        farm: LocalFarm, release: dict[str, Any]) -> None:
    assert release["results"] == 0, release["state_string"]
    meta = json.loads((farm.root / "releases" / TAG / "release.json").read_text())
    builds = triggered(farm, release)
    assert len(builds) == 4
    reproduced = meta["reproduced"]
    assert reproduced["builds_per_platform"] == 2
    for entry in meta["platforms"]:
        agreed = reproduced["platforms"][entry["name"]]["agreed"]
        assert len(agreed) == 2 and set(agreed) <= set(builds), (entry["name"], agreed, sorted(builds))
        assert reproduced["platforms"][entry["name"]]["sha256"] == entry["sha256"]
        identities = entry["builds"]
        assert [b["build_id"] for b in identities] == agreed
        assert [b["builder"] for b in identities] == [f"build-{entry['name']}", f"build-{entry['name']}-again"]
        for identity in identities:
            assert identity["worker"] == builds[identity["build_id"]]["properties"]["workername"][0]
            assert identity["commit"] == git("rev-parse", f"{TAG}^{{commit}}", cwd=farm.src)
        store = farm.master_dir / "artifacts" / TAG / entry["name"] / "builds"
        first, second = (store / str(i) / entry["archive"] for i in agreed)
        assert first.read_bytes() == second.read_bytes()
    linux = next(p for p in meta["platforms"] if p["name"] == "linux-x86_64")
    assert {b["worker"] for b in linux["builds"]} == {"local-linux-x86_64-1", "local-linux-x86_64-2"}
    windows = next(p for p in meta["platforms"] if p["name"] == "windows-x86_64-gnu")
    assert {b["worker"] for b in windows["builds"]} == {"local-windows-x86_64-gnu-1"}  # its only worker, twice
    compare = step_log(farm, release["buildid"], "compare builds")
    assert f"linux-x86_64: builds {linux['builds'][0]['build_id']}, {linux['builds'][1]['build_id']}" in compare


def test_released_windows_binaries_are_signed_on_the_master_and_verify(
        farm: LocalFarm, release: dict[str, Any], pki: SigningPKI, tmp_path: Path) -> None:
    assert release["results"] == 0, release["state_string"]
    folder = farm.root / "releases" / TAG
    with zipfile.ZipFile(folder / WINDOWS_ZIP) as zf:
        exes = [n for n in zf.namelist() if n.endswith(".exe")]
        zf.extractall(tmp_path)
    assert len(exes) == 8
    for name in exes:
        verified = osslsigncode_verify(tmp_path / name, pki.ca)
        assert verified.returncode == 0 and "Signature verification: ok" in verified.stdout, (name, verified.stdout)
    meta = json.loads((folder / "release.json").read_text())
    windows = next(p for p in meta["platforms"] if p["name"] == "windows-x86_64-gnu")
    for identity in windows["builds"]:
        signed = identity["authenticode"]
        assert sorted(signed["files"]) == sorted(exes) and signed["unsigned_sha256"] != windows["sha256"]
    assert windows["builds"][0]["authenticode"] == windows["builds"][1]["authenticode"]
    # the archive's checksum was made after signing
    assert (folder / f"{WINDOWS_ZIP}.sha256").read_text().split()[0] == windows["sha256"]
    # the worker never had the key: nothing of the secrets folder is in any worker folder
    key = (farm.secrets.directory / "authenticode-key.pem").read_bytes()
    for path in (farm.root / "workers").rglob("*"):
        if path.is_file() and path.stat().st_size < 4_000_000:
            assert key not in path.read_bytes(), path


def test_a_dry_run_of_the_same_tag_later_changes_nothing_published(farm: LocalFarm, release: dict[str, Any]) -> None:
    assert release["results"] == 0, release["state_string"]
    published = farm.root / "releases" / TAG
    before = {p.name: p.read_bytes() for p in published.iterdir()}
    forced = rpc(session(farm, "rita"), farm, "forceschedulers/release-dry-run", "force", tag=TAG, reason="dry run after the release")
    assert forced.status_code == 200, forced.text
    dry = farm.wait(lambda: next((b for b in release_builds(farm)[1:] if b["complete"]), None), 1200, "the dry run")
    assert dry["results"] == 0, dry["state_string"]
    assert {p.name: p.read_bytes() for p in published.iterdir()} == before
    stored = farm.master_dir / "artifacts" / TAG / "linux-x86_64" / "builds"
    assert len(list(stored.iterdir())) == 4  # the release's two builds and the dry run's two, side by side
    assert set(triggered(farm, dry)).isdisjoint(triggered(farm, release))


# ------------------------------------------------------------------------ a build that is not reproducible

NONCE_BUILD_RS = """use std::time::{SystemTime, UNIX_EPOCH};
fn main() {
    // Deliberately not reproducible: embeds the build's own clock.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    println!("cargo:rustc-env=VELO_BUILD_NONCE={}", now);
}
"""


def nonreproducible_example(folder: Path) -> Path:
    """A copy of examples/velostream-mini whose velo-sql embeds the time its build script ran."""
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("target"))
    (folder / "build.rs").write_text(NONCE_BUILD_RS, encoding="utf-8")
    main = folder / "src" / "bin" / "velo-sql.rs"
    text = main.read_text(encoding="utf-8")
    main.write_text(text.replace("fn main() {", 'fn main() {\n    if std::env::var_os("VELO_NONCE").is_some() {\n'
                                 '        println!("{}", env!("VELO_BUILD_NONCE"));\n    }', 1), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def unreproducible(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    need_host_toolchains()
    root = tmp_path_factory.mktemp("unreproducible")
    farm = write_farm(root / "farm", FARM_TOML, ["linux-x86_64"], release={"reproduce": 2})
    farm.init_repo(example=nonreproducible_example(root / "example"))
    farm.start_all()
    yield farm
    farm.stop_all()


def test_a_build_that_embeds_the_time_fails_the_release_with_the_report(unreproducible: LocalFarm) -> None:
    farm = unreproducible
    farm.push_tag(TAG)
    release = wait_release_of(farm, TAG, timeout=1200)
    assert release["results"] != 0
    assert "not reproducible: linux-x86_64" in release["state_string"], release["state_string"]
    report = step_log(farm, release["buildid"], "compare builds")
    assert "platform linux-x86_64 is not reproducible" in report
    assert "build-linux-x86_64 #1 (build " in report and "build-linux-x86_64-again #1 (build " in report
    assert f"first difference: {LINUX_TOP}/velo-sql: content differs" in report, report
    assert not (farm.root / "releases" / TAG).exists()
    reports = list((farm.master_dir / "artifacts" / TAG / "linux-x86_64" / "builds").glob("*/differs-from-*.txt"))
    assert len(reports) == 1 and "velo-sql: content differs" in reports[0].read_text()
    if shutil.which("diffoscope"):
        logs = farm.api(f"builds/{release['buildid']}/steps")["steps"]
        step = next(s for s in logs if s["name"] == "compare builds")
        names = [lg["name"] for lg in farm.api(f"steps/{step['stepid']}/logs")["logs"]]
        assert "diffoscope linux-x86_64" in names
