"""Publishes a verified release to GitHub Releases: a draft, every asset uploaded and verified, then
one PATCH that makes it public. Idempotent and resumable: each run re-reads GitHub's state first.

Published releases may be immutable (assets and tag frozen), so a release is only published when
complete, and a published release is never touched again.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from velofarm.errors import PublishError
from velofarm.publish.http import ApiError, HttpClient, WriteUncertain
from velofarm.release.model import Asset, Release
from velofarm.tags.semver import parse_tag

REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
URI_TEMPLATE = re.compile(r"\{[^}]*\}$")
T = TypeVar("T")
Remote = dict[str, Any]


@dataclass
class PublishOutcome:
    """What a publish found and did; `state` is "published" or "already-published"."""

    state: str
    location: str  # the release's html_url
    release_id: int
    draft: str = ""  # "created" or "reused" (empty when it was already published)
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    make_latest: str = ""
    actions: list[str] = field(default_factory=list)


class GitHubPublisher:
    """Publishes releases to one repository, `owner/name`, on github.com or GitHub Enterprise."""

    def __init__(self, repo: str, token: str, api_url: str = "https://api.github.com",
                 log: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep, *,
                 clock: Callable[[], float] = time.time, min_write_interval: float = 1.0,
                 max_retries: int = 6, write_attempts: int = 4, chunk_size: int = 1 << 20,
                 timeout: float = 60.0) -> None:
        if not REPO_NAME.match(repo):
            raise PublishError(f"GitHub repository {repo!r}: expected 'owner/name'")
        if not token:
            raise PublishError(f"no GitHub token for {repo}: set the github-token secret")
        self.repo, self.log, self.write_attempts = repo, log, write_attempts
        self.http = HttpClient(api_url, token, log=log, sleep=sleep, clock=clock, scope=repo,
                               max_retries=max_retries, min_write_interval=min_write_interval,
                               chunk_size=chunk_size, timeout=timeout)
        owner, name = repo.split("/")
        self.base = f"/repos/{urllib.parse.quote(owner)}/{urllib.parse.quote(name)}"

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
            return self._already_published(published[0], release)
        drafts = [r for r in mine if r.get("draft")]
        if len(drafts) > 1:
            raise PublishError(self._too_many_drafts(release.tag, drafts))
        if drafts:
            outcome_draft, rel = "reused", self._reuse_draft(drafts[0], release)
        else:
            outcome_draft, rel = "created", self._create_draft(release)
        out = PublishOutcome("published", rel["html_url"], rel["id"], draft=outcome_draft)
        out.actions.append(f"{outcome_draft} draft {rel['id']}")
        self._sync_assets(rel, release, out)
        self._check_complete(rel, release)
        out.make_latest = make_latest(release, releases)
        final = self._publish_draft(rel, release, out.make_latest)
        out.location = final["html_url"]
        out.actions.append(f"published (make_latest={out.make_latest})")
        self.log(f"{self.repo}: {release.tag} published at {out.location}")
        return out

    # -- the release ------------------------------------------------------------------------------
    def _releases(self) -> list[Remote]:
        return list(self.http.get_pages(f"{self.base}/releases", {"per_page": 100}))

    def _assets(self, rel: Remote) -> list[Remote]:
        return list(self.http.get_pages(f"{self.base}/releases/{rel['id']}/assets", {"per_page": 100}))

    def _already_published(self, rel: Remote, release: Release) -> PublishOutcome:
        diffs = differences(self._assets(rel), release.assets)
        if diffs:
            raise PublishError(
                f"{self.repo}: {release.tag} is already published (release {rel['id']}) with different "
                f"assets: {'; '.join(diffs)}. A published release is never modified (it may be "
                "immutable): release a new version, or delete that release on GitHub by hand")
        self.log(f"{self.repo}: {release.tag} is already published with identical assets; nothing changed")
        return PublishOutcome("already-published", rel["html_url"], rel["id"],
                              skipped=[a.name for a in release.assets],
                              actions=["nothing changed: identical release already published"])

    def _too_many_drafts(self, tag: str, drafts: list[Remote]) -> str:
        ids = ", ".join(str(d["id"]) for d in drafts)
        return (f"{self.repo}: {len(drafts)} draft releases exist for {tag} (ids {ids}); delete all "
                "but one on GitHub (Releases page, or DELETE /repos/{owner}/{repo}/releases/{id}), "
                "then re-run the publish")

    def _create_draft(self, release: Release) -> Remote:
        if not release.commit:
            raise PublishError(f"{release.tag}: release.json names no commit; GitHub would create a missing tag "
                               "at the default branch: re-assemble the release (velofarm release-assemble)")
        # target_commitish: when the tag is missing on GitHub, it is created at the built commit,
        # not at the default branch's head.
        body = {"tag_name": release.tag, "target_commitish": release.commit, "name": release.title,
                "body": release.notes, "draft": True, "prerelease": release.prerelease}

        def create() -> Remote:
            try:
                rel: Remote = self.http.post(f"{self.base}/releases", body)
                return rel
            except ApiError as exc:
                if exc.status == 422:
                    raise PublishError(f"{self.repo}: GitHub refused to create a release for "
                                       f"{release.tag}: {exc}; the tag is already used by a published "
                                       "(possibly immutable) release") from None
                raise

        def find() -> Remote | None:  # the create may have gone through before the answer was lost
            drafts = [r for r in self._releases() if r.get("tag_name") == release.tag and r.get("draft")]
            if len(drafts) > 1:
                raise PublishError(self._too_many_drafts(release.tag, drafts))
            return drafts[0] if drafts else None

        rel = self._write(f"creating the draft for {release.tag}", create, find)
        self.log(f"{self.repo}: created draft release {rel['id']} for {release.tag}")
        return rel

    def _reuse_draft(self, rel: Remote, release: Release) -> Remote:
        self.log(f"{self.repo}: resuming draft release {rel['id']} for {release.tag}")
        want = {"name": release.title, "body": release.notes, "prerelease": release.prerelease}
        change = {k: v for k, v in want.items() if rel.get(k) != v}
        if not change:
            return rel
        url = f"{self.base}/releases/{rel['id']}"

        def check() -> Remote | None:
            now: Remote = self.http.get(url)
            return now if all(now.get(k) == v for k, v in change.items()) else None

        self.log(f"{self.repo}: updating the draft's {', '.join(sorted(change))}")
        updated: Remote = self._write(f"updating draft {rel['id']}", lambda: self.http.patch(url, change),
                                      check)
        return updated

    def _publish_draft(self, rel: Remote, release: Release, latest: str) -> Remote:
        url = f"{self.base}/releases/{rel['id']}"
        body = {"draft": False, "prerelease": release.prerelease, "make_latest": latest}

        def check() -> Remote | None:
            now: Remote = self.http.get(url)
            return None if now.get("draft") else now

        self._write(f"publishing draft {rel['id']}", lambda: self.http.patch(url, body), check)
        final: Remote = self.http.get(url)
        if final.get("draft"):
            raise PublishError(f"{self.repo}: release {rel['id']} ({release.tag}) is still a draft after "
                               "publishing; check it on GitHub and re-run")
        return final

    # -- assets -----------------------------------------------------------------------------------
    def _sync_assets(self, rel: Remote, release: Release, out: PublishOutcome) -> None:
        remote = {a["name"]: a for a in self._assets(rel)}
        wanted = {a.name for a in release.assets}
        for name in sorted(set(remote) - wanted):
            self.log(f"{self.repo}: removing {name} from the draft: it is not part of this release")
            self._delete_asset(rel, remote[name])
            out.removed.append(name)
        for asset in release.assets:
            old = remote.get(asset.name)
            if old is not None and matches(old, asset):
                self.log(f"{self.repo}: {asset.name} is already uploaded and verified; skipped")
                out.skipped.append(asset.name)
                continue
            if old is not None:
                self.log(f"{self.repo}: {asset.name} on the draft is {describe(old, asset)}; replacing it")
                self._delete_asset(rel, old)
                out.replaced.append(asset.name)
            else:
                out.uploaded.append(asset.name)
            self._upload(rel, asset)
        out.actions += ([f"removed {n} from the draft" for n in out.removed]
                        + [f"uploaded {n}" for n in out.uploaded] + [f"replaced {n}" for n in out.replaced]
                        + [f"kept {n} (already uploaded and verified)" for n in out.skipped])

    def _upload(self, rel: Remote, asset: Asset) -> None:
        url = URI_TEMPLATE.sub("", rel["upload_url"]) + "?" + urllib.parse.urlencode({"name": asset.name})
        what = f"uploading {asset.name}"
        for attempt in range(self.write_attempts):
            self.log(f"{self.repo}: {what} ({asset.size} bytes)")
            try:
                got: Remote = self.http.upload(url, asset.path, asset.content_type)
            except WriteUncertain as exc:
                self.http.backoff(attempt, str(exc))
            except ApiError as exc:
                if exc.status != 422:
                    raise
                self.log(f"{self.repo}: {asset.name}: the name is taken on the draft; checking it")
            else:
                if got.get("name") != asset.name:
                    self._delete_asset(rel, got)
                    raise PublishError(f"{self.repo}: GitHub renamed {asset.name} to {got.get('name')}: "
                                       "give the file a plain name (letters, digits, . _ -)")
                if matches(got, asset):
                    return
                self.log(f"{self.repo}: {asset.name} arrived {describe(got, asset)}; uploading it again")
                self._delete_asset(rel, got)
                continue
            now = next((a for a in self._assets(rel) if a["name"] == asset.name), None)
            if now is not None and matches(now, asset):
                self.log(f"{self.repo}: {asset.name}: the upload went through after all")
                return
            if now is not None:
                self.log(f"{self.repo}: {asset.name} on the draft is {describe(now, asset)}; deleting it")
                self._delete_asset(rel, now)
        raise PublishError(f"{self.repo}: {what} failed {self.write_attempts} times; the release stays a "
                           "draft: re-run the publish later, it resumes where it stopped")

    def _delete_asset(self, rel: Remote, remote: Remote) -> None:
        url = f"{self.base}/releases/assets/{remote['id']}"

        def gone() -> bool | None:
            return True if all(a["id"] != remote["id"] for a in self._assets(rel)) else None

        self._write(f"deleting asset {remote['name']}", lambda: self.http.delete_if_present(url), gone)

    def _check_complete(self, rel: Remote, release: Release) -> None:
        """Re-read the draft: publishing an incomplete release cannot be undone."""
        diffs = differences(self._assets(rel), release.assets)
        if diffs:
            raise PublishError(f"{self.repo}: draft {rel['id']} for {release.tag} is not complete "
                               f"({'; '.join(diffs)}); not published: re-run the publish")

    def _write(self, what: str, do: Callable[[], T], check: Callable[[], T | None]) -> T:
        """Run a write; when its outcome is uncertain, re-check the state before trying again."""
        return self.http.write_checked(what, do, check, self.write_attempts)


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


def differences(remote: Iterable[Remote], local: Iterable[Asset]) -> list[str]:
    """Every asset that is missing, different or extra on GitHub, one phrase each."""
    by_name = {a["name"]: a for a in remote}
    diffs = []
    for asset in local:
        got = by_name.pop(asset.name, None)
        if got is None:
            diffs.append(f"{asset.name}: missing on GitHub")
        elif not matches(got, asset):
            diffs.append(f"{asset.name}: {describe(got, asset)}")
    diffs += [f"{name}: on GitHub but not in the local release" for name in sorted(by_name)]
    return diffs


def make_latest(release: Release, releases: Iterable[Remote]) -> str:
    """"true" only for a final release newer than every published final `v`+semver release."""
    ours = parse_tag(release.tag)
    if release.prerelease or ours is None or ours.prerelease:
        return "false"
    keys = []
    for rel in releases:
        if rel.get("draft") or rel.get("prerelease") or rel.get("tag_name") == release.tag:
            continue
        version = parse_tag(str(rel.get("tag_name")))
        if version is not None and not version.prerelease:
            keys.append(version.sort_key())
    mine = ours.sort_key()
    return "true" if all(mine > k for k in keys) else "false"
