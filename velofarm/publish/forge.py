"""What publishing to GitHub and to Gitea/Forgejo have in common: the outcome, `make_latest`, and the
draft reconciler that brings a draft's assets to exactly the local release's before it is published.

The reconciler speaks to a forge through a small adapter (`ForgeAssets`): where assets are listed,
uploaded and deleted, and how a stored asset proves it is whole (GitHub reports state, size and
digest; Gitea only a size, so its adapter downloads the attachment back and hashes it). Everything
else, the order of the steps, the write re-checks and every message, is the same code for both, so a
fix to one forge's recovery reaches the other. Messages name the repository, the forge, the tag and
the asset. Each publisher keeps what is its own: how it finds the release, what a refused create
means, the body that publishes it, and its tag and latest-release rules.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from velofarm.errors import PublishError
from velofarm.publish.http import ApiError, HttpClient, WriteUncertain
from velofarm.release.model import Asset, Release
from velofarm.tags.semver import parse_tag

REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
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


class ForgeAssets(Protocol):
    """One forge's asset endpoints, and how one of its stored assets proves it is the local file."""

    forge: str  # the forge's name in messages: "GitHub", "Gitea"
    noun: str  # what the forge calls an asset in messages: "asset", "attachment"

    def list_assets(self, rel: Remote) -> list[Remote]:
        """Every asset of the release, as the forge lists them now."""

    def upload(self, rel: Remote, asset: Asset) -> Remote:
        """One upload; raises WriteUncertain (it may have landed) or ApiError (refused)."""

    def refused(self, asset: Asset, exc: ApiError) -> None:
        """An upload was refused: return when the draft should be re-checked, else raise."""

    def asset_url(self, rel: Remote, remote: Remote) -> str:
        """Where the asset is deleted."""

    def verified(self, remote: Remote, asset: Asset) -> bool:
        """The stored asset is the local file, whole."""

    def describe(self, remote: Remote, asset: Asset) -> str:
        """How the stored asset differs from the local file, for messages."""

    def forget(self, remote: Remote) -> None:
        """The asset is deleted: drop whatever was learnt about it."""


def check_target(forge: str, repo: str, token: str, token_secret: str) -> None:
    """Refuse a repository that is not `owner/name`, or a missing token, before anything is sent."""
    if not REPO_NAME.match(repo):
        raise PublishError(f"{forge} repository {repo!r}: expected 'owner/name'")
    if not token:
        raise PublishError(f"no {forge} token for {repo}: set the {token_secret} secret")


def repo_path(repo: str) -> str:
    """The API path of repository `owner/name` (the same on GitHub and Gitea)."""
    owner, name = repo.split("/")
    return f"/repos/{urllib.parse.quote(owner)}/{urllib.parse.quote(name)}"


