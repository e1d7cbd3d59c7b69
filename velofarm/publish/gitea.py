"""Publishes a verified release to Gitea or Forgejo: a draft at the resolved commit, every asset
uploaded and verified, then one PATCH that makes it public. Idempotent and resumable: each run
re-reads the forge's state first. Runs where github.py runs (the publish step's thread, `velofarm
publish`); the same guarantees, shaped by how Gitea differs from GitHub:

- One release per tag (a second create answers 409) and `GET /releases/tags/{tag}` returns drafts:
  finding the draft is one lookup, and duplicate drafts cannot happen.
- A draft creates no git tag; Gitea writes the tag when the release is published, at
  `target_commitish`. The draft therefore names the resolved commit SHA (a branch name would be
  resolved at publish time), and a tag that already exists at another commit is refused first.
- Attachments carry no checksum: each is checked by size, then downloaded back and hashed.
  Same-named attachments are accepted by Gitea, so extra copies are deleted.
- Assets stay mutable after publishing, yet a published release is never changed: a difference is
  reported and left for a person.
- There is no `make_latest`: Gitea's latest release is the newest *published* final release (by
  publish time). Publishing an older final after a newer one makes it "latest"; the outcome says so.
"""

from __future__ import annotations

import dataclasses
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TypeVar

from velofarm.errors import PublishError
from velofarm.publish.github import REPO_NAME, PublishOutcome, Remote, make_latest
from velofarm.publish.http import GITEA, ApiError, HttpClient, WriteUncertain
from velofarm.release.model import Asset, Release

API_PREFIX = "/api/v1"
ROOT_URL = re.compile(r"^https?://[^/\s]+")
T = TypeVar("T")


