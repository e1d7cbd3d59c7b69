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
from collections.abc import Callable

from velofarm.errors import PublishError
from velofarm.publish.forge import DraftReconciler, PublishOutcome, Remote, check_target, make_latest, repo_path
from velofarm.publish.http import GITEA, ApiError, HttpClient
from velofarm.release.model import Asset, Release

API_PREFIX = "/api/v1"
ROOT_URL = re.compile(r"^https?://[^/\s]+")


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
        check_target("Gitea", repo, token, token_secret)
        self.repo, self.log = repo, log
        self.gitea_url = gitea_url.rstrip("/")
        forge = dataclasses.replace(GITEA, token_fix=GITEA.token_fix.replace("gitea-token", token_secret))
        self.http = HttpClient(self.gitea_url + API_PREFIX, token, forge=forge, log=log, sleep=sleep,
                               clock=clock, scope=repo, max_retries=max_retries, timeout=timeout,
                               min_write_interval=min_write_interval, chunk_size=chunk_size)
        self.draft = DraftReconciler(self.http, repo, GiteaAttachments(self.http, repo, self.gitea_url), log,
                                     write_attempts)
        self.base = self.draft.base

    def __repr__(self) -> str:
        return f"GiteaPublisher({self.gitea_url!r}, {self.repo!r})"

    def publish(self, release: Release) -> PublishOutcome:
        """Create or resume the draft for `release.tag`, upload and verify its assets, publish it."""
        self.log(f"{self.repo}: publishing {release.tag} ({len(release.assets)} assets) to {self.gitea_url}")
        self._check_repository()
        rel = self._release_for(release.tag)
        if rel is not None and not rel.get("draft"):
            diffs = self.draft.asset_differences(rel, release) + self._tag_differences(release)
            return self.draft.already_published(rel, release, diffs, FIX_PUBLISHED)
        self._check_tag_free(release)
        if rel is not None:
            outcome_draft, rel = "reused", self.draft.resume_draft(rel, release, draft_changes(rel, release))
        else:
            outcome_draft, rel = "created", self._create_draft(release)
        out = PublishOutcome("published", rel["html_url"], rel["id"], draft=outcome_draft)
        out.actions.append(f"{outcome_draft} draft {rel['id']} at commit {release.commit[:12]}")
        self.draft.sync_assets(rel, release, out)
        self.draft.check_complete(rel, release)
        out.make_latest, latest_note = self._latest(release)
        final = self.draft.publish_draft(rel, release, {"draft": False, "prerelease": release.prerelease})
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

    def _get_if_present(self, url: str) -> Remote | None:
        """GET a document; None when Gitea answers 404 (no such release or tag yet)."""
        try:
            found: Remote = self.http.get(url)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return None
        return found

    def _release_for(self, tag: str) -> Remote | None:
        """The release (draft or published) for `tag`, or None."""
        rel = self._get_if_present(f"{self.base}/releases/tags/{urllib.parse.quote(tag, safe='')}")
        if rel is None:
            return None
        if rel.get("tag_name") != tag:  # Gitea matches tags case-insensitively
            raise PublishError(f"{self.repo}: Gitea has release {rel.get('id')} for tag {rel.get('tag_name')!r}, "
                               f"which Gitea treats as the same tag as {tag!r}: delete one of them on Gitea")
        return rel

    def _tag_commit(self, tag: str) -> str | None:
        """The commit the git tag points to on Gitea, or None while there is no such tag."""
        found = self._get_if_present(f"{self.base}/tags/{urllib.parse.quote(tag, safe='')}")
        return str(((found or {}).get("commit") or {}).get("sha", "")).lower() or None

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

    def _tag_differences(self, release: Release) -> list[str]:
        """A published release's tag must point at the release's commit: its one difference, if any."""
        sha = self._tag_commit(release.tag)
        if sha != release.commit.lower():
            return [f"tag {release.tag} points at {sha or 'nothing'}, not {release.commit[:12]}"]
        return []

    def _create_draft(self, release: Release) -> Remote:
        def refused(exc: ApiError) -> Remote:
            found = self._release_for(release.tag) if exc.status == 409 else None
            if found is not None and found.get("draft"):
                return found  # an earlier attempt created it (one release per tag)
            raise PublishError(f"{self.repo}: Gitea refused to create a draft for {release.tag}: {exc}; "
                               f"{CREATE_FIXES.get(exc.status, 'check the repository on Gitea')}") from None

        def find() -> Remote | None:  # the create may have gone through before the answer was lost
            return self._release_for(release.tag)

        # Forgejo refuses an empty name ("title is empty"); the commit SHA pins the tag Gitea writes at
        # publish (a draft creates no tag, and a branch name would be resolved only then).
        return self.draft.create_draft(release, release.title or release.tag, refused, find)

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


FIX_PUBLISHED = ": release a new version, or delete that release on Gitea by hand (its tag stays) and re-run"


def draft_changes(rel: Remote, release: Release) -> dict[str, object]:
    """What a reused draft needs changed; Gitea's PATCH ignores empty strings (it cannot clear a field),
    so only what it can do is asked for."""
    want = {"name": release.title, "body": release.notes, "prerelease": release.prerelease,
            "target_commitish": release.commit}
    return {k: v for k, v in want.items() if rel.get(k) != v and v != ""}


class GiteaAttachments:
    """A Gitea release's attachments, for the draft reconciler. They carry no checksum: each is checked
    by size, then downloaded back once and hashed. Same-named attachments are accepted."""

    forge, noun = "Gitea", "attachment"

    def __init__(self, http: HttpClient, repo: str, gitea_url: str) -> None:
        self.http, self.repo, self.gitea_url, self.base = http, repo, gitea_url, repo_path(repo)
        self._hashes: dict[int, tuple[int, str]] = {}  # attachment id -> what its download hashed to

    def list_assets(self, rel: Remote) -> list[Remote]:
        found: list[Remote] = self.http.get(f"{self.base}/releases/{rel['id']}/assets")  # not paginated
        return found

    def upload(self, rel: Remote, asset: Asset) -> Remote:
        url = f"{self.base}/releases/{rel['id']}/assets?" + urllib.parse.urlencode({"name": asset.name})
        got: Remote = self.http.upload(url, asset.path, asset.content_type, form_field="attachment")
        return got

    def refused(self, asset: Asset, exc: ApiError) -> None:
        raise PublishError(f"{self.repo}: Gitea refused {asset.name}: {exc}; "
                           f"{UPLOAD_FIXES.get(exc.status, 'check the release on Gitea')}") from None

    def asset_url(self, rel: Remote, remote: Remote) -> str:
        return f"{self.base}/releases/{rel['id']}/assets/{remote['id']}"

    def verified(self, remote: Remote, asset: Asset) -> bool:
        """The attachment is the local file: same size, and its download hashes to the same sha256."""
        return remote.get("size") == asset.size and self._digest(remote) == (asset.size, asset.sha256.lower())

    def describe(self, remote: Remote, asset: Asset) -> str:
        if remote.get("size") != asset.size:
            return f"{remote.get('size')} bytes, not {asset.size}"
        size, digest = self._digest(remote)
        return f"downloads as {size} bytes with sha256 {digest}, not {asset.sha256}"

    def forget(self, remote: Remote) -> None:
        self._hashes.pop(remote["id"], None)

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
