"""Download a published release so `velofarm verify` can check it: a directory release (a folder or
its URL) or a GitHub release (its assets through the REST API). Standard library only."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from velofarm.errors import PublishError
from velofarm.release.model import NOTES_FILE, RELEASE_JSON


def _get(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "velofarm-verify", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return bytes(resp.read())
    except (urllib.error.URLError, OSError) as exc:
        raise PublishError(f"{url}: cannot download it ({exc})") from None


def _safe_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise PublishError(f"{where}: asset name {name!r} is not a plain file name; refusing it")
    return name


def download_directory_release(url: str, dest: Path) -> Path:
    """Every file a directory release lists in its release.json, fetched from `url` into `dest`."""
    base = url if url.endswith("/") else url + "/"
    meta_bytes = _get(base + RELEASE_JSON)
    try:
        assets = [_safe_name(a["name"], base + RELEASE_JSON) for a in json.loads(meta_bytes)["assets"]]
    except (ValueError, KeyError, TypeError):
        raise PublishError(f"{base}{RELEASE_JSON}: not a velofarm release.json") from None
    dest.mkdir(parents=True, exist_ok=True)
    (dest / RELEASE_JSON).write_bytes(meta_bytes)
    for name in [*assets, NOTES_FILE]:
        (dest / name).write_bytes(_get(base + urllib.parse.quote(name)))
    return dest


def download_github_release(api_url: str, repo: str, tag: str, dest: Path, token: str | None = None) -> Path:
    """A published GitHub release's assets, from their public download URLs as a user gets them (the
    token, if any, only reads the release), and its body as RELEASE_NOTES.md; GitHub keeps no release.json."""
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    where = f"{api_url.rstrip('/')}/repos/{repo}/releases/tags/{urllib.parse.quote(tag)}"
    try:
        release = json.loads(_get(where, headers))
        assets = [(_safe_name(a["name"], where), str(a["browser_download_url"])) for a in release["assets"]]
    except (ValueError, KeyError, TypeError):
        raise PublishError(f"{where}: not a GitHub release") from None
    dest.mkdir(parents=True, exist_ok=True)
    for name, url in assets:
        tmp = dest / f".{name}.part-{os.getpid()}"
        tmp.write_bytes(_get(url))
        shutil.move(tmp, dest / name)
    (dest / NOTES_FILE).write_text(str(release.get("body") or ""), encoding="utf-8")
    return dest
