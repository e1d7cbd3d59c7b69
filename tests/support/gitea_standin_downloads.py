"""The Gitea stand-in's web routes a publisher downloads from (not part of the API description):
`/attachments/{uuid}` (a draft's attachments only with the token, as for release writers), the
public `/{owner}/{repo}/releases/download/{tag}/{name}`, and with `serve_direct` a redirect to a
separate storage host that refuses any request carrying a token (as a presigned S3 URL does)."""

from __future__ import annotations

import re
import secrets
import shutil
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from support.gitea_standin_faults import error_answer
from support.gitea_standin_json import StoredAttachment, StoredRelease
from support.standin_base import Faults, Seen


class DownloadsMixin:
    """Needs the stand-in's state: releases, files, faults, token, repo, serve_direct, storage_url."""

    releases: list[StoredRelease]
    requests: list[Seen]
    validation_errors: list[str]
    faults: Faults
    token: str
    repo: str
    serve_direct: bool
    storage_url: str
    docs_url: str
    _lock: threading.RLock
    files: Any
    _send: Any
    _drop: Any

    def serve_download(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        seen = Seen(h.command, path, "download", time.monotonic(), query)
        with self._lock:
            self.requests.append(seen)
        if h.host == "storage" and h.headers.get("Authorization"):
            self.validation_errors.append(f"storage GET {path}: a token was sent to the storage host")
            return self._send(h, seen, 400, {}, b"Only one auth mechanism allowed")
        fault = self.faults.take("download")
        if fault and fault.action == "drop" and not fault.after:
            return self._drop(h)
        if fault and fault.action != "drop":
            return self._send(h, seen, error_answer(fault, self.docs_url)[0], {}, b"error")
        with self._lock:
            found = self._find_download(h, path)
        if found is None:
            return self._send(h, seen, 404, {}, b"Not Found")
        if self.serve_direct and h.host == "web":
            location = f"{self.storage_url}/bucket/{found.uuid}?X-Amz-Signature={secrets.token_hex(8)}"
            return self._send(h, seen, 302, {"Location": location}, b"")
        seen.status = 200
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(found.size))
        h.end_headers()
        with open(self.files / found.uuid, "rb") as fh:
            if fault is not None:  # "drop" after: cut halfway through the body
                h.wfile.write(fh.read(found.size // 2))
                return self._drop(h)
            shutil.copyfileobj(fh, h.wfile, 1 << 20)

    def _find_download(self, h: BaseHTTPRequestHandler, path: str) -> StoredAttachment | None:
        authorized = h.headers.get("Authorization") == f"token {self.token}"
        if m := re.fullmatch(r"/(?:attachments|bucket)/(\w+)", path):
            for rel in self.releases:
                for a in rel.assets:  # a draft's attachments are for release writers only
                    if a.uuid == m.group(1) and (not rel.draft or authorized or h.host == "storage"):
                        return a
        elif m := re.fullmatch(r"/([^/]+/[^/]+)/releases/download/([^/]+)/([^/]+)", path):
            repo, tag, name = (urllib.parse.unquote(g) for g in m.groups())
            for rel in self.releases:
                if repo.lower() == self.repo and rel.tag_name == tag and not rel.draft:
                    return next((a for a in rel.assets if a.name == name), None)
        return None