class DraftReconciler:
    """Creates, updates and publishes one repository's drafts, and keeps their assets whole."""

    def __init__(self, http: HttpClient, repo: str, assets: ForgeAssets, log: Callable[[str], None],
                 write_attempts: int) -> None:
        self.http, self.repo, self.assets, self.log = http, repo, assets, log
        self.write_attempts = write_attempts
        self.base = repo_path(repo)

    def write(self, what: str, do: Callable[[], T], check: Callable[[], T | None]) -> T:
        """Run a write; when its outcome is uncertain, re-check the state before trying again."""
        return self.http.write_checked(what, do, check, self.write_attempts)

    def release_url(self, rel: Remote) -> str:
        return f"{self.base}/releases/{rel['id']}"

    # -- the draft ----------------------------------------------------------------------------------
    def already_published(self, rel: Remote, release: Release, diffs: list[str], fix: str) -> PublishOutcome:
        """Nothing to do when the published release does not differ (`diffs` is empty); otherwise
        refused, saying what to do (`fix`): a published release is never modified."""
        if diffs:
            raise PublishError(f"{self.repo}: {release.tag} is already published (release {rel['id']}) and "
                               f"differs: {'; '.join(diffs)}. A published release is never modified{fix}")
        self.log(f"{self.repo}: {release.tag} is already published with identical assets; nothing changed")
        return PublishOutcome("already-published", rel["html_url"], rel["id"],
                              skipped=[a.name for a in release.assets],
                              actions=["nothing changed: identical release already published"])

    def create_draft(self, release: Release, title: str, refused: Callable[[ApiError], Remote],
                     find: Callable[[], Remote | None]) -> Remote:
        """Create the draft at the release's commit; a refusal goes to `refused` (it returns the draft an
        earlier attempt made, or raises), and `find` looks for it when the answer was lost."""
        tag = release.tag
        # target_commitish: a missing tag is created at the built commit, not the default branch's head.
        body = {"tag_name": tag, "target_commitish": release.commit, "name": title, "body": release.notes,
                "draft": True, "prerelease": release.prerelease}

        def create() -> Remote:
            try:
                rel: Remote = self.http.post(f"{self.base}/releases", body)
            except ApiError as exc:
                return refused(exc)
            return rel

        rel = self.write(f"creating the draft for {tag}", create, find)
        if not rel.get("draft"):
            raise PublishError(f"{self.repo}: {tag} was published by someone else meanwhile; re-run")
        self.log(f"{self.repo}: created draft release {rel['id']} for {tag}")
        return rel

    def resume_draft(self, rel: Remote, release: Release, change: dict[str, Any]) -> Remote:
        """Reuse the draft, updating the fields in `change` (those that differ from the local release)."""
        self.log(f"{self.repo}: resuming draft release {rel['id']} for {release.tag}")
        if not change:
            return rel
        url = self.release_url(rel)

        def check() -> Remote | None:
            now: Remote = self.http.get(url)
            return now if all(now.get(k) == v for k, v in change.items()) else None

        self.log(f"{self.repo}: updating the draft's {', '.join(sorted(change))}")
        return self.write(f"updating draft {rel['id']}", lambda: self.http.patch(url, change), check)

    def publish_draft(self, rel: Remote, release: Release, body: dict[str, Any]) -> Remote:
        """PATCH the draft public with `body`, then read it back: it must not be a draft any more."""
        url = self.release_url(rel)

        def check() -> Remote | None:
            now: Remote = self.http.get(url)
            return None if now.get("draft") else now

        self.write(f"publishing draft {rel['id']}", lambda: self.http.patch(url, body), check)
        final: Remote = self.http.get(url)
        if final.get("draft"):
            raise PublishError(f"{self.repo}: release {rel['id']} ({release.tag}) is still a draft after "
                               f"publishing; check it on {self.assets.forge} and re-run")
        return final

    def check_complete(self, rel: Remote, release: Release) -> None:
        """Re-read the draft: publishing an incomplete release cannot be undone (it may be immutable,
        it creates the tag, it notifies watchers)."""
        diffs = self.asset_differences(rel, release)
        if diffs:
            raise PublishError(f"{self.repo}: draft {rel['id']} for {release.tag} is not complete "
                               f"({'; '.join(diffs)}); not published: re-run the publish")

    # -- assets -------------------------------------------------------------------------------------
    def sync_assets(self, rel: Remote, release: Release, out: PublishOutcome) -> None:
        """Remove what the release does not have, keep one verified copy of each asset, upload the rest."""
        copies = by_name(self.assets.list_assets(rel))
        wanted = {a.name for a in release.assets}
        for name in sorted(set(copies) - wanted):
            self.log(f"{self.repo}: removing {name} from the draft: it is not part of this release")
            for remote in copies[name]:
                self._delete(rel, remote)
            out.removed.append(name)
        for asset in release.assets:
            if self._keep_one(rel, asset, copies.get(asset.name, [])):
                self.log(f"{self.repo}: {asset.name} is already uploaded and verified; skipped")
                out.skipped.append(asset.name)
                continue
            (out.replaced if asset.name in copies else out.uploaded).append(asset.name)
            self._upload(rel, asset)
        out.actions += ([f"removed {n} from the draft" for n in out.removed]
                        + [f"uploaded {n}" for n in out.uploaded] + [f"replaced {n}" for n in out.replaced]
                        + [f"kept {n} (already uploaded and verified)" for n in out.skipped])

    def asset_differences(self, rel: Remote, release: Release) -> list[str]:
        """Every asset that is missing, different, doubled or extra on the forge, one phrase each."""
        found, forge = by_name(self.assets.list_assets(rel)), self.assets.forge
        diffs = []
        for asset in release.assets:
            got = found.pop(asset.name, [])
            if not got:
                diffs.append(f"{asset.name}: missing on {forge}")
            elif len(got) > 1:
                diffs.append(f"{asset.name}: {len(got)} {self.assets.noun}s of that name on {forge}")
            elif not self.assets.verified(got[0], asset):
                diffs.append(f"{asset.name}: {self.assets.describe(got[0], asset)}")
        return diffs + [f"{name}: on {forge} but not in the local release" for name in sorted(found)]

    def _keep_one(self, rel: Remote, asset: Asset, copies: list[Remote]) -> bool:
        """Keep the first verified copy of `asset` and delete every other; True when one was kept."""
        keep = next((c for c in copies if self.assets.verified(c, asset)), None)
        for remote in copies:
            if remote is not keep:
                why = self.assets.describe(remote, asset) if keep is None else "a duplicate"
                self.log(f"{self.repo}: {asset.name} ({self.assets.noun} {remote['id']}) is {why}; deleting it")
                self._delete(rel, remote)
        return keep is not None

    def _upload(self, rel: Remote, asset: Asset) -> None:
        """Upload until a verified copy is on the draft; after an uncertain or refused upload the draft
        is re-read first (the upload may have landed, whole or cut short)."""
        for attempt in range(self.write_attempts):
            self.log(f"{self.repo}: uploading {asset.name} ({asset.size} bytes)")
            try:
                got = self.assets.upload(rel, asset)
            except WriteUncertain as exc:
                self.http.backoff(attempt, str(exc))
            except ApiError as exc:
                self.assets.refused(asset, exc)
            else:
                if got.get("name") != asset.name:
                    self._delete(rel, got)
                    raise PublishError(f"{self.repo}: {self.assets.forge} stored {asset.name} as "
                                       f"{got.get('name')}: give the file a plain name (letters, digits, . _ -)")
                if self.assets.verified(got, asset):
                    return
                self.log(f"{self.repo}: {asset.name} arrived {self.assets.describe(got, asset)}; uploading it again")
                self._delete(rel, got)
                continue
            now = [a for a in self.assets.list_assets(rel) if a["name"] == asset.name]
            if self._keep_one(rel, asset, now):
                self.log(f"{self.repo}: {asset.name}: the upload went through after all")
                return
        raise PublishError(f"{self.repo}: uploading {asset.name} failed {self.write_attempts} times; the "
                           "release stays a draft: re-run the publish later, it resumes where it stopped")

    def _delete(self, rel: Remote, remote: Remote) -> None:
        url = self.assets.asset_url(rel, remote)

        def gone() -> bool | None:
            return True if all(a["id"] != remote["id"] for a in self.assets.list_assets(rel)) else None

        self.write(f"deleting {self.assets.noun} {remote['id']} ({remote['name']})",
                   lambda: self.http.delete_if_present(url), gone)
        self.assets.forget(remote)


def by_name(remote: Iterable[Remote]) -> dict[str, list[Remote]]:
    """The forge's assets grouped by name (Gitea accepts same-named attachments)."""
    found: dict[str, list[Remote]] = {}
    for item in remote:
        found.setdefault(item["name"], []).append(item)
    return found


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
