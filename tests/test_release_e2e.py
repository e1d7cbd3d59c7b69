"""End to end: a pushed tag becomes one verified release (real master, real workers, real cargo)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import FARM_TOML, need, need_host_toolchains
from support.farmtools import (
    all_step_logs,
    archive_names,
    quiet_for,
    release_builds,
    step_log,
    steps,
    tags_released,
    wait_release_of,
)

from velofarm.cli.localfarm import LocalFarm, free_port, git, write_farm
from velofarm.spec.farm import load_spec
from velofarm.tags.webhook import signature_of

pytestmark = pytest.mark.integration
TARGETS = {"linux-x86_64": "x86_64-unknown-linux-gnu", "windows-x86_64-gnu": "x86_64-pc-windows-gnu",
           "linux-arm64": "aarch64-unknown-linux-gnu"}
WEBHOOK_SECRET = "It's a Secret to Everybody"
# What a platform build is, step by step, as the REST API lists it: Buildbot's own worker_preparation,
# then factories.py's nine (it was twenty-one in all before issue 15).
PHASES = ["worker_preparation", "checkout tag", "send tools", "preflight", "cargo build", "smoke test", "size gate", "stage", "archive",
          "store artifact"]


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """Two linux-x86_64 workers (so a lost worker's build can move) and one windows-x86_64-gnu worker."""
    need_host_toolchains()
    root = tmp_path_factory.mktemp("e2e")
    farm = write_farm(root / "farm", FARM_TOML, list(TARGETS), workers_per_platform=1,
                      master={"webhook_port": free_port()})
    # A second worker for linux-x86_64: registered in farm.toml like any other.
    text = farm.spec_path.read_text()
    text = text.replace('[workers.local-linux-x86_64-1]', '[workers.local-linux-x86_64-2]\nplatforms = ["linux-x86_64"]\n'
                        'max_builds = 1\n\n[workers.local-linux-x86_64-1]')
    farm.spec_path.write_text(text)
    farm.workers["local-linux-x86_64-2"] = ["linux-x86_64"]
    farm.secrets.generate("worker-local-linux-x86_64-2")
    farm.secrets.put("webhook-secret", WEBHOOK_SECRET)
    farm.init_repo()
    farm.start_all()
    yield farm
    farm.stop_all()


@pytest.fixture(scope="module")
def v010(farm: LocalFarm) -> dict[str, Any]:
    farm.push_tag("v0.1.0")
    return wait_release_of(farm, "v0.1.0")


def test_pushed_tag_publishes_a_verified_release(farm: LocalFarm, v010: dict[str, Any], tmp_path: Path) -> None:
    assert v010["results"] == 0, v010["state_string"]
    release = farm.root / "releases" / "v0.1.0"
    names = sorted(p.name for p in release.iterdir())
    archives = [f"velostream-v0.1.0-{t}.{'zip' if 'windows' in t else 'tar.gz'}" for t in TARGETS.values()]
    trust = ["SHA256SUMS.minisig", "SHA256SUMS.sig", "velostream-v0.1.0.intoto.jsonl", "velostream-v0.1.0.cdx.json"]
    assert names == sorted(archives + [f"{a}.sha256" for a in archives] + trust +
                           ["RELEASE_NOTES.md", "SHA256SUMS", "release.json"])
    verify = subprocess.run([sys.executable, "-m", "velofarm.cli.main", "verify", str(release),
                             "--keys", str(farm.root / "keys")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for tool in (["sha256sum", "-c", "SHA256SUMS"], ["sha256sum", "-c", f"{archives[0]}.sha256"]):
        out = subprocess.run(tool, cwd=release, capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.count(": OK") >= 1, out.stdout + out.stderr
    meta = json.loads((release / "release.json").read_text())
    assert meta["prerelease"] is False and meta["tag"] == "v0.1.0"
    assert {p["name"] for p in meta["platforms"]} == set(TARGETS)
    notes = (release / "RELEASE_NOTES.md").read_text()
    assert all(t in notes for t in TARGETS.values()) and "musl" not in notes and "darwin" not in notes


def test_the_released_folder_verifies_with_the_real_tools(farm: LocalFarm, v010: dict[str, Any]) -> None:
    """Signed on the master from its own records: minisign, ssh-keygen, and the provenance's builds."""
    minisign, ssh_keygen = need("minisign", "minisign"), need("ssh-keygen", "openssh-client")
    release, keys = farm.root / "releases" / "v0.1.0", farm.root / "keys"
    out = subprocess.run([minisign, "-Vm", "SHA256SUMS", "-p", str(keys / "minisign.pub")], cwd=release,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "velostream v0.1.0" in out.stdout, out.stdout + out.stderr
    with open(release / "SHA256SUMS", "rb") as stdin:
        out = subprocess.run([ssh_keygen, "-Y", "verify", "-f", str(keys / "allowed_signers"), "-I",
                              "release@velofarm", "-n", "file@velofarm", "-s", str(release / "SHA256SUMS.sig")],
                             stdin=stdin, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    envelope = json.loads((release / "velostream-v0.1.0.intoto.jsonl").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == farm.url
    assert run["metadata"]["invocationId"].startswith(f"{farm.url}#/builders/")
    built = {b["annotations"]["platform"]: b["annotations"] for b in run["byproducts"]}
    assert set(built) == set(TARGETS)
    for platform, entry in built.items():
        build = farm.api(f"builders/build-{platform}/builds?order=-number&limit=1")["builds"][0]
        worker = farm.api(f"workers/{build['workerid']}")["workers"][0]["name"]
        assert entry["worker"] == worker and entry["invocationId"].endswith(f"/builds/{build['number']}")
    deps = {d.get("name"): d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["rustc linux-x86_64"]["annotations"]["rustc -vV"].startswith("rustc ")
    assert "host: " in deps["rustc windows-x86_64-gnu"]["annotations"]["rustc -vV"]
    lock = subprocess.run(["git", "show", "v0.1.0:Cargo.lock"], cwd=farm.src, capture_output=True, check=True).stdout
    assert deps["Cargo.lock"]["digest"]["sha256"] == hashlib.sha256(lock).hexdigest()
    notes = (release / "RELEASE_NOTES.md").read_text()
    assert "## Verify" in notes and (keys / "minisign.pub").read_text().splitlines()[1] in notes
    assert 'cmd /c "ssh-keygen -Y verify' in notes
    logs = all_step_logs(farm)  # the private keys never reach a step's output
    for name in ("signing-minisign.key", "signing-ssh.key", "signing-provenance.key"):
        secret_lines = [line for line in farm.secrets.path(name).read_text().splitlines()
                        if len(line) > 40 and "comment" not in line and "-----" not in line]
        assert secret_lines and not any(line in logs for line in secret_lines), name


def test_notes_open_with_the_changelog_computed_before_any_build(farm: LocalFarm, v010: dict[str, Any]) -> None:
    release = farm.root / "releases" / "v0.1.0"
    notes = (release / "RELEASE_NOTES.md").read_text()
    first = git("rev-parse", "--short", "v0.1.0^{commit}", cwd=farm.src)
    assert "## What's changed (first release)" in notes and f"- velostream-mini (`{first}`)" in notes
    assert "<release-url>" not in notes
    meta = json.loads((release / "release.json").read_text())
    assert f"- velostream-mini (`{first}`)" in meta["changelog"] and meta["previous_tag"] is None
    for asset in meta["assets"]:  # the directory publisher without base_url: next to the notes
        assert asset["url"] == asset["name"] and (release / asset["url"]).is_file()
    names = [s["name"] for s in steps(farm, v010["buildid"])]
    assert names.index("resolve tag") < names.index("changelog") < names.index("build platforms")
    assert f"- velostream-mini (`{first}`)" in step_log(farm, v010["buildid"], "changelog")


def test_plan_shows_which_workers_are_connected(farm: LocalFarm, v010: dict[str, Any]) -> None:
    out = subprocess.run([sys.executable, "-m", "velofarm.cli.main", "plan", "v0.1.0", "--spec", str(farm.spec_path),
                          "--repo", str(farm.remote)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("    ")}
    assert set(lines) == set(TARGETS)
    assert "local-linux-x86_64-1 (connected)" in lines["linux-x86_64"]
    assert "local-linux-x86_64-2 (connected)" in lines["linux-x86_64"]
    assert "velostream-v0.1.0-x86_64-pc-windows-gnu.zip" in lines["windows-x86_64-gnu"]
    assert "connections unknown" not in out.stdout


def test_archives_hold_the_binaries_and_every_declared_file(farm: LocalFarm, v010: dict[str, Any],
                                                            tmp_path: Path) -> None:
    release = farm.root / "releases" / "v0.1.0"
    tar_path = release / "velostream-v0.1.0-x86_64-unknown-linux-gnu.tar.gz"
    top = "velostream-v0.1.0-x86_64-unknown-linux-gnu"
    names = archive_names(tar_path)
    assert {n.split("/")[0] for n in names} == {top}
    assert names == sorted(names)
    for wanted in ("velo-sql", "velo-cli", "configs/velostream.yaml", "LICENSE", "README.md",
                   "docs/user-guides/INSTALL.md", "demo/1brc/measurements.txt"):
        assert f"{top}/{wanted}" in names, wanted
    with tarfile.open(tar_path) as tf:
        member = tf.getmember(f"{top}/velo-sql")
        assert (member.mode, member.uid, member.gid) == (0o755, 0, 0)
        assert tf.getmember(f"{top}/LICENSE").mode == 0o644
        tf.extractall(tmp_path, filter="tar")
    out = subprocess.run([str(tmp_path / top / "velo-sql"), "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == "velo-sql 0.1.0"
    zip_path = release / "velostream-v0.1.0-x86_64-pc-windows-gnu.zip"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp_path / "win")
    exe = tmp_path / "win" / "velostream-v0.1.0-x86_64-pc-windows-gnu" / "velo-sql.exe"
    out = subprocess.run(["/usr/lib/wine/wine64", str(exe), "--version"], capture_output=True, text=True,
                         env={"WINEDEBUG": "-all", "HOME": str(Path.home()), "PATH": "/usr/bin:/bin"})
    assert "velo-sql 0.1.0" in out.stdout


def test_each_platform_build_shows_its_steps_and_smoke_output(farm: LocalFarm, v010: dict[str, Any]) -> None:
    release = farm.api(f"builds/{v010['buildid']}?property=tag_commit")["builds"][0]
    tag_commit = release["properties"]["tag_commit"][0]
    assert tag_commit == git("rev-parse", "v0.1.0^{commit}", cwd=farm.src)
    for platform in TARGETS:
        build = farm.api(f"builders/build-{platform}/builds?order=-number&limit=1&property=got_revision")["builds"][0]
        assert build["properties"]["got_revision"][0] == tag_commit  # every platform built the resolved commit
        names = [s["name"] for s in steps(farm, build["buildid"])]
        assert names == PHASES, (platform, names)
        smoke = step_log(farm, build["buildid"], "smoke test")
        assert "velo-sql 0.1.0" in smoke and "velo-cli 0.1.0" in smoke
        assert "velo-schema-generator" in smoke  # listed as not run
        stored = farm.master_dir / "artifacts" / "v0.1.0" / platform / "builds" / str(build["buildid"])
        assert json.loads((stored / "build.json").read_text())["commit"] == tag_commit  # bound to its build
        assert [p.name for p in stored.iterdir() if p.name.startswith("velostream-v0.1.0-")]
    assert not [p for p in (farm.master_dir / "artifacts" / "v0.1.0").iterdir() if p.name.startswith(".")]


def test_a_platform_build_is_ten_steps_and_each_summary_names_its_outcome(farm: LocalFarm,
                                                                         v010: dict[str, Any]) -> None:
    epoch = int(git("log", "-1", "--format=%ct", "v0.1.0^{commit}", cwd=farm.src))
    project = load_spec(farm.spec_path).project
    count, ran = len(project.binaries), sum(1 for b in project.binaries if b.smoke)
    for platform, target in TARGETS.items():
        build = farm.api(f"builders/build-{platform}/builds?order=-number&limit=1&property=source_date_epoch"
                         "&property=build_env")["builds"][0]
        found = steps(farm, build["buildid"])
        assert [s["name"] for s in found] == PHASES and len(found) == 10, (platform, len(found))
        assert all(s["results"] == 0 for s in found), [(s["name"], s["state_string"]) for s in found]
        summary = {s["name"]: s["state_string"] for s in found}
        assert summary["send tools"].startswith("sent 5 tools and the job (")
        assert summary["preflight"].startswith("version 0.1.0 = tag v0.1.0; toolchain ok (rustc ")
        assert f"; commit time {datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}; " \
               "build env (" in summary["preflight"]
        assert summary["cargo build"] == f"built {target} (cargo, release)"
        assert summary["smoke test"].startswith(f"smoke: {ran} binaries print 0.1.0, {count - ran} not run")
        assert summary["size gate"].startswith(f"{count} binaries, largest ")
        assert summary["stage"].startswith(f"staged {count} binaries and {len(project.ship)} ship entries (")
        assert summary["archive"].startswith(f"velostream-v0.1.0-{target}.")
        stored = farm.master_dir / "artifacts" / "v0.1.0" / platform / "builds" / str(build["buildid"])
        digest = next(stored.glob("*.sha256")).read_text().split()[0]
        assert summary["store artifact"].startswith("stored (") and f"sha256 {digest[:8]}… checked" in summary["store artifact"]
        # the one preflight call set what the old tag-time and build-environment steps set
        assert build["properties"]["source_date_epoch"][0] == epoch
        assert build["properties"]["build_env"][0]["SOURCE_DATE_EPOCH"] == str(epoch)
        log = step_log(farm, build["buildid"], "preflight")
        # the REST API's log lines start with their stream: "o" for stdout
        assert [line[1:] for line in log.splitlines() if line.startswith("o== ")] == [
            "== version", "== toolchain", "== commit time", "== build environment"]


def test_tags_that_are_not_releases_start_nothing(farm: LocalFarm, v010: dict[str, Any]) -> None:
    before = len(release_builds(farm))
    farm.push_tag("nightly")
    farm.push_tag("v1.2")
    assert quiet_for(farm, 4) == before
    log = (farm.master_dir / "twistd.log").read_text()
    assert "tag 'nightly' does not match the release pattern" in log
    assert "tag 'v1.2' does not match the release pattern" in log


def test_the_same_tag_arriving_twice_builds_once(farm: LocalFarm, v010: dict[str, Any]) -> None:
    before = len(release_builds(farm))
    sha = git("rev-parse", "v0.1.0", cwd=farm.src)
    hook = farm.remote / "hooks" / "post-receive"
    subprocess.run([str(hook)], input=f"{'0' * 40} {sha} refs/tags/v0.1.0\n", text=True, check=True)
    assert quiet_for(farm, 3) == before
    assert tags_released(farm).count("v0.1.0") == 1


def test_prerelease_tag_is_marked_prerelease(farm: LocalFarm, v010: dict[str, Any]) -> None:
    farm.set_version("0.2.0-rc.1")
    farm.push_tag("v0.2.0-rc.1")
    build = wait_release_of(farm, "v0.2.0-rc.1")
    assert build["results"] == 0, build["state_string"]
    meta = json.loads((farm.root / "releases" / "v0.2.0-rc.1" / "release.json").read_text())
    assert meta["prerelease"] is True


def test_a_failing_platform_fails_the_release_and_publishes_nothing(farm: LocalFarm, v010: dict[str, Any]) -> None:
    farm.push_tag("v0.3.0")  # Cargo.toml still says 0.2.0-rc.1 (or 0.1.0): the preflight's version check fails
    build = wait_release_of(farm, "v0.3.0")
    assert build["results"] == 2  # FAILURE
    assert "platform failed" in build["state_string"]
    assert "linux-x86_64" in build["state_string"] and "windows-x86_64-gnu" in build["state_string"]
    failed_log = step_log(farm, build["buildid"], "build platforms")
    assert "build-linux-x86_64 #" in failed_log and "/#/builders/" in failed_log
    assert not (farm.root / "releases" / "v0.3.0").exists()
    platform = farm.api("builders/build-linux-x86_64/builds?order=-number&limit=1")["builds"][0]
    version_log = step_log(farm, platform["buildid"], "preflight")
    assert "v0.3.0" in version_log and "0.3.0" in version_log and "linux-x86_64" in version_log
    preflight = next(s for s in steps(farm, platform["buildid"]) if s["name"] == "preflight")
    assert preflight["state_string"].startswith("tag v0.3.0 expects version 0.3.0 but Cargo.toml has version ")
    assert "== toolchain" not in version_log  # it stopped at the failed check


def _deliver(farm: LocalFarm, event: str, payload: dict[str, Any], signature: str | None) -> int:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4())}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    port = farm.spec_path.read_text().split("webhook_port = ")[1].split("\n")[0]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _push_payload(farm: LocalFarm, tag: str, sha: str, deleted: bool = False) -> dict[str, Any]:
    return {"ref": f"refs/tags/{tag}", "created": not deleted, "deleted": deleted,
            "after": "0" * 40 if deleted else sha, "head_commit": None if deleted else {"id": sha},
            "repository": {"clone_url": str(farm.remote)}, "sender": {"login": "ops"}}


def test_webhook_needs_a_valid_signature_and_ignores_deletions(farm: LocalFarm, v010: dict[str, Any]) -> None:
    farm.set_version("0.4.0")
    hook = farm.remote / "hooks" / "post-receive"
    hook.chmod(0o644)  # this tag reaches the master only through the webhook
    try:
        farm.push_tag("v0.4.0")
    finally:
        hook.chmod(0o755)
    before = len(release_builds(farm))
    sha = git("rev-parse", "v0.4.0", cwd=farm.src)
    payload = _push_payload(farm, "v0.4.0", sha)
    body = json.dumps(payload).encode()
    assert _deliver(farm, "push", payload, None) == 401
    assert _deliver(farm, "push", payload, "sha256=" + "0" * 64) == 403
    assert _deliver(farm, "push", payload, "sha256=" + signature_of("wrong secret", body)) == 403
    deletion = _push_payload(farm, "v0.5.0", sha, deleted=True)
    assert _deliver(farm, "push", deletion, "sha256=" + signature_of(WEBHOOK_SECRET, json.dumps(deletion).encode())) == 200
    assert quiet_for(farm, 2) == before
    assert _deliver(farm, "push", payload, "sha256=" + signature_of(WEBHOOK_SECRET, body)) == 202
    create = {"ref": "v0.4.0", "ref_type": "tag", "repository": {"clone_url": str(farm.remote)},
              "sender": {"login": "ops"}}
    assert _deliver(farm, "create", create, "sha256=" + signature_of(WEBHOOK_SECRET, json.dumps(create).encode())) == 202
    build = wait_release_of(farm, "v0.4.0")
    assert build["results"] == 0, build["state_string"]
    assert tags_released(farm).count("v0.4.0") == 1  # push and create: one release


def test_a_worker_killed_mid_build_is_retried_and_the_release_completes_once(farm: LocalFarm,
                                                                             v010: dict[str, Any]) -> None:
    farm.set_version("0.6.0")
    farm.push_tag("v0.6.0")

    def running_linux_build() -> dict[str, Any] | None:
        builds = farm.api("builders/build-linux-x86_64/builds?order=-number&limit=1&property=tag")["builds"]
        if not builds or builds[0]["properties"].get("tag", [None])[0] != "v0.6.0" or builds[0]["complete"]:
            return None
        # Kill it while cargo runs: mid-build, not during Buildbot's own worker preparation.
        running = [s for s in steps(farm, builds[0]["buildid"]) if s["started_at"] and not s["complete"]]
        return dict(builds[0]) if running and running[0]["name"] == "cargo build" else None

    build = farm.wait(running_linux_build, 120, "the linux build of v0.6.0 to reach cargo", every=0.05)
    worker = next(w["name"] for w in farm.api("workers")["workers"] if w["workerid"] == build["workerid"])
    farm.kill_worker(worker)
    try:
        release = wait_release_of(farm, "v0.6.0")
        assert release["results"] == 0, release["state_string"]
        linux = [b for b in farm.api("builders/build-linux-x86_64/builds?property=tag")["builds"]
                 if b["properties"].get("tag", [None])[0] == "v0.6.0"]
        assert [b["results"] for b in linux] == [5, 0]  # RETRY, then SUCCESS on the other worker
        assert linux[0]["workerid"] != linux[1]["workerid"]
        assert tags_released(farm).count("v0.6.0") == 1
        assert (farm.root / "releases" / "v0.6.0" / "release.json").exists()
    finally:
        farm.start_worker(worker)


def test_release_is_byte_identical_from_another_farm(farm: LocalFarm, v010: dict[str, Any],
                                                     tmp_path: Path) -> None:
    """Same tag, a second master with workers in other folders: the same archive bytes."""
    other = write_farm(tmp_path / "other", FARM_TOML, list(TARGETS))
    other.init_repo()
    try:
        other.start_all()
        other.push_tag("v0.1.0")
        build = wait_release_of(other, "v0.1.0")
        assert build["results"] == 0, build["state_string"]
        ours, theirs = farm.root / "releases" / "v0.1.0", other.root / "releases" / "v0.1.0"
        # The archives (and so their SHA256SUMS lines) are the same; the provenance is not: another
        # farm, its own keys, its own build URLs and times.
        def archive_lines(folder: Path) -> list[str]:
            return [line for line in (folder / "SHA256SUMS").read_text().splitlines()
                    if line.endswith((".tar.gz", ".zip"))]
        assert archive_lines(ours) == archive_lines(theirs) and len(archive_lines(ours)) == len(TARGETS)
        assert (ours / "velostream-v0.1.0.cdx.json").read_bytes() == (theirs / "velostream-v0.1.0.cdx.json").read_bytes()
        for path in [*ours.glob("velostream-*.tar.gz"), *ours.glob("velostream-*.zip")]:
            assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256((theirs / path.name).read_bytes()).digest()
    finally:
        other.stop_all()
