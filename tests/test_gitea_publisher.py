"""GiteaPublisher against a stateful Gitea stand-in (real HTTP, every exchange validated against the
carried Swagger description, and the official one when VELOFARM_GITEA_SWAGGER names it)."""

from __future__ import annotations

import json
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support.gitea_standin import MAIN_SHA, TOKEN, GiteaStandIn
from test_github_publisher import make_release

from velofarm.errors import PublishError
from velofarm.publish.gitea import GiteaPublisher
from velofarm.publish.github import PublishOutcome
from velofarm.release.model import Release

REPO = "acme/velostream"


def expected_state(release: Release) -> list[dict[str, Any]]:
    return [{"tag": release.tag, "name": release.title, "body": release.notes, "draft": False,
             "prerelease": release.prerelease, "target": release.commit, "tag_commit": release.commit,
             "assets": sorted((a.name, a.size, a.sha256) for a in release.assets)}]


class Recorder:
    """The injectable sleep: records each wait without waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def release(tmp_path: Path) -> Release:
    return make_release(tmp_path)


@pytest.fixture
def gitea(release: Release) -> Any:
    with GiteaStandIn(REPO) as standin:
        standin.expect(release.tag, {a.name: (a.size, a.sha256) for a in release.assets})
        yield standin
    assert standin.validation_errors == []
    assert standin.incomplete_publishes == []


def publisher(gitea: GiteaStandIn, logs: list[str] | None = None, token: str = TOKEN, **kw: Any) -> GiteaPublisher:
    """A publisher for tests: no real waits, 64 KiB chunks so small files take several."""
    log = (logs if logs is not None else []).append
    return GiteaPublisher(gitea.url, REPO, token, log=log, sleep=kw.pop("sleep", Recorder()),
                          min_write_interval=0, chunk_size=64 * 1024, **kw)


def check_clean(gitea: GiteaStandIn, release: Release, out: PublishOutcome) -> None:
    assert out.state == "published"
    assert gitea.snapshot() == expected_state(release)
    assert [p["tag"] for p in gitea.publishes] == [release.tag]
    assert gitea.validation_errors == [] and gitea.incomplete_publishes == []


def test_clean_run_creates_a_pinned_draft_uploads_verifies_and_publishes(gitea: GiteaStandIn,
                                                                         release: Release) -> None:
    out = publisher(gitea).publish(release)
    check_clean(gitea, release, out)
    assert out.draft == "created" and out.uploaded == [a.name for a in release.assets]
    create = next(s for s in gitea.requests if s.kind == "create")
    assert create.body == {"tag_name": "v1.0.0", "target_commitish": release.commit, "name": "velostream v1.0.0",
                           "body": release.notes, "draft": True, "prerelease": False}
    uploads = [s for s in gitea.requests if s.kind == "upload"]
    assert [s.query for s in uploads] == [{"name": [a.name]} for a in release.assets]
    # every attachment was downloaded back (Gitea reports no digest), once each
    assert len([s for s in gitea.requests if s.kind == "download"]) == len(release.assets)
    # the tag did not exist until the publishing PATCH created it, at the release's commit
    tag_reads = [s.status for s in gitea.requests if s.kind == "git_tag"]
    assert tag_reads == [404, 200]
    assert out.location == f"{gitea.url}/{REPO}/releases/tag/v1.0.0"
    assert gitea.latest() == "v1.0.0" and "latest release" in out.actions[-1]


WRITE_KINDS = ("create", "upload", "delete", "patch")
FAULTS = [(kind, status, after) for kind in ("repo", "get_tag", "git_tag", "list", "list_assets", "get_release",
                                             "download", *WRITE_KINDS)
          for status in ("500", "502") for after in ((False, True) if kind in WRITE_KINDS else (False,))]
FAULTS += [("upload", "drop", False), ("upload", "drop", True), ("create", "drop", False),
           ("create", "drop", True), ("patch", "drop", True), ("delete", "drop", True),
           ("list", "drop", False), ("download", "drop", False), ("download", "drop", True), ("list_assets", "drop", False),
           ("upload", "corrupt", False), ("upload", "truncate", False), ("any", "429", False)]


@pytest.mark.parametrize("kind,action,after", FAULTS)
def test_every_fault_ends_like_a_clean_run(gitea: GiteaStandIn, release: Release, kind: str, action: str,
                                           after: bool) -> None:
    if kind == "delete":  # a leftover on the draft from an earlier run gives a delete to fail
        gitea.add_release(release.tag, draft=True, name=release.title, body=release.notes, target=release.commit,
                           assets={release.assets[0].name: b"partial"})
    fault = gitea.faults.add(kind, action, after=after)
    out = publisher(gitea).publish(release)
    check_clean(gitea, release, out)
    assert fault.fired == 1, "the fault never met a request"
    if kind in ("download", "list", "get_tag", "git_tag", "repo"):  # a failed read costs no upload
        assert [s.kind for s in gitea.requests].count("upload") == len(release.assets)


# repo, release by tag, git tag, create, list assets, 5 x (upload, download), list assets, list releases,
# publish, confirm, git tag
CLEAN_RUN_REQUESTS = 20


class Killed(BaseException):
    """The process dies: not an error the publisher could catch."""


def test_clean_run_request_count(gitea: GiteaStandIn, release: Release) -> None:
    publisher(gitea).publish(release)
    assert len(gitea.requests) == CLEAN_RUN_REQUESTS


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("stop_at", range(CLEAN_RUN_REQUESTS + 1))
def test_killed_at_any_request_a_rerun_finishes_without_duplicates(gitea: GiteaStandIn, release: Release,
                                                                   stop_at: int, when: str) -> None:
    pub = publisher(gitea)
    send, sent = pub.http._send, []

    def dying_send(*args: Any) -> Any:  # dies before the request leaves, or after Gitea acted on it
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
    assert not any(p["assets"] != gitea.expected[release.tag] for p in gitea.publishes)
    out = publisher(gitea).publish(release)
    assert gitea.snapshot() == expected_state(release)
    assert len(gitea.publishes) == 1 and gitea.incomplete_publishes == []
    assert out.state == ("already-published" if len(sent) >= CLEAN_RUN_REQUESTS - 2 else "published")


def test_cut_off_after_one_upload_resumes(gitea: GiteaStandIn, release: Release) -> None:
    gitea.faults.add("upload", "403", skip=1)
    with pytest.raises(PublishError, match="403"):
        publisher(gitea).publish(release)
    assert gitea.publishes == [] and gitea.releases[0].draft and gitea.tags == {}
    out = publisher(gitea).publish(release)
    check_clean(gitea, release, out)
    assert out.draft == "reused" and out.skipped == [release.assets[0].name]
    assert [s.kind for s in gitea.requests].count("create") == 1


def test_retry_budget_exhausted_leaves_a_draft_that_a_rerun_completes(gitea: GiteaStandIn,
                                                                      release: Release) -> None:
    gitea.faults.add("upload", "502", times=1000)
    with pytest.raises(PublishError, match="failed 3 times.*re-run"):
        publisher(gitea, write_attempts=3).publish(release)
    assert gitea.publishes == [] and len(gitea.releases) == 1
    gitea.faults.queue.clear()
    check_clean(gitea, release, publisher(gitea).publish(release))


def test_reads_give_up_after_max_retries(gitea: GiteaStandIn, release: Release) -> None:
    gitea.faults.add("repo", "500", times=1000)
    with pytest.raises(PublishError, match="giving up after 3 attempts"):
        publisher(gitea, max_retries=2).publish(release)
    assert len(gitea.requests) == 3 and gitea.releases == []


def test_backoff_grows_and_honours_retry_after(gitea: GiteaStandIn, release: Release) -> None:
    gitea.faults.add("list_assets", "502", times=3)
    gitea.faults.add("create", "429")
    sleep = Recorder()
    check_clean(gitea, release, publisher(gitea, sleep=sleep).publish(release))
    assert sleep.waits == [1.0, 1.0, 2.0, 4.0]  # Retry-After: 1 on the create, then 1, 2, 4 s backoff


def test_rerun_of_a_published_release_changes_nothing(gitea: GiteaStandIn, release: Release) -> None:
    publisher(gitea).publish(release)
    before = len(gitea.writes())
    logs: list[str] = []
    out = publisher(gitea, logs).publish(release)
    assert out.state == "already-published" and len(gitea.writes()) == before
    assert any("nothing changed" in line for line in logs)


def test_published_release_with_different_content_is_reported_untouched(gitea: GiteaStandIn,
                                                                        release: Release) -> None:
    publisher(gitea).publish(release)
    damaged = gitea.releases[0].assets[2]
    data = bytearray((gitea.files / damaged.uuid).read_bytes())
    data[0] ^= 0xFF  # same size: only hashing the download tells
    (gitea.files / damaged.uuid).write_bytes(data)
    before = (len(gitea.writes()), gitea.snapshot())
    with pytest.raises(PublishError) as err:
        publisher(gitea).publish(release)
    message = str(err.value)
    assert release.assets[2].name in message and "already published" in message and "sha256" in message
    assert release.assets[0].name not in message
    assert (len(gitea.writes()), gitea.snapshot()) == before


def test_published_release_on_a_moved_tag_is_reported(gitea: GiteaStandIn, release: Release) -> None:
    publisher(gitea).publish(release)
    gitea.tags[release.tag] = MAIN_SHA
    with pytest.raises(PublishError, match=f"tag v1.0.0 points at {MAIN_SHA}"):
        publisher(gitea).publish(release)


def test_existing_tag_at_another_commit_is_refused_before_any_write(gitea: GiteaStandIn,
                                                                    release: Release) -> None:
    gitea.tags[release.tag] = MAIN_SHA
    with pytest.raises(PublishError) as err:
        publisher(gitea).publish(release)
    assert f"exists on Gitea at commit {MAIN_SHA[:12]}" in str(err.value) and release.commit[:12] in str(err.value)
    assert gitea.writes() == []


def test_existing_tag_at_the_release_commit_is_used(gitea: GiteaStandIn, release: Release) -> None:
    gitea.tags[release.tag] = release.commit
    check_clean(gitea, release, publisher(gitea).publish(release))


@pytest.mark.parametrize("how", ["wrong-token", "401", "403"])
def test_refused_token_stops_at_once_without_leaking_it(gitea: GiteaStandIn, release: Release, how: str) -> None:
    logs: list[str] = []
    wrong = "gitea_wrongTOKENvalue42"
    if how == "wrong-token":
        pub = publisher(gitea, logs, token=wrong)
    else:
        gitea.faults.add("create", how)
        pub = publisher(gitea, logs)
    with pytest.raises(PublishError) as err:
        pub.publish(release)
    message = str(err.value)
    assert "Gitea refused the token" in message and "gitea-token" in message and REPO in message
    assert len(gitea.requests) == (1 if how == "wrong-token" else 4)  # no retries
    for secret in (TOKEN, wrong):
        assert secret not in message and secret not in repr(pub) and secret not in repr(pub.http)
        assert not any(secret in line for line in logs)


def test_unknown_repository_is_named(gitea: GiteaStandIn, release: Release) -> None:
    pub = GiteaPublisher(gitea.url, "acme/typo", TOKEN, log=lambda line: None, sleep=Recorder())
    with pytest.raises(PublishError, match="acme/typo: repository not found"):
        pub.publish(release)


@pytest.mark.parametrize("url,repo,match", [("gitea.example.com", REPO, "needs a scheme"),
                                            ("https://gitea.example.com", "velostream", "owner/name")])
def test_bad_url_or_repository_is_refused_before_any_request(url: str, repo: str, match: str) -> None:
    with pytest.raises(PublishError, match=match):
        GiteaPublisher(url, repo, TOKEN)


def test_build_metadata_tag_is_a_final_release(tmp_path: Path) -> None:
    rel = make_release(tmp_path, "v1.0.0+build.5")
    with GiteaStandIn(REPO) as gitea:
        check_clean(gitea, rel, publisher(gitea).publish(rel))
        assert gitea.latest() == "v1.0.0+build.5" and gitea.tags == {"v1.0.0+build.5": rel.commit}
        assert publisher(gitea).publish(rel).state == "already-published"


def test_prerelease_is_flagged_and_never_latest(tmp_path: Path) -> None:
    rc = make_release(tmp_path, "v0.2.0-rc.1")
    with GiteaStandIn(REPO) as gitea:
        out = publisher(gitea).publish(rc)
        check_clean(gitea, rc, out)
        assert gitea.snapshot()[0]["prerelease"] is True and gitea.latest() is None
        assert "pre-release" in out.actions[-1]


@pytest.mark.parametrize("tag,latest", [("v1.0.5", "false"), ("v1.2.0", "true")])
def test_latest_is_what_gitea_shows_and_an_older_final_is_warned_about(tmp_path: Path, tag: str,
                                                                       latest: str) -> None:
    rel = make_release(tmp_path, tag)
    with GiteaStandIn(REPO, max_limit=2) as gitea:
        for other in ("v1.1.0", "v0.9.0", "v3.0.0-beta.1", "nightly"):
            gitea.add_release(other, prerelease="-" in other)
        out = publisher(gitea).publish(rel)
        assert out.make_latest == latest
        assert gitea.latest() == tag  # Gitea: the release published last, whatever its version
        assert ("warning" in out.actions[-1]) == (latest == "false")
        lists = [s for s in gitea.requests if s.kind == "list"]
        assert [s.query.get("page") for s in lists] == [None, ["2"], ["3"]]  # paged with limit, clamped
        assert gitea.validation_errors == []


def test_stale_draft_is_resumed_fixed_and_cleaned(gitea: GiteaStandIn, release: Release) -> None:
    good = release.assets[1]
    gitea.add_release(release.tag, draft=True, name="old title", target="main",
                      assets={"leftover.tar.gz": b"x" * 10, good.name: good.path.read_bytes()})
    gitea.releases[0].assets.append(gitea._store(good.name, good.path.read_bytes()))  # a duplicate
    out = publisher(gitea).publish(release)
    check_clean(gitea, release, out)
    assert out.draft == "reused" and out.removed == ["leftover.tar.gz"] and out.skipped == [good.name]
    patch = next(s for s in gitea.requests if s.kind == "patch")
    assert patch.body == {"name": release.title, "body": release.notes, "target_commitish": release.commit}


def test_sub_path_install(release: Release) -> None:
    with GiteaStandIn(REPO, sub_path="/forge") as gitea:
        check_clean(gitea, release, publisher(gitea).publish(release))
        assert gitea.url.endswith("/forge")


def test_downloads_follow_serve_direct_redirects_without_the_token(release: Release) -> None:
    with GiteaStandIn(REPO, serve_direct=True) as gitea:
        check_clean(gitea, release, publisher(gitea).publish(release))
        assert len([s for s in gitea.requests if s.kind == "download" and s.status == 302]) == len(release.assets)


def test_upload_and_verification_stream_from_disk(tmp_path: Path) -> None:
    rel = make_release(tmp_path, "v2.0.0", big=64 << 20)
    with GiteaStandIn(REPO) as gitea:
        pub = GiteaPublisher(gitea.url, REPO, TOKEN, log=lambda line: None, min_write_interval=0)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out = pub.publish(rel)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        check_clean(gitea, rel, out)
        assert peak < 8 << 20, f"publishing 2 x 64 MiB peaked at {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("body,query,problem", [
    ({"tag_name": "v9.9.9", "name": "x", "make_latest": "true"}, "", "make_latest"),
    ({"tag_name": "v9.9.9", "name": "x"}, "?per_page=100", "per_page"),
    ({"name": "x"}, "", "tag_name"),
])
def test_standin_rejects_requests_the_description_forbids(gitea: GiteaStandIn, body: dict[str, str], query: str,
                                                          problem: str) -> None:
    request = urllib.request.Request(
        f"{gitea.api_url}/repos/{REPO}/releases{query}", method="POST", data=json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "User-Agent": "t", "Content-Type": "application/json",
                 "Accept": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 422 and problem in gitea.validation_errors[0] and gitea.releases == []
    gitea.validation_errors.clear()


def test_download_urls_off_the_configured_host_get_no_token_and_a_clear_error(gitea: GiteaStandIn,
                                                                             release: Release) -> None:
    other_name = gitea.url.replace("127.0.0.1", "localhost")  # Gitea's ROOT_URL is not what we were given
    pub = GiteaPublisher(other_name, REPO, TOKEN, log=lambda line: None, sleep=Recorder(), min_write_interval=0)
    with pytest.raises(PublishError, match="set gitea_url to Gitea's ROOT_URL"):
        pub.publish(release)
    assert gitea.publishes == [] and gitea.releases[0].draft
