"""A stateful stand-in for Gitea/Forgejo releases: real HTTP on 127.0.0.1, the API under
`{url}/api/v1` and the web routes a publisher downloads from (`/attachments/{uuid}`).

Every API request and every answer is checked against the description the project carries
(tests/support/gitea-releases-api.json, a subset of Gitea's official Swagger 2.0 file) and, when
VELOFARM_GITEA_SWAGGER names it, against the full official file too; problems land in
`validation_errors` (an invalid request also gets 422, as Gitea's binding answers). It behaves as
Gitea's Go code does where the description says nothing: one release per tag (409), drafts create
no git tag (the tag is written at publish, at `target_commitish`), same-named attachments are
accepted, a cut upload stores nothing (the form is parsed before the attachment is created),
PATCH ignores empty strings, publishing resets `created_at`, lists page with `page`/`limit`
(at most 50) and answer `X-Total-Count` and `Link`. `serve_direct=True` answers downloads with a
redirect to a separate storage host, which refuses any request that carries a token.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from support.gitea_standin_downloads import DownloadsMixin
from support.gitea_standin_faults import error_answer, gitea_faults
from support.gitea_standin_json import JsonMixin, StoredAttachment, StoredRelease, stamp
from support.multipart_stream import Incomplete, boundary_of, read_form
from support.standin_base import Fault, Handler, Seen, StandInServers, drain, drop, page_of, send
from support.swagger2 import Swagger2

DESCRIPTION = Path(__file__).resolve().parent / "gitea-releases-api.json"
TOKEN = "gitea0standin0123456789abcdefSECRET"
MAIN_SHA = "9a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
KINDS = {"repoGet": "repo", "repoListReleases": "list", "repoCreateRelease": "create",
         "repoGetReleaseByTag": "get_tag", "repoGetRelease": "get_release", "repoEditRelease": "patch",
         "repoListReleaseAttachments": "list_assets", "repoCreateReleaseAttachment": "upload",
         "repoDeleteReleaseAttachment": "delete", "repoGetTag": "git_tag"}
Answer = tuple[int, dict[str, str], Any]
NOT_FOUND: Answer = (404, {}, {"message": "not found"})  # current Gitea; older ones add "errors": [...]
DROP = object()


@functools.lru_cache(maxsize=1)
def descriptions() -> tuple[Swagger2, ...]:
    """The carried description, and the official one when VELOFARM_GITEA_SWAGGER names it."""
    full = os.environ.get("VELOFARM_GITEA_SWAGGER")
    return (Swagger2(DESCRIPTION), *((Swagger2(Path(full)),) if full else ()))


@dataclass
class Call:
    h: Handler
    seen: Seen
    params: dict[str, str]
    fault: Fault | None = None
    parts: list[Any] = field(default_factory=list)


class GiteaStandIn(StandInServers, JsonMixin, DownloadsMixin):
    """`with GiteaStandIn() as gitea:`; point a publisher at `gitea.url` (the root URL)."""

    def __init__(self, repo: str = "acme/velostream", token: str = TOKEN, *, max_limit: int = 50,
                 sub_path: str = "", serve_direct: bool = False, known_commits: set[str] | None = None) -> None:
        super().__init__(gitea_faults())
        self.repo, self.token, self.max_limit = repo.lower(), token, max_limit
        self.sub_path, self.serve_direct, self.known_commits = sub_path, serve_direct, known_commits
        self.releases: list[StoredRelease] = []
        self.tags: dict[str, str] = {}  # git tag -> commit sha
        self.branches = {"main": MAIN_SHA}
        self.expected: dict[str, dict[str, tuple[int, str]]] = {}  # tag -> name -> (size, sha256)
        self._ids = iter(range(101, 10**9))
        self._order = iter(range(1, 10**9))  # created_at order: Gitea's list is newest first

    # -- life -------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        descriptions()
        self.files = Path(tempfile.mkdtemp(prefix="gitea-standin-"))
        ports = self.start(("web", "storage") if self.serve_direct else ("web",))
        self.url = f"http://127.0.0.1:{ports[0]}{self.sub_path}"
        self.storage_url = f"http://127.0.0.1:{ports[-1]}"
        self.api_url = f"{self.url}/api/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.files, ignore_errors=True)

    # -- seeding and inspection -------------------------------------------------------------------
    def add_release(self, tag: str, *, draft: bool = False, prerelease: bool = False, target: str = MAIN_SHA,
                    assets: dict[str, bytes] | None = None, name: str | None = None, body: str = "") -> int:
        with self._lock:
            rel = StoredRelease(next(self._ids), tag, target, name or tag, body, draft, prerelease,
                                order=next(self._order))
            for asset_name, data in (assets or {}).items():
                rel.assets.append(self._store(asset_name, data))
            if not draft:
                rel.published_at = stamp()
                self.tags.setdefault(tag, target)
            self.releases.append(rel)
        return rel.id

    def _store(self, name: str, data: bytes) -> StoredAttachment:
        uuid = secrets.token_hex(16)
        (self.files / uuid).write_bytes(data)
        return StoredAttachment(next(self._ids), uuid, name, len(data), hashlib.sha256(data).hexdigest())

    def expect(self, tag: str, assets: dict[str, tuple[int, str]]) -> None:
        """At publish time, the release for `tag` must hold exactly these (size, sha256 hex), once each."""
        self.expected[tag] = dict(assets)

    def snapshot(self) -> list[dict[str, Any]]:
        """The end state, comparable between runs (ids, uuids and times left out)."""
        with self._lock:
            return [{"tag": r.tag_name, "name": r.name, "body": r.body, "draft": r.draft,
                     "prerelease": r.prerelease, "target": r.target, "tag_commit": self.tags.get(r.tag_name),
                     "assets": sorted((a.name, a.size, a.sha256) for a in r.assets)} for r in self.releases]

    def latest(self) -> str | None:
        """What GET /releases/latest answers: the newest published final release."""
        final = [r for r in self.releases if not r.draft and not r.prerelease]
        return max(final, key=lambda r: r.order).tag_name if final else None

    # -- serving ------------------------------------------------------------------------------------
    def serve(self, h: Handler) -> None:
        split = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        path = split.path[len(self.sub_path):] if split.path.startswith(self.sub_path) else "\0"
        if h.host == "storage" or not path.startswith("/api/v1/"):
            return self.serve_download(h, path if h.host == "web" else split.path, query)
        found = descriptions()[0].operation(h.command, path)
        kind = KINDS.get(found[1]["operationId"], "unknown") if found else "unknown"
        seen = self.record(Seen(h.command, path, kind, time.monotonic(), query))
        c = Call(h, seen, {k: urllib.parse.unquote(v) for k, v in (found[2] if found else {}).items()})
        refusal = self._check_headers(c)
        if refusal is not None:
            drain(h, int(h.headers.get("Content-Length") or 0))
            return self._answer(c, *refusal)
        c.fault = fault = self.faults.take(kind)
        if not self._read_body(c):
            return None
        refusal = self._validate_request(c)
        if refusal is None and fault and not fault.after and fault.action != "drop" and not fault.damages:
            refusal = error_answer(fault, self.docs_url)
        if refusal is None and fault and fault.action == "drop" and not fault.after:
            return self._drop(c)
        if refusal is not None:
            return self._answer(c, *refusal)
        with self._lock:
            result = getattr(self, f"_op_{kind}")(c)
        if fault and fault.after and fault.action == "drop":
            return self._drop(c)
        self._answer(c, *(error_answer(fault, self.docs_url) if fault and fault.after else result))

    def _check_headers(self, c: Call) -> Answer | None:
        what, get = f"{c.seen.method} {c.seen.path}", c.h.headers.get
        if c.seen.kind == "unknown":
            self.validation_errors.append(f"{what}: no such endpoint in the description")
            return 404, {}, {"message": "not found"}
        if {"token", "access_token"} & set(c.seen.query):
            self.validation_errors.append(f"{what}: the token is in the query string")
        if get("Authorization") != f"token {self.token}":
            return 401, {}, {"message": "invalid username, password or token", "url": self.docs_url}
        if get("Accept") != "application/json":  # Forgejo answers a GitHub Accept with GitHub-shaped JSON
            self.validation_errors.append(f"{what}: Accept is {get('Accept')!r}, not application/json")
        if not get("User-Agent"):
            self.validation_errors.append(f"{what}: no User-Agent")
        if f"{c.params.get('owner')}/{c.params.get('repo')}".lower() != self.repo:
            return NOT_FOUND
        return None

    def _read_body(self, c: Call) -> bool:
        """Read the JSON body or stream the upload's form to disk; False when the connection was cut."""
        length, ctype = int(c.h.headers.get("Content-Length") or 0), c.h.headers.get("Content-Type", "")
        fault = c.fault
        if c.seen.kind != "upload":
            c.seen.raw = c.h.rfile.read(length)
            return True
        if fault and fault.action == "drop" and not fault.after:  # cut mid-body: Gitea stores nothing
            c.h.rfile.read(length // 2)
            self._drop(c)
            return False
        boundary = boundary_of(ctype)
        try:
            if ctype.startswith("multipart/form-data") and boundary:
                c.parts = read_form(c.h.rfile.read, length, boundary, Path(tempfile.mkdtemp(dir=self.files)))
            else:
                c.seen.raw = c.h.rfile.read(length)
        except Incomplete as exc:
            self.validation_errors.append(f"{c.seen.method} {c.seen.path}: broken form ({exc})")
            self._drop(c)
            return False
        return True

    def _validate_request(self, c: Call) -> Answer | None:
        c.seen.body = None
        ctype = c.h.headers.get("Content-Type", "")
        if c.seen.raw and c.seen.kind != "upload":
            try:
                c.seen.body = json.loads(c.seen.raw)
            except ValueError:
                self.validation_errors.append(f"{c.seen.method} {c.seen.path}: the body is not JSON")
                return 400, {}, {"message": "the body is not JSON", "url": self.docs_url}
        form = {p.field: "file" if p.filename is not None else "text" for p in c.parts} or None
        problems = [p for d in descriptions() for p in
                    d.check_request(c.seen.method, c.seen.path, c.seen.query, ctype, c.seen.body, form)]
        if problems:
            self.validation_errors += problems
            return 422, {}, {"message": "; ".join(problems), "url": self.docs_url}
        return None

    def _answer(self, c: Call, status: int, headers: dict[str, str], body: Any) -> None:
        if status >= 400 and isinstance(body, dict):
            body = {"url": self.docs_url, **body}
        for d in descriptions():
            self.validation_errors += d.check_response(c.seen.method, c.seen.path, status,
                                                       None if status == 204 else body)
        data = b"" if status == 204 else json.dumps(body).encode()
        self._send(c.h, c.seen, status, {**headers, "Content-Type": "application/json;charset=utf-8"}, data)

    def _send(self, h: Handler, seen: Seen, status: int, headers: dict[str, str], data: bytes) -> None:
        send(h, seen, status, {**headers, "Content-Length": str(len(data))}, data)

    def _drop(self, c: Call | Handler) -> None:
        drop(c.h if isinstance(c, Call) else c)

    # -- operations (called with the lock held) -----------------------------------------------------
    def _release(self, c: Call) -> StoredRelease | None:
        return next((r for r in self.releases if r.id == int(c.params["id"])), None)

    def _op_repo(self, c: Call) -> Answer:
        return 200, {}, self.repo_json()

    def _op_list(self, c: Call) -> Answer:
        wanted = [r for r in sorted(self.releases, key=lambda r: -r.order)
                  if c.seen.query.get("draft", [str(r.draft).lower()])[0] == str(r.draft).lower()
                  and c.seen.query.get("pre-release", [str(r.prerelease).lower()])[0] == str(r.prerelease).lower()]
        limit = int(c.seen.query.get("limit", ["0"])[0])
        limit = 30 if limit <= 0 else min(limit, self.max_limit)
        page = max(int(c.seen.query.get("page", ["1"])[0]), 1)
        shown, link = page_of(wanted, page, limit, f"{self.api_url}{c.seen.path[len('/api/v1'):]}", {"limit": limit})
        headers = {"X-Total-Count": str(len(wanted)), **({"Link": link} if link else {})}
        return 200, headers, [self.release_json(r) for r in shown]

    def _op_get_tag(self, c: Call) -> Answer:
        rel = next((r for r in self.releases if r.tag_name.lower() == c.params["tag"].lower()), None)  # drafts too
        return (200, {}, self.release_json(rel)) if rel else NOT_FOUND

    def _op_get_release(self, c: Call) -> Answer:
        rel = self._release(c)
        return (200, {}, self.release_json(rel)) if rel else NOT_FOUND

    def _op_git_tag(self, c: Call) -> Answer:
        tag = c.params["tag"]
        return (200, {}, self.tag_json(tag, self.tags[tag])) if tag in self.tags else NOT_FOUND

    def _resolve(self, target: str) -> str | None:
        if target in self.branches:
            return self.branches[target]
        ok = re.fullmatch(r"[0-9a-f]{40}", target) and (self.known_commits is None or target in self.known_commits)
        return target if ok else None

    def _op_create(self, c: Call) -> Answer:
        body = c.seen.body
        tag, target = body["tag_name"], body.get("target_commitish") or "main"
        if any(r.tag_name.lower() == tag.lower() for r in self.releases):
            return 409, {}, {"message": "release already exists"}
        if not body.get("name"):
            return 422, {}, {"message": "title is empty"}  # Forgejo; Gitea accepts it
        if tag in self.tags:
            target = self.tags[tag]  # an existing tag decides; the target is ignored
        elif self._resolve(target) is None:
            return 404, {}, {"message": f"target couldn't be found: {target}"}
        rel = StoredRelease(next(self._ids), tag, target, body["name"], body.get("body", ""),
                            bool(body.get("draft")), bool(body.get("prerelease")), order=next(self._order))
        self.releases.append(rel)
        if not rel.draft:
            self._published(rel)
        return 201, {}, self.release_json(rel)

    def _op_patch(self, c: Call) -> Answer:
        rel, body = self._release(c), c.seen.body or {}
        if rel is None:
            return NOT_FOUND
        for key, attr in (("tag_name", "tag_name"), ("name", "name"), ("body", "body"),
                          ("target_commitish", "target")):
            if body.get(key):  # Gitea applies only non-empty strings
                setattr(rel, attr, body[key])
        publishing = rel.draft and body.get("draft") is False
        for key in ("draft", "prerelease"):
            if key in body:
                setattr(rel, key, bool(body[key]))
        if publishing:
            self._published(rel)
        return 200, {}, self.release_json(rel)

    def _published(self, rel: StoredRelease) -> None:
        if rel.tag_name not in self.tags:
            self.tags[rel.tag_name] = self._resolve(rel.target) or rel.target
        rel.published_at, rel.order = stamp(), next(self._order)  # publishing resets created_at
        rel.created_at = rel.published_at
        have = [(a.name, (a.size, a.sha256)) for a in rel.assets]
        self.publishes.append({"id": rel.id, "tag": rel.tag_name, "assets": dict(have)})
        want = self.expected.get(rel.tag_name)
        if want is not None and (sorted(have) != sorted(want.items())):
            self.incomplete_publishes.append(f"{rel.tag_name} (release {rel.id}) published with {have}")

    def _op_list_assets(self, c: Call) -> Answer:
        rel = self._release(c)
        return (200, {}, [self.attachment_json(a) for a in rel.assets]) if rel else NOT_FOUND

    def _op_delete(self, c: Call) -> Answer:
        rel = self._release(c)
        found = next((a for a in rel.assets if a.id == int(c.params["attachment_id"])), None) if rel else None
        if rel is None or found is None:
            return NOT_FOUND
        rel.assets.remove(found)
        (self.files / found.uuid).unlink(missing_ok=True)
        return 204, {}, None

    def _op_upload(self, c: Call) -> Answer:
        rel, f = self._release(c), c.fault
        if rel is None:
            return NOT_FOUND
        part = next((p for p in c.parts if p.field == "attachment" and p.filename is not None), None)
        name = (c.seen.query.get("name") or [""])[0] or (part.filename if part else "")
        if part is None or not name:
            return 400, {}, {"message": "Could not determine name of attachment."}
        a = StoredAttachment(next(self._ids), secrets.token_hex(16), name, part.size, part.sha256)
        os.replace(part.path, self.files / a.uuid)
        if f is not None and f.damages:  # same size with a byte flipped, or the last byte lost
            data = bytearray((self.files / a.uuid).read_bytes())
            data = data[:-1] if f.action == "truncate" else data[:-1] + bytes([data[-1] ^ 0xFF])
            (self.files / a.uuid).write_bytes(data)
            a.size, a.sha256 = len(data), hashlib.sha256(data).hexdigest()
        rel.assets.append(a)  # duplicates are accepted, as Gitea does
        return 201, {}, self.attachment_json(a)
