"""GitHubPublisher against a stateful GitHub stand-in (real HTTP, every exchange validated)."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support.github_records import StoredAsset
from support.github_standin import TOKEN, GitHubStandIn

from velofarm.errors import PublishError
from velofarm.publish.github import GitHubPublisher, PublishOutcome
from velofarm.release.model import SUMS_FILE, Asset, Release
from velofarm.tags.semver import parse_tag

REPO = "acme/velostream"
PLATFORMS = {"x86_64-unknown-linux-gnu": (".tar.gz", 300_000), "x86_64-pc-windows-msvc": (".zip", 200_000)}


def make_release(root: Path, tag: str = "v1.0.0", big: int = 0) -> Release:
    """A release directory: two archives of random bytes, their .sha256 files and SHA256SUMS."""
    folder = root / tag
    folder.mkdir(parents=True)
    rng = random.Random(tag)
    files: list[Path] = []
    for target, (suffix, size) in PLATFORMS.items():
        archive = folder / f"velostream-{tag}-{target}{suffix}"
        with open(archive, "wb") as fh:  # written a MiB at a time: `big` archives are 64 MiB
            total = big or size
            fh.writelines(rng.randbytes(min(total, 1 << 20)) for _ in range(max(total >> 20, 1)))
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        (folder / f"{archive.name}.sha256").write_text(f"{digest}  {archive.name}\n")
        files += [archive, folder / f"{archive.name}.sha256"]
    sums = "".join((folder / f"{f.name}.sha256").read_text() for f in files if not f.name.endswith(".sha256"))
    (folder / SUMS_FILE).write_text(sums)
    assets = tuple(Asset(f.name, f, f.stat().st_size, hashlib.sha256(f.read_bytes()).hexdigest())
                   for f in [*files, folder / SUMS_FILE])
    version = parse_tag(tag)
    assert version is not None
    return Release(folder, "velostream", tag, version.version, "c0ffee" * 6 + "abcd", f"velostream {tag}",
                   f"Release notes for {tag}.", version.prerelease, tuple(PLATFORMS), assets)


def expected_state(release: Release) -> list[dict[str, Any]]:
    return [{"tag": release.tag, "name": release.title, "body": release.notes, "draft": False,
             "prerelease": release.prerelease,
             "assets": sorted((a.name, a.size, f"sha256:{a.sha256}", "uploaded", a.content_type)
                              for a in release.assets)}]


class Recorder:
    """The injectable sleep: records each wait (and when it was asked for) without waiting."""

    def __init__(self) -> None:
        self.waits: list[tuple[float, float]] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append((time.time(), seconds))


@pytest.fixture
def release(tmp_path: Path) -> Release:
    return make_release(tmp_path)


@pytest.fixture
def gh(release: Release) -> Any:
    with GitHubStandIn(REPO) as standin:
        standin.expect(release.tag, {a.name: (a.size, a.sha256) for a in release.assets})
        yield standin
    assert standin.validation_errors == []
    assert standin.incomplete_publishes == []


def publisher(gh: GitHubStandIn, logs: list[str] | None = None, sleep: Any = None,
              token: str = TOKEN, log: Any = None, **kw: Any) -> GitHubPublisher:
    """A publisher for tests: no real waits, 64 KiB chunks so small files take several."""
    log = log or (logs if logs is not None else []).append
    return GitHubPublisher(REPO, token, gh.api_url, log=log, sleep=sleep or Recorder(),
                           min_write_interval=0, chunk_size=64 * 1024, **kw)


def check_clean(gh: GitHubStandIn, release: Release, out: PublishOutcome) -> None:
    assert out.state == "published"
    assert gh.snapshot() == expected_state(release)
    assert [p["tag"] for p in gh.publishes] == [release.tag]
    assert gh.validation_errors == [] and gh.incomplete_publishes == []


def test_clean_run_creates_uploads_verifies_and_publishes(gh: GitHubStandIn, release: Release) -> None:
    logs: list[str] = []
    out = publisher(gh, logs).publish(release)
    check_clean(gh, release, out)
    assert out.draft == "created" and out.uploaded == [a.name for a in release.assets]
    assert out.make_latest == "true" and gh.publishes[0]["make_latest"] == "true"
    create = next(s for s in gh.requests if s.kind == "create")
    assert create.body == {"tag_name": "v1.0.0", "target_commitish": release.commit, "name": "velostream v1.0.0",
                           "body": release.notes,
                           "draft": True, "prerelease": False}
    uploads = [s for s in gh.requests if s.kind == "upload"]
    assert [s.query for s in uploads] == [{"name": a.name} for a in release.assets]
    assert out.location.endswith("/releases/tag/v1.0.0")


WRITE_KINDS = ("create", "upload", "delete", "patch")
FAULTS = [(kind, status, after) for kind in ("list", "list_assets", "get_release", *WRITE_KINDS)
          for status in ("500", "502") for after in ((False, True) if kind in WRITE_KINDS else (False,))]
FAULTS += [("upload", "drop", False), ("upload", "drop", True), ("create", "drop", False),
           ("create", "drop", True), ("patch", "drop", True), ("delete", "drop", True),
           ("list", "drop", False),
           ("upload", "corrupt", False), ("any", "429", False)]
FAULTS += [(kind, limit, False) for kind in ("list", "create", "upload", "patch")
           for limit in ("secondary", "primary")]


@pytest.mark.parametrize("kind,action,after", FAULTS)
def test_every_fault_ends_like_a_clean_run(gh: GitHubStandIn, release: Release, kind: str, action: str,
                                           after: bool) -> None:
    if kind == "delete":  # a broken upload left on the draft by an earlier run gives a delete to fail
        gh.add_release(release.tag, draft=True, name=release.title)
        gh.releases[-1].body = release.notes
        gh.releases[-1].assets.append(StoredAsset(99, release.assets[0].name, "application/gzip", size=7))
    fault = gh.faults.add(kind, action, after=after)
    out = publisher(gh).publish(release)
    check_clean(gh, release, out)
    assert fault.fired == 1, "the fault never met a request"


CLEAN_RUN_REQUESTS = 12  # list, create, list assets, 5 uploads, list assets, publish, confirm


class Killed(BaseException):
    """The process dies: not an error the publisher could catch."""


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("stop_at", range(CLEAN_RUN_REQUESTS + 1))
def test_killed_at_any_request_a_rerun_finishes_without_duplicates(gh: GitHubStandIn, release: Release,
                                                                   stop_at: int, when: str) -> None:
    pub = publisher(gh)
    send, sent = pub.http._send, []

    def dying_send(*args: Any) -> Any:  # dies before the request leaves, or after GitHub acted on it
        if len(sent) == stop_at and when == "before":
            raise Killed
        sent.append(send(*args))
        if len(sent) == stop_at + 1 and when == "after":
            raise Killed
        return sent[-1]

    pub.http._send = dying_send  # type: ignore[method-assign]
    try:
        pub.publish(release)
    except Killed:
        pass
    assert not any(p["assets"] != gh.expected[release.tag] for p in gh.publishes)
    out = publisher(gh).publish(release)
    assert gh.snapshot() == expected_state(release)
    assert len(gh.publishes) == 1 and gh.incomplete_publishes == []
    assert out.state == ("already-published" if len(sent) >= CLEAN_RUN_REQUESTS - 2 else "published")


def test_cut_off_after_one_upload_resumes(gh: GitHubStandIn, release: Release) -> None:
    gh.faults.add("upload", "403", skip=1)
    with pytest.raises(PublishError, match="403"):
        publisher(gh).publish(release)
    assert gh.publishes == [] and gh.releases[0].draft
    out = publisher(gh).publish(release)
    check_clean(gh, release, out)
    assert out.draft == "reused" and out.skipped == [release.assets[0].name]
    assert [s.kind for s in gh.requests].count("create") == 1


def test_retry_budget_exhausted_leaves_a_draft_that_a_rerun_completes(gh: GitHubStandIn,
                                                                      release: Release) -> None:
    gh.faults.add("upload", "502", times=1000)
    with pytest.raises(PublishError, match="failed 3 times.*re-run"):
        publisher(gh, write_attempts=3).publish(release)
    assert gh.publishes == [] and len(gh.releases) == 1
    gh.faults.queue.clear()
    check_clean(gh, release, publisher(gh).publish(release))


def test_reads_give_up_after_max_retries(gh: GitHubStandIn, release: Release) -> None:
    gh.faults.add("list", "500", times=1000)
    with pytest.raises(PublishError, match="giving up after 3 attempts"):
        publisher(gh, max_retries=2).publish(release)
    assert len(gh.requests) == 3 and gh.releases == []


def test_rerun_of_a_published_release_changes_nothing(gh: GitHubStandIn, release: Release) -> None:
    publisher(gh).publish(release)
    before = len(gh.writes())
    logs: list[str] = []
    out = publisher(gh, logs).publish(release)
    assert out.state == "already-published" and len(gh.writes()) == before
    assert any("nothing changed" in line for line in logs)


def test_published_release_with_a_different_asset_is_refused_untouched(release: Release) -> None:
    with GitHubStandIn(REPO, immutable=True) as gh:
        publisher(gh).publish(release)
        gh.releases[0].assets[2].digest = "sha256:" + "0" * 64
        before = (len(gh.writes()), gh.snapshot())
        with pytest.raises(PublishError) as err:
            publisher(gh).publish(release)
        assert release.assets[2].name in str(err.value) and "already published" in str(err.value)
        assert release.assets[0].name not in str(err.value)
        assert (len(gh.writes()), gh.snapshot()) == before
        assert gh.releases[0].immutable and gh.validation_errors == []


def test_two_drafts_for_the_tag_are_reported_by_id(gh: GitHubStandIn, release: Release) -> None:
    ids = [gh.add_release(release.tag, draft=True) for _ in range(2)]
    with pytest.raises(PublishError) as err:
        publisher(gh).publish(release)
    assert all(str(i) in str(err.value) for i in ids) and "delete" in str(err.value)
    assert gh.writes() == []


@pytest.mark.parametrize("how", ["wrong-token", "401", "403"])
def test_refused_token_stops_at_once_without_leaking_it(gh: GitHubStandIn, release: Release,
                                                        how: str) -> None:
    logs: list[str] = []
    if how == "wrong-token":
        pub = publisher(gh, logs, token="ghp_wrongTOKENvalue42")
    else:
        gh.faults.add("create", how)
        pub = publisher(gh, logs)
    with pytest.raises(PublishError) as err:
        pub.publish(release)
    message = str(err.value)
    assert "refused the token" in message and "github-token" in message and REPO in message
    assert len(gh.requests) == (1 if how == "wrong-token" else 2)  # no retries
    for secret in (TOKEN, "ghp_wrongTOKENvalue42"):
        assert secret not in message and secret not in repr(pub) and secret not in repr(pub.http)
        assert not any(secret in line for line in logs)


def test_unknown_repository_is_named(gh: GitHubStandIn, release: Release) -> None:
    pub = GitHubPublisher("acme/typo", TOKEN, gh.api_url, log=lambda line: None, sleep=Recorder())
    with pytest.raises(PublishError, match="acme/typo: repository not found"):
        pub.publish(release)


def test_prerelease_is_never_latest(tmp_path: Path) -> None:
    rc = make_release(tmp_path, "v0.2.0-rc.1")
    with GitHubStandIn(REPO) as gh:
        out = publisher(gh).publish(rc)
        check_clean(gh, rc, out)
        assert gh.snapshot()[0]["prerelease"] is True
        assert gh.publishes[0]["make_latest"] == "false" and gh.latest_id is None


@pytest.mark.parametrize("tag,latest", [("v1.0.5", "false"), ("v1.2.0", "true")])
def test_make_latest_follows_semver_not_publish_order(tmp_path: Path, tag: str, latest: str) -> None:
    rel = make_release(tmp_path, tag)
    with GitHubStandIn(REPO, max_per_page=2) as gh:
        for other in ("v1.1.0", "v0.9.0", "v3.0.0-beta.1", "nightly"):
            gh.add_release(other, prerelease="-" in other)
        out = publisher(gh).publish(rel)
        assert out.make_latest == latest and gh.publishes[-1]["make_latest"] == latest
        assert any(s.query.get("page") == "2" for s in gh.requests if s.kind == "list")  # paged
        assert gh.validation_errors == []


def test_stale_draft_is_resumed_fixed_and_cleaned(gh: GitHubStandIn, release: Release) -> None:
    gh.add_release(release.tag, draft=True, name="old title", assets={"leftover.tar.gz": b"x" * 10})
    out = publisher(gh).publish(release)
    check_clean(gh, release, out)
    assert out.draft == "reused" and out.removed == ["leftover.tar.gz"]
    patch = next(s for s in gh.requests if s.kind == "patch")
    assert patch.body == {"name": release.title, "body": release.notes}


def test_enterprise_base_urls(release: Release) -> None:
    with GitHubStandIn(REPO, api_prefix="/api/v3", uploads_prefix="/api/uploads") as gh:
        check_clean(gh, release, publisher(gh).publish(release))
        assert gh.api_url.endswith("/api/v3")


def test_waits_honour_retry_after_and_the_primary_reset(gh: GitHubStandIn, release: Release) -> None:
    secondary = gh.faults.add("upload", "secondary")
    primary = gh.faults.add("list", "primary")
    sleep = Recorder()
    publisher(gh, sleep=sleep).publish(release)
    reset = float(primary.answers[0]["headers"]["x-ratelimit-reset"])
    assert any(at + wait >= reset for at, wait in sleep.waits), "did not wait until x-ratelimit-reset"
    assert any(wait >= float(secondary.answers[0]["headers"]["retry-after"]) for _, wait in sleep.waits)
    assert len(sleep.waits) == 2


def test_writes_are_spaced(gh: GitHubStandIn, release: Release) -> None:
    GitHubPublisher(REPO, TOKEN, gh.api_url, log=lambda line: None, min_write_interval=0.3).publish(release)
    times = [s.at for s in gh.writes()]
    assert len(times) == 2 + len(release.assets)
    # Spaced at sending; the stand-in stamps arrival, which a loaded machine may delay by tens of
    # milliseconds. Unspaced writes arrive a few milliseconds apart.
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.2


def test_upload_streams_from_disk(tmp_path: Path) -> None:
    rel = make_release(tmp_path, "v2.0.0", big=64 << 20)
    with GitHubStandIn(REPO) as gh:
        pub = GitHubPublisher(REPO, TOKEN, gh.api_url, log=lambda line: None, min_write_interval=0)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out = pub.publish(rel)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        check_clean(gh, rel, out)
        print(f"publishing 2 x 64 MiB: traced peak {peak / 2**20:.1f} MiB")
        assert peak < 8 << 20, f"publishing 2 x 64 MiB peaked at {peak / 2**20:.1f} MiB"


def test_standin_rejects_requests_the_description_forbids(gh: GitHubStandIn, release: Release) -> None:
    request = urllib.request.Request(
        f"{gh.api_url}/repos/{REPO}/releases", method="POST", data=json.dumps({"tag_name": "v9.9.9",
                                                                              "make_latest": True}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "t", "Content-Type": "application/json",
                 "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 400 and "make_latest" in gh.validation_errors[0] and gh.releases == []
    gh.validation_errors.clear()
