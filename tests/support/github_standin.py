"""A stateful stand-in for GitHub Releases: an API host and an uploads host, real HTTP on 127.0.0.1.

Every request and every answer the stand-in gives is validated against the API descriptions in
`github_api` (the project's own, and GitHub's official one when VELOFARM_GITHUB_OPENAPI names it);
failures land in `validation_errors` (and an invalid request gets 400).
Uploads are streamed and hashed, never held in memory. Immutable repositories refuse asset
changes on a published release with 422 (the status the reference gives for immutable tags).
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Self

from openapi_core.testing import MockRequest

from support.github_api import SPEC_HOSTS, descriptions, request_error, response_errors, route
from support.github_records import StoredAsset, StoredRelease, stamp
from support.github_standin_downloads import serve_web_download
from support.github_standin_faults import DOCS, error_answer, github_faults
from support.standin_base import Fault, Handler, Seen, StandInServers, drain, drop, page_of, send

TOKEN = "ghp_standin0123456789abcdefSECRET"
DROP = object()
Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON body
NOT_FOUND: Answer = (404, {}, {"message": "Not Found"})


@dataclass
class Call:
    """One request being served: what the operations need."""

    h: Handler
    seen: Seen
    template: str
    params: dict[str, str]
    length: int
    fault: Fault | None = None


class GitHubStandIn(StandInServers):
    """Start with `with GitHubStandIn() as gh:`; point a client at `gh.api_url`."""

    def __init__(self, repo: str = "acme/velostream", token: str = TOKEN, *, immutable: bool = False,
                 max_per_page: int = 100, api_prefix: str = "", uploads_prefix: str = "",
                 keep_data: bool = False) -> None:
        super().__init__(github_faults())
        self.repo, self.token, self.immutable = repo.lower(), token, immutable
        # keep_data: uploaded bytes are kept and served at browser_download_url (github.com's web
        # download, outside the API description), for clients that download a release.
        self.keep_data: dict[tuple[str, str], bytes] | None = {} if keep_data else None
        self.max_per_page = max_per_page
        self.api_prefix, self.uploads_prefix = api_prefix, uploads_prefix
        self.releases: list[StoredRelease] = []
        self.latest_id: int | None = None
        self.expected: dict[str, dict[str, tuple[int, str]]] = {}  # tag -> name -> (size, digest)
        self._ids = iter(range(1001, 10**9))

    # -- life -------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        descriptions()
        api, up = self.start(("api", "uploads"))
        self.api_url = f"http://127.0.0.1:{api}{self.api_prefix}"
        self.uploads_url = f"http://127.0.0.1:{up}{self.uploads_prefix}"
        self.web_url = f"http://127.0.0.1:{api}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- seeding and inspection -------------------------------------------------------------------
    def add_release(self, tag: str, *, draft: bool = False, prerelease: bool = False,
                    assets: dict[str, bytes] | None = None, name: str | None = None) -> int:
        rel = StoredRelease(next(self._ids), tag, name or tag, "", draft, prerelease)
        if not draft:
            rel.published_at, rel.immutable = stamp(), self.immutable
        for asset_name, data in (assets or {}).items():
            rel.assets.append(StoredAsset(next(self._ids), asset_name, "application/gzip", size=len(data),
                                          digest="sha256:" + hashlib.sha256(data).hexdigest(),
                                          state="uploaded"))
        with self._lock:
            self.releases.append(rel)
        return rel.id

    def expect(self, tag: str, assets: dict[str, tuple[int, str]]) -> None:
        """At publish time, the release for `tag` must hold exactly these (size, sha256 hex)."""
        self.expected[tag] = {n: (s, "sha256:" + d) for n, (s, d) in assets.items()}

    def snapshot(self) -> list[dict[str, Any]]:
        """The end state, comparable between runs (ids and times left out)."""
        with self._lock:
            return [{"tag": r.tag_name, "name": r.name, "body": r.body, "draft": r.draft,
                     "prerelease": r.prerelease,
                     "assets": sorted((a.name, a.size, a.digest, a.state, a.content_type) for a in r.assets)}
                    for r in self.releases]

    # -- serving ------------------------------------------------------------------------------------
    def serve(self, h: Handler) -> None:
        split = urllib.parse.urlsplit(h.path)
        if h.host == "api" and self.keep_data is not None and serve_web_download(self, h, split.path):
            return None
        prefix = self.api_prefix if h.host == "api" else self.uploads_prefix
        path = split.path[len(prefix):] if split.path.startswith(prefix) else "\0"
        kind, template, params = route(h.host, h.command, path)
        seen = self.record(Seen(h.command, path, kind, time.monotonic(), dict(urllib.parse.parse_qsl(split.query))))
        c = Call(h, seen, template, params, int(h.headers.get("Content-Length") or 0))
        raw = b"" if kind == "upload" else h.rfile.read(c.length)
        refusal = self._check_headers(c) or self._validate_request(c, raw)
        if refusal is not None:
            return self._answer(c, *refusal)
        c.fault = fault = self.faults.take(kind)
        if fault and not fault.after and fault.action not in ("drop", "hold") and not fault.damages:
            return self._answer(c, *error_answer(fault))
        if fault and fault.action == "drop" and not fault.after and kind != "upload":
            return self._drop(c)
        with self._lock:
            result = getattr(self, f"_op_{kind}")(c)
        if result is DROP or (fault and fault.after and fault.action == "drop"):
            return self._drop(c)
        lost = fault and fault.after and not fault.damages  # done, but the answer is an error
        self._answer(c, *(error_answer(fault) if fault and lost else result))

    def _check_headers(self, c: Call) -> Answer | None:
        what, get = f"{c.seen.method} {c.seen.path} on the {c.h.host} host", c.h.headers.get
        if c.seen.kind == "unknown":
            self.validation_errors.append(f"{what}: no such endpoint")
            return 404, {}, {"message": "Not Found"}
        if get("Authorization") != f"Bearer {self.token}":
            return 401, {}, {"message": "Bad credentials"}
        if not get("User-Agent"):
            self.validation_errors.append(f"{what}: no User-Agent")
            return 403, {}, {"message": "Request forbidden by administrative rules. Please make sure your "
                                        "request has a User-Agent header"}
        if get("Accept") != "application/vnd.github+json":
            self.validation_errors.append(f"{what}: Accept is {get('Accept')!r}")
        if get("X-GitHub-Api-Version") != "2022-11-28":
            self.validation_errors.append(f"{what}: X-GitHub-Api-Version is {get('X-GitHub-Api-Version')!r}")
            return 400, {}, {"message": "Unsupported 'X-GitHub-Api-Version' header"}
        if c.seen.kind == "upload" and (get("Content-Length") is None or not get("Content-Type")):
            self.validation_errors.append(f"{what}: an upload needs Content-Length and Content-Type")
            return 411, {}, {"message": "Length Required"}
        if f"{c.params['owner']}/{c.params['repo']}".lower() != self.repo:
            return 404, {}, {"message": "Not Found"}
        return None

    def _validate_request(self, c: Call, raw: bytes) -> Answer | None:
        # The description lists only application/octet-stream for the raw upload body; GitHub takes
        # any media type there, so uploads are validated as octet-stream (the body is not buffered).
        upload = c.seen.kind == "upload"
        ctype = "application/octet-stream" if upload else c.h.headers.get("Content-Type", "application/json")
        request = MockRequest(SPEC_HOSTS[c.h.host], c.h.command, c.seen.path, args=c.seen.query,
                              headers=dict(c.h.headers), data=raw, content_type=ctype)
        try:
            c.seen.body = json.loads(raw) if raw else None
        except ValueError as exc:
            self.validation_errors.append(f"request {c.seen.method} {c.seen.path}: not JSON: {exc}")
            return 400, {}, {"message": f"Problems parsing JSON: {exc}"}
        why = request_error(request)
        if why:
            self.validation_errors.append(f"request {c.seen.method} {c.seen.path}: {why}")
            return 400, {}, {"message": f"Invalid request: {why}"}
        c.seen.request = request
        return None

    def _answer(self, c: Call, status: int, headers: dict[str, str], body: Any) -> None:
        if c.seen.kind == "upload":  # read what the client sends before answering, as GitHub does
            drain(c.h, c.length)
        if status >= 400 and isinstance(body, dict):
            body = {**body, "documentation_url": DOCS, "status": str(status)}
        data = b"" if status == 204 else json.dumps(body).encode()
        self._validate_response(c, status, data, headers)
        headers = {"X-GitHub-Api-Version-Selected": "2022-11-28", "x-ratelimit-limit": "5000",
                   "x-ratelimit-remaining": "4999", **headers}
        if status != 204:
            headers |= {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(data))}
        send(c.h, c.seen, status, headers, data)

    def _validate_response(self, c: Call, status: int, data: bytes, headers: dict[str, str]) -> None:
        what = f"response {status} to {c.seen.method} {c.seen.path}"
        for why in response_errors(c.seen.request, c.template, status, data, headers):
            self.validation_errors.append(f"{what}: {why}")

    def _drop(self, c: Call) -> None:
        c.seen.status = -1
        drop(c.h)

    # -- JSON the API returns -----------------------------------------------------------------------
    def user_json(self) -> dict[str, Any]:
        base = f"{self.api_url}/users/velofarm-bot"
        return {"login": "velofarm-bot", "id": 42, "node_id": "U_kgDOAAAAKg", "gravatar_id": "",
                "avatar_url": f"{self.web_url}/a.png", "url": base, "type": "User",
                "html_url": f"{self.web_url}/velofarm-bot",
                "site_admin": False, **{f"{k}_url": f"{base}/{k}" for k in (
                    "followers", "following", "gists", "starred", "subscriptions", "organizations", "repos",
                    "events", "received_events")}}

    def asset_json(self, rel: StoredRelease, a: StoredAsset) -> dict[str, Any]:
        download = f"{self.web_url}/{self.repo}/releases/download/{rel.tag_name}/{a.name}"
        return {"url": f"{self.api_url}/repos/{self.repo}/releases/assets/{a.id}", "id": a.id,
                "browser_download_url": download,
                "node_id": f"RA_{a.id}", "name": a.name, "label": a.label, "state": a.state,
                "content_type": a.content_type, "size": a.size, "digest": a.digest, "download_count": 0,
                "created_at": a.created_at, "updated_at": a.updated_at, "uploader": self.user_json()}

    def release_json(self, rel: StoredRelease) -> dict[str, Any]:
        url = f"{self.api_url}/repos/{self.repo}/releases/{rel.id}"
        shown_tag = f"untagged-{rel.id:x}" if rel.draft else rel.tag_name
        archive = None if rel.draft else f"{self.api_url}/repos/{self.repo}/tarball/{rel.tag_name}"
        return {"url": url, "html_url": f"{self.web_url}/{self.repo}/releases/tag/{shown_tag}",
                "assets_url": f"{url}/assets", "id": rel.id, "node_id": f"RE_{rel.id}",
                "upload_url": f"{self.uploads_url}/repos/{self.repo}/releases/{rel.id}/assets{{?name,label}}",
                "tarball_url": archive, "zipball_url": archive and archive.replace("tarball", "zipball"),
                "tag_name": rel.tag_name, "target_commitish": "main", "name": rel.name, "body": rel.body,
                "draft": rel.draft, "prerelease": rel.prerelease, "immutable": rel.immutable,
                "created_at": rel.created_at, "published_at": rel.published_at, "updated_at": rel.updated_at,
                "author": self.user_json(), "assets": [self.asset_json(rel, a) for a in rel.assets]}

    def _page(self, path: str, items: list[Any], query: dict[str, str]) -> Answer:
        per_page = min(int(query.get("per_page", 30)), self.max_per_page)
        shown, link = page_of(items, int(query.get("page", 1)), per_page, f"{self.api_url}{path}", query)
        return 200, {"Link": link} if link else {}, shown

    # -- operations (called with the lock held) -----------------------------------------------------
    def _frozen(self, rel: StoredRelease) -> bool:
        return rel.immutable and not rel.draft

    def _release(self, c: Call) -> StoredRelease | None:
        return next((r for r in self.releases if r.id == int(c.params["release_id"])), None)

    def _op_list(self, c: Call) -> Answer:
        newest = sorted(self.releases, key=lambda r: (r.created_at, r.id), reverse=True)
        return self._page(c.seen.path, [self.release_json(r) for r in newest], c.seen.query)

    def _op_list_assets(self, c: Call) -> Answer:
        rel = self._release(c)
        if rel is None:
            return NOT_FOUND
        return self._page(c.seen.path, [self.asset_json(rel, a) for a in rel.assets], c.seen.query)

    def _op_get_release(self, c: Call) -> Answer:
        rel = self._release(c)
        return (200, {}, self.release_json(rel)) if rel else NOT_FOUND

    def _op_get_tag(self, c: Call) -> Answer:
        rel = next((r for r in self.releases if r.tag_name == c.params["tag"] and not r.draft), None)
        return (200, {}, self.release_json(rel)) if rel else NOT_FOUND

    def _op_create(self, c: Call) -> Answer:
        body = c.seen.body
        used = [r for r in self.releases if r.tag_name == body["tag_name"] and not r.draft]
        if used:
            error = ({"resource": "Release", "code": "custom", "field": "tag_name",
                      "message": "tag_name was used by an immutable release"} if used[0].immutable else
                     {"resource": "Release", "code": "already_exists", "field": "tag_name"})
            return 422, {}, {"message": "Validation Failed", "errors": [error]}
        rel = StoredRelease(next(self._ids), body["tag_name"], body.get("name", body["tag_name"]),
                            body.get("body"), body.get("draft", False), body.get("prerelease", False))
        self.releases.append(rel)
        if not rel.draft:
            self._published(rel, body.get("make_latest", "true"))
        return 201, {"Location": self.release_json(rel)["url"]}, self.release_json(rel)

    def _op_patch(self, c: Call) -> Answer:
        rel, body = self._release(c), c.seen.body or {}
        if rel is None:
            return NOT_FOUND
        if self._frozen(rel) and (body.get("tag_name", rel.tag_name) != rel.tag_name or body.get("draft")):
            return 422, {}, {"message": "Cannot change the tag or draft state of an immutable release"}
        publishing = rel.draft and body.get("draft") is False
        for key in ("tag_name", "name", "body", "draft", "prerelease"):
            if key in body:
                setattr(rel, key, body[key])
        rel.updated_at = stamp()
        if publishing:
            self._published(rel, body.get("make_latest", "true"))
        return 200, {}, self.release_json(rel)

    def _published(self, rel: StoredRelease, make_latest: str) -> None:
        rel.published_at, rel.immutable = stamp(), self.immutable
        have = {a.name: (a.size, a.digest) for a in rel.assets if a.state == "uploaded"}
        self.publishes.append({"id": rel.id, "tag": rel.tag_name, "make_latest": make_latest,
                               "prerelease": rel.prerelease, "assets": dict(have)})
        if any(a.state != "uploaded" for a in rel.assets) or (
                rel.tag_name in self.expected and have != self.expected[rel.tag_name]):
            self.incomplete_publishes.append(f"{rel.tag_name} (release {rel.id}) published with {have}")
        if make_latest == "true" and not rel.prerelease:
            self.latest_id = rel.id

    def _op_delete(self, c: Call) -> Answer:
        for rel in self.releases:
            for a in rel.assets:
                if a.id == int(c.params["asset_id"]):
                    if self._frozen(rel):
                        return 422, {}, {"message": "Cannot delete an asset of an immutable release"}
                    rel.assets.remove(a)
                    return 204, {}, None
        return NOT_FOUND

    def _op_delete_release(self, c: Call) -> Answer:
        rel = self._release(c)
        if rel is None:
            return NOT_FOUND
        self.releases.remove(rel)
        return 204, {}, None

    def _op_upload(self, c: Call) -> Answer | object:
        rel, name, f = self._release(c), c.seen.query["name"], c.fault
        if rel is None:
            return NOT_FOUND
        if self._frozen(rel):
            return 422, {}, {"message": "Cannot upload assets to an immutable release"}
        if any(a.name == name for a in rel.assets):
            return 422, {}, {"message": "Validation Failed", "errors": [
                {"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}]}
        asset = StoredAsset(next(self._ids), name, c.h.headers["Content-Type"], c.seen.query.get("label"))
        rel.assets.append(asset)  # GitHub creates the asset first: a broken upload leaves it behind
        cut = c.length // 2 if f is not None and f.action in ("drop", "hold") and not f.after else c.length
        self._lock.release()  # stream the body without blocking other requests
        try:
            digest, got, kept = hashlib.sha256(), 0, []
            while got < cut and (chunk := c.h.rfile.read(min(cut - got, 1 << 20))):
                digest.update(chunk)
                got += len(chunk)
                if self.keep_data is not None:
                    kept.append(chunk)
            asset.size = got  # what GitHub shows of an upload still in flight
            if f is not None and f.action == "hold":
                f.hold()
        finally:
            self._lock.acquire()
        c.length -= got  # left unread: only when the fault cuts the body
        asset.size, asset.digest, asset.updated_at = got, "sha256:" + digest.hexdigest(), stamp()
        if c.length:
            return DROP
        if f is not None and f.action == "corrupt":
            asset.digest = "sha256:" + hashlib.sha256(b"corrupted in transit").hexdigest()
        asset.state = "uploaded"
        if self.keep_data is not None:
            self.keep_data[(rel.tag_name, name)] = b"".join(kept)
        return 201, {}, self.asset_json(rel, asset)
