"""github.com's web download of a published release's asset (browser_download_url), for a stand-in
made with keep_data=True. It is not part of the REST API description, so it is served as is."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any


def serve_web_download(standin: Any, h: Any, path: str) -> bool:
    """Answer GET /OWNER/REPO/releases/download/TAG/NAME from the kept upload; False if not that path."""
    web = re.fullmatch(rf"/{re.escape(standin.repo)}/releases/download/([^/]+)/([^/]+)", path, re.IGNORECASE)
    if h.command != "GET" or web is None:
        return False
    tag, name = (urllib.parse.unquote(g) for g in web.groups())
    with standin._lock:
        published = any(r.tag_name == tag and not r.draft for r in standin.releases)
        data = standin.keep_data.get((tag, name)) if published else None
    body = data if data is not None else b"Not Found"
    h.send_response(200 if data is not None else 404)
    h.send_header("Content-Type", "application/octet-stream")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)
    return True
