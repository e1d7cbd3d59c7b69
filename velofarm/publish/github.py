"""Publishes a verified release to GitHub Releases: a draft, every asset uploaded and verified, then
one PATCH that makes it public. Idempotent and resumable: each run re-reads GitHub's state first.

Published releases may be immutable (assets and tag frozen), so a release is only published when
complete, and a published release is never touched again.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable

from velofarm.errors import PublishError
from velofarm.publish.forge import DraftReconciler, PublishOutcome, Remote, check_target, make_latest, repo_path
from velofarm.publish.http import ApiError, HttpClient
from velofarm.release.model import Asset, Release

__all__ = ["GitHubPublisher", "PublishOutcome"]  # PublishOutcome is forge.py's, still importable from here
URI_TEMPLATE = re.compile(r"\{[^}]*\}$")


class GitHubPublisher:
    """Publishes releases to one repository, `owner/name`, on github.com or GitHub Enterprise."""

    def __init__(self, repo: str, token: str, api_url: str = "https://api.github.com",
                 log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep, *,
                 clock: Callable[[], float] = time.time, min_write_interval: float = 1.0,
                 max_retries: int = 6, write_attempts: int = 4, chunk_size: int = 1 << 20,
                 timeout: float = 60.0) -> None:
        check_target("GitHub", repo, token, "github-token")
        self.repo, self.log = repo, log
        self.http = HttpClient(api_url, token, log=log, sleep=sleep, clock=clock, scope=repo,
                               max_retries=max_retries, min_write_interval=min_write_interval,
                               chunk_size=chunk_size, timeout=timeout)
        self.draft = DraftReconciler(self.http, repo, GitHubAssets(self.http, repo, log), log, write_attempts)
        self.base = self.draft.base

    def __repr__(self) -> str:
        return f"GitHubPublisher({self.repo!r}, api_url={self.http.api_url!r})"

    def publish(self, release: Release) -> PublishOutcome:
        """Create or resume the draft for `release.tag`, upload and verify its assets, publish it."""
        self.log(f"{self.repo}: publishing {release.tag} ({len(release.assets)} assets)")
        try:
            releases = self._releases()
        except ApiError as exc:
            if exc.status != 404:
                raise
            raise PublishError(f"{self.repo}: repository not found at {self.http.api_url}: check the "
                               "name, and that the github-token secret can see it (private repositories "
                               "answer 404 to tokens without access)") from None
        mine = [r for r in releases if r.get("tag_name") == release.tag]
        published = [r for r in mine if not r.get("draft")]
        if published:
            diffs = self.draft.asset_differences(published[0], release)
            return self.draft.already_published(published[0], release, diffs, FIX_PUBLISHED)
        drafts = [r for r in mine if r.get("draft")]
        if len(drafts) > 1:
            raise PublishError(self._too_many_drafts(release.tag, drafts))
        if drafts:
            outcome_draft, rel = "reused", self.draft.resume_draft(drafts[0], release, draft_changes(drafts[0], release))
        else:
            outcome_draft, rel = "created", self._create_draft(release)
        out = PublishOutcome("published", rel["html_url"], rel["id"], draft=outcome_draft)
        out.actions.append(f"{outcome_draft} draft {rel['id']}")
        self.draft.sync_assets(rel, release, out)
        self.draft.check_complete(rel, release)
        out.make_latest = make_latest(release, releases)
        body = {"draft": False, "prerelease": release.prerelease, "make_latest": out.make_latest}
        final = self.draft.publish_draft(rel, release, body)
        out.location = final["html_url"]
        out.actions.append(f"published (make_latest={out.make_latest})")
        self.log(f"{self.repo}: {release.tag} published at {out.location}")
        return out

    # -- the release ------------------------------------------------------------------------------
    def _releases(self) -> list[Remote]:
        return list(self.http.get_pages(f"{self.base}/releases", {"per_page": 100}))

    def _too_many_drafts(self, tag: str, drafts: list[Remote]) -> str:
        ids = ", ".join(str(d["id"]) for d in drafts)
        return (f"{self.repo}: {len(drafts)} draft releases exist for {tag} (ids {ids}); delete all "
                "but one on GitHub (Releases page, or DELETE /repos/{owner}/{repo}/releases/{id}), "
                "then re-run the publish")

    def _create_draft(self, release: Release) -> Remote:
        if not release.commit:
            raise PublishError(f"{release.tag}: release.json names no commit; GitHub would create a missing tag "
                               "at the default branch: re-assemble the release (velofarm release-assemble)")

        def refused(exc: ApiError) -> Remote:
            if exc.status == 422:
                raise PublishError(f"{self.repo}: GitHub refused to create a release for "
                                   f"{release.tag}: {exc}; the tag is already used by a published "
                                   "(possibly immutable) release") from None
            raise exc

        def find() -> Remote | None:  # the create may have gone through before the answer was lost
            drafts = [r for r in self._releases() if r.get("tag_name") == release.tag and r.get("draft")]
            if len(drafts) > 1:
                raise PublishError(self._too_many_drafts(release.tag, drafts))
            return drafts[0] if drafts else None

        return self.draft.create_draft(release, release.title, refused, find)


FIX_PUBLISHED = " (it may be immutable): release a new version, or delete that release on GitHub by hand"


def draft_changes(rel: Remote, release: Release) -> dict[str, object]:
    """What a reused draft needs changed to say what the local release says."""
    want = {"name": release.title, "body": release.notes, "prerelease": release.prerelease}
    return {k: v for k, v in want.items() if rel.get(k) != v}


class GitHubAssets:
    """A GitHub release's assets, for the draft reconciler: GitHub reports each one's state, size and
    sha256 digest, so nothing is downloaded back; one asset per name (a second upload answers 422)."""

    forge, noun = "GitHub", "asset"

    def __init__(self, http: HttpClient, repo: str, log: Callable[[str], None]) -> None:
        self.http, self.repo, self.log, self.base = http, repo, log, repo_path(repo)

    def list_assets(self, rel: Remote) -> list[Remote]:
        return list(self.http.get_pages(f"{self.base}/releases/{rel['id']}/assets", {"per_page": 100}))

    def upload(self, rel: Remote, asset: Asset) -> Remote:
        url = URI_TEMPLATE.sub("", rel["upload_url"]) + "?" + urllib.parse.urlencode({"name": asset.name})
        got: Remote = self.http.upload(url, asset.path, asset.content_type)
        return got

    def refused(self, asset: Asset, exc: ApiError) -> None:
        if exc.status != 422:
            raise exc
        self.log(f"{self.repo}: {asset.name}: the name is taken on the draft; checking it")

    def asset_url(self, rel: Remote, remote: Remote) -> str:
        return f"{self.base}/releases/assets/{remote['id']}"

    def verified(self, remote: Remote, asset: Asset) -> bool:
        return matches(remote, asset)

    def describe(self, remote: Remote, asset: Asset) -> str:
        return describe(remote, asset)

    def forget(self, remote: Remote) -> None:
        pass  # nothing is cached: GitHub reports the digest in every listing


def matches(remote: Remote, asset: Asset) -> bool:
    """A remote asset is the local one: fully uploaded, same size, same digest (when GitHub has one)."""
    digest = remote.get("digest")
    return (remote.get("state") == "uploaded" and remote.get("size") == asset.size
            and (digest is None or str(digest).lower() == f"sha256:{asset.sha256.lower()}"))


def describe(remote: Remote, asset: Asset) -> str:
    """How a remote asset differs from the local one, for messages."""
    why = []
    if remote.get("state") != "uploaded":
        why.append(f"state {remote.get('state')!r}, not 'uploaded'")
    if remote.get("size") != asset.size:
        why.append(f"{remote.get('size')} bytes, not {asset.size}")
    digest = remote.get("digest")
    if digest is not None and str(digest).lower() != f"sha256:{asset.sha256.lower()}":
        why.append(f"digest {digest}, not sha256:{asset.sha256}")
    return ", ".join(why) or "identical"