class GiteaPublisher:
    """Publishes releases to one repository, `owner/name`, on a Gitea or Forgejo at `gitea_url`."""

    def __init__(self, gitea_url: str, repo: str, token: str, log: Callable[[str], None] = print,
                 sleep: Callable[[float], None] = time.sleep, *, token_secret: str = "gitea-token",
                 clock: Callable[[], float] = time.time, min_write_interval: float = 1.0,
                 max_retries: int = 6, write_attempts: int = 4, chunk_size: int = 1 << 20,
                 timeout: float = 60.0) -> None:
        if not ROOT_URL.match(gitea_url):
            raise PublishError(f"Gitea URL {gitea_url!r}: needs a scheme and a host, e.g. "
                               "https://gitea.example.com (the root URL, without /api/v1)")
        if not REPO_NAME.match(repo):
            raise PublishError(f"Gitea repository {repo!r}: expected 'owner/name'")
        if not token:
            raise PublishError(f"no Gitea token for {repo}: set the {token_secret} secret")
        self.repo, self.log, self.write_attempts = repo, log, write_attempts
        self.gitea_url = gitea_url.rstrip("/")
        forge = dataclasses.replace(GITEA, token_fix=GITEA.token_fix.replace("gitea-token", token_secret))
        self.http = HttpClient(self.gitea_url + API_PREFIX, token, forge=forge, log=log, sleep=sleep,
                               clock=clock, scope=repo, max_retries=max_retries, timeout=timeout,
                               min_write_interval=min_write_interval, chunk_size=chunk_size)
        owner, name = repo.split("/")
        self.base = f"/repos/{urllib.parse.quote(owner)}/{urllib.parse.quote(name)}"
        self._hashes: dict[int, tuple[int, str]] = {}  # attachment id -> what its download hashed to

    def __repr__(self) -> str:
        return f"GiteaPublisher({self.gitea_url!r}, {self.repo!r})"

    def publish(self, release: Release) -> PublishOutcome:
        """Create or resume the draft for `release.tag`, upload and verify its assets, publish it."""
        self.log(f"{self.repo}: publishing {release.tag} ({len(release.assets)} assets) to {self.gitea_url}")
        self._check_repository()
        rel = self._release_for(release.tag)
        if rel is not None and not rel.get("draft"):
            return self._already_published(rel, release)
        self._check_tag_free(release)
        if rel is not None:
            outcome_draft, rel = "reused", self._reuse_draft(rel, release)
        else:
            outcome_draft, rel = "created", self._create_draft(release)
        out = PublishOutcome("published", rel["html_url"], rel["id"], draft=outcome_draft)
        out.actions.append(f"{outcome_draft} draft {rel['id']} at commit {release.commit[:12]}")
        self._sync_assets(rel, release, out)
        self._check_complete(rel, release)
        out.make_latest, latest_note = self._latest(release)
        final = self._publish_draft(rel, release)
        self._check_tag_published(release)
        out.location = final["html_url"]
        out.actions += [f"published; tag {release.tag} at {release.commit[:12]}", latest_note]
        self.log(f"{self.repo}: {release.tag} published at {out.location}; {latest_note}")
        return out

    # -- the repository, the release and its tag ----------------------------------------------------
    def _check_repository(self) -> None:
        try:
            self.http.get(self.base)
        except ApiError as exc:
            if exc.status != 404:
                raise
            raise PublishError(f"{self.repo}: repository not found at {self.gitea_url}: check gitea_repo, "
                               "and that the token's user can see it (Gitea answers 404 to users without "
                               "access)") from None

    def _release_for(self, tag: str) -> Remote | None:
        """The release (draft or published) for `tag`, or None."""
        try:
            rel: Remote = self.http.get(f"{self.base}/releases/tags/{urllib.parse.quote(tag, safe='')}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            return None
        if rel.get("tag_name") != tag:  # Gitea matches tags case-insensitively
            raise PublishError(f"{self.repo}: Gitea has release {rel.get('id')} for tag {rel.get('tag_name')!r}, "
                               f"which Gitea treats as the same tag as {tag!r}: delete one of them on Gitea")
        return rel

    def _tag_commit(self, tag: str) -> str | None:
        """The commit the git tag points to on Gitea, or None while there is no such tag."""
        try:
            found: Remote = self.http.get(f"{self.base}/tags/{urllib.parse.quote(tag, safe='')}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            return None
        return str((found.get("commit") or {}).get("sha", "")).lower() or None

    def _check_tag_free(self, release: Release) -> None:
        """A tag that exists already decides where Gitea publishes: it must be the release's commit."""
        sha = self._tag_commit(release.tag)
        if sha is not None and sha != release.commit.lower():
            raise PublishError(f"{self.repo}: tag {release.tag} exists on Gitea at commit {sha[:12]}, but this "
                               f"release was built from {release.commit[:12]}; Gitea would publish it on the "
                               "existing tag: push the right tag to Gitea (or delete it there), then re-run")

    def _check_tag_published(self, release: Release) -> None:
        sha = self._tag_commit(release.tag)
        if sha != release.commit.lower():
            raise PublishError(f"{self.repo}: {release.tag} is published, but its tag points at "
                               f"{sha or 'nothing'}, not {release.commit}: check the tag on Gitea")

    def _already_published(self, rel: Remote, release: Release) -> PublishOutcome:
        diffs = self._differences(self._assets(rel), release.assets)
        sha = self._tag_commit(release.tag)
        if sha != release.commit.lower():
            diffs.append(f"tag {release.tag} points at {sha or 'nothing'}, not {release.commit[:12]}")
        if diffs:
            raise PublishError(
                f"{self.repo}: {release.tag} is already published (release {rel['id']}) and differs: "
                f"{'; '.join(diffs)}. A published release is never modified: release a new version, or "
                "delete that release on Gitea by hand (its tag stays) and re-run")
        self.log(f"{self.repo}: {release.tag} is already published with identical assets; nothing changed")
        return PublishOutcome("already-published", rel["html_url"], rel["id"],
                              skipped=[a.name for a in release.assets],
                              actions=["nothing changed: identical release already published"])

    def _create_draft(self, release: Release) -> Remote:
        # Forgejo refuses an empty name ("title is empty"); the SHA pins the tag Gitea writes at publish.
        body = {"tag_name": release.tag, "target_commitish": release.commit, "name": release.title or release.tag,
                "body": release.notes, "draft": True, "prerelease": release.prerelease}

        def create() -> Remote:
            try:
                rel: Remote = self.http.post(f"{self.base}/releases", body)
                return rel
            except ApiError as exc:
                found = self._release_for(release.tag) if exc.status == 409 else None
                if found is not None and found.get("draft"):
                    return found  # an earlier attempt created it (one release per tag)
                raise PublishError(f"{self.repo}: Gitea refused to create a draft for {release.tag}: {exc}; "
                                   f"{CREATE_FIXES.get(exc.status, 'check the repository on Gitea')}") from None

        def find() -> Remote | None:  # the create may have gone through before the answer was lost
            return self._release_for(release.tag)

        rel = self._write(f"creating the draft for {release.tag}", create, find)
        if not rel.get("draft"):
            raise PublishError(f"{self.repo}: {release.tag} was published by someone else meanwhile; re-run")
        self.log(f"{self.repo}: created draft release {rel['id']} for {release.tag}")
        return rel

    def _reuse_draft(self, rel: Remote, release: Release) -> Remote:
        self.log(f"{self.repo}: resuming draft release {rel['id']} for {release.tag}")
        want = {"name": release.title, "body": release.notes, "prerelease": release.prerelease,
                "target_commitish": release.commit}
        # Gitea's PATCH ignores empty strings (it cannot clear a field): ask only for what it can do.
        change = {k: v for k, v in want.items() if rel.get(k) != v and v != ""}
        if not change:
            return rel
        url = f"{self.base}/releases/{rel['id']}"

        def check() -> Remote | None:
            now: Remote = self.http.get(url)
            return now if all(now.get(k) == v for k, v in change.items()) else None

        self.log(f"{self.repo}: updating the draft's {', '.join(sorted(change))}")
        return self._write(f"updating draft {rel['id']}", lambda: self.http.patch(url, change), check)

    def _publish_draft(self, rel: Remote, release: Release) -> Remote:
        url = f"{self.base}/releases/{rel['id']}"
        body = {"draft": False, "prerelease": release.prerelease}

        def check() -> Remote | None:
            now: Remote = self.http.get(url)
            return None if now.get("draft") else now

        self._write(f"publishing draft {rel['id']}", lambda: self.http.patch(url, body), check)
        final: Remote = self.http.get(url)
        if final.get("draft"):
            raise PublishError(f"{self.repo}: release {rel['id']} ({release.tag}) is still a draft after "
                               "publishing; check it on Gitea and re-run")
        return final

    def _latest(self, release: Release) -> tuple[str, str]:
        """Whether semver makes this the latest release, and what Gitea will show (it decides alone)."""
        releases = list(self.http.get_pages(f"{self.base}/releases", {"limit": 50}))
        verdict = make_latest(release, releases)
        if release.prerelease:
            return verdict, "a pre-release: Gitea never shows it as the latest release"
        if verdict == "true":
            return verdict, "Gitea shows it as the latest release (the newest published final release)"
        return verdict, (f"warning: Gitea will show {release.tag} as the latest release because it is "
                         "published last, although a higher final version exists (Gitea has no make_latest)")

    # -- assets -----------------------------------------------------------------------------------
    def _assets(self, rel: Remote) -> list[Remote]:
        found: list[Remote] = self.http.get(f"{self.base}/releases/{rel['id']}/assets")  # not paginated
        return found

    def _digest(self, remote: Remote) -> tuple[int, str]:
        """(size, sha256) of an attachment's content, downloaded back once per attachment."""
        if remote["id"] not in self._hashes:
            url = str(remote["browser_download_url"])
            try:
                self._hashes[remote["id"]] = self.http.download(url)
            except ApiError as exc:  # a draft's attachment needs the token, sent only to gitea_url's host
                raise PublishError(f"{self.repo}: cannot download {remote['name']} back to verify it ({exc}); "
                                   f"if {url} is not on {self.gitea_url}, set gitea_url to Gitea's ROOT_URL") from None
        return self._hashes[remote["id"]]

    def _verified(self, remote: Remote, asset: Asset) -> bool:
        """The attachment is the local file: same size, and its download hashes to the same sha256."""
        return remote.get("size") == asset.size and self._digest(remote) == (asset.size, asset.sha256.lower())

    def _describe(self, remote: Remote, asset: Asset) -> str:
        if remote.get("size") != asset.size:
            return f"{remote.get('size')} bytes, not {asset.size}"
        size, digest = self._digest(remote)
        return f"downloads as {size} bytes with sha256 {digest}, not {asset.sha256}"

    def _sync_assets(self, rel: Remote, release: Release, out: PublishOutcome) -> None:
        copies: dict[str, list[Remote]] = {}
        for remote in self._assets(rel):
            copies.setdefault(remote["name"], []).append(remote)
        wanted = {a.name for a in release.assets}
        for name in sorted(set(copies) - wanted):
            self.log(f"{self.repo}: removing {name} from the draft: it is not part of this release")
            for remote in copies[name]:
                self._delete_asset(rel, remote)
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

    def _keep_one(self, rel: Remote, asset: Asset, copies: list[Remote]) -> bool:
        """Keep the first verified copy of `asset` and delete every other; True when one was kept."""
        keep = next((c for c in copies if self._verified(c, asset)), None)
        for remote in copies:
            if remote is not keep:
                self.log(f"{self.repo}: {asset.name} (attachment {remote['id']}) is "
                         f"{self._describe(remote, asset) if keep is None else 'a duplicate'}; deleting it")
                self._delete_asset(rel, remote)
        return keep is not None

    def _upload(self, rel: Remote, asset: Asset) -> None:
        url = f"{self.base}/releases/{rel['id']}/assets?" + urllib.parse.urlencode({"name": asset.name})
        for attempt in range(self.write_attempts):
            self.log(f"{self.repo}: uploading {asset.name} ({asset.size} bytes)")
            try:
                got: Remote = self.http.upload(url, asset.path, asset.content_type, form_field="attachment")
            except WriteUncertain as exc:
                self.http.backoff(attempt, str(exc))
            except ApiError as exc:
                raise PublishError(f"{self.repo}: Gitea refused {asset.name}: {exc}; "
                                   f"{UPLOAD_FIXES.get(exc.status, 'check the release on Gitea')}") from None
            else:
                if got.get("name") != asset.name:
                    self._delete_asset(rel, got)
                    raise PublishError(f"{self.repo}: Gitea stored {asset.name} as {got.get('name')}: give "
                                       "the file a plain name (letters, digits, . _ -)")
                if self._verified(got, asset):
                    return
                self.log(f"{self.repo}: {asset.name} arrived {self._describe(got, asset)}; uploading it again")
                self._delete_asset(rel, got)
                continue
            now = [a for a in self._assets(rel) if a["name"] == asset.name]
            if self._keep_one(rel, asset, now):
                self.log(f"{self.repo}: {asset.name}: the upload went through after all")
                return
        raise PublishError(f"{self.repo}: uploading {asset.name} failed {self.write_attempts} times; the "
                           "release stays a draft: re-run the publish later, it resumes where it stopped")

    def _delete_asset(self, rel: Remote, remote: Remote) -> None:
        url = f"{self.base}/releases/{rel['id']}/assets/{remote['id']}"

        def gone() -> bool | None:
            return True if all(a["id"] != remote["id"] for a in self._assets(rel)) else None

        self._write(f"deleting attachment {remote['id']} ({remote['name']})", lambda: self.http.delete_if_present(url),
                    gone)
        self._hashes.pop(remote["id"], None)

    def _check_complete(self, rel: Remote, release: Release) -> None:
        """Re-read the draft: publishing creates the tag and notifies watchers, so only a complete one."""
        diffs = self._differences(self._assets(rel), release.assets)
        if diffs:
            raise PublishError(f"{self.repo}: draft {rel['id']} for {release.tag} is not complete "
                               f"({'; '.join(diffs)}); not published: re-run the publish")

    def _differences(self, remote: Iterable[Remote], local: Iterable[Asset]) -> list[str]:
        """Every asset that is missing, different, doubled or extra on Gitea, one phrase each."""
        by_name: dict[str, list[Remote]] = {}
        for item in remote:
            by_name.setdefault(item["name"], []).append(item)
        diffs = []
        for asset in local:
            got = by_name.pop(asset.name, [])
            if not got:
                diffs.append(f"{asset.name}: missing on Gitea")
            elif len(got) > 1:
                diffs.append(f"{asset.name}: {len(got)} attachments of that name on Gitea")
            elif not self._verified(got[0], asset):
                diffs.append(f"{asset.name}: {self._describe(got[0], asset)}")
        return diffs + [f"{name}: on Gitea but not in the local release" for name in sorted(by_name)]

    def _write(self, what: str, do: Callable[[], T], check: Callable[[], T | None]) -> T:
        return self.http.write_checked(what, do, check, self.write_attempts)


CREATE_FIXES = {
    404: "the commit is not in the repository on Gitea: push it (and the tag) to Gitea first",
    409: "another release uses the tag: check the Releases page on Gitea",
    422: "the repository may be empty, the tag protected (the token's user must be allowed to create it), "
         "or the title empty",
}
UPLOAD_FIXES = {
    400: "allow its file type in Gitea's [repository.release] ALLOWED_TYPES (empty allows every type)",
    404: "release attachments may be off: set [attachment] ENABLED = true on Gitea",
    413: "it is larger than Gitea (or its proxy, or a Forgejo quota) accepts: raise that limit",
}
