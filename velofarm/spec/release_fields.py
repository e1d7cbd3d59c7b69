"""Checks for the [release] fields the notes depend on (where assets are linked to, where the
changelog comes from), for the Gitea/Forgejo publisher's (`gitea_url`, `gitea_repo`,
`gitea_token_secret`), how many builds of each platform must agree (`reproduce_count()`) and how
long a release waits for a platform none of whose workers is connected (`platform_timeout()`) and
how long a platform's cargo build may run (`build_timeout()`).
farm.py's `_release` takes `notes_fields()` and `gitea_fields()`; each rule and its message live here.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from velofarm.errors import SpecError

NOTES_SOURCES = ("git", "changelog", "both")


def http_url(table: dict[str, Any], key: str, where: str, example: str) -> str:
    """table[key] as an http(s) URL without a trailing '/', or '' when unset; SpecError otherwise."""
    value = table.get(key, "")
    if value == "":
        return ""
    parsed = urllib.parse.urlsplit(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SpecError(f"{where}.{key}: {value!r} is not an http:// or https:// URL; "
                        f"set it to the address the files are served from, e.g. \"{example}\"")
    if parsed.query or parsed.fragment:
        raise SpecError(f"{where}.{key}: {value!r} has a query or fragment; the tag and asset name are "
                        "appended to it as path parts, so give the plain folder URL")
    return str(value).rstrip("/")


def notes_source(table: dict[str, Any], where: str) -> str:
    """Where the notes' changelog comes from: git history, CHANGELOG.md, or both (the default)."""
    value = table.get("notes", "both")
    if value not in NOTES_SOURCES:
        raise SpecError(f"{where}.notes: {value!r} is not one of {', '.join(NOTES_SOURCES)} "
                        "(git: from the commits; changelog: CHANGELOG.md's section for the version; "
                        "both: that section when there is one, and the commits)")
    return str(value)


def notes_fields(table: dict[str, Any], where: str) -> dict[str, str]:
    """[release] base_url and notes, validated, as ReleaseSettings keyword arguments."""
    return {"base_url": http_url(table, "base_url", where, "https://downloads.example.com/releases"),
            "notes": notes_source(table, where)}


@dataclass(frozen=True)
class GiteaFields:
    """The Gitea/Forgejo publisher's [release] fields (ReleaseSettings has them)."""

    gitea_url: str = ""  # the Gitea/Forgejo root URL (the API is {gitea_url}/api/v1)
    gitea_repo: str = ""
    gitea_token_secret: str = "gitea-token"


REPO_NAME = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"

GITEA_FIELDS = ("gitea_url", "gitea_repo", "gitea_token_secret")


def gitea_fields(table: dict[str, Any], where: str, publisher: str) -> dict[str, str]:
    """The Gitea/Forgejo fields, checked when they are set or when publisher = "gitea"."""
    url = str(table.get("gitea_url", "")).rstrip("/")
    repo = str(table.get("gitea_repo", ""))
    if (url or publisher == "gitea") and not re.match(r"^https?://[^/\s]+", url):
        raise SpecError(f"{where}.gitea_url: {url!r} needs a scheme and a host, e.g. "
                        "\"https://gitea.example.com\" (the root URL, without /api/v1)")
    if url.endswith("/api/v1"):
        raise SpecError(f"{where}.gitea_url: give the root URL without /api/v1 (velofarm adds it): "
                        f"\"{url[:-len('/api/v1')]}\"")
    if (repo or publisher == "gitea") and not re.match(REPO_NAME, repo):
        raise SpecError(f"{where}.gitea_repo: {repo!r}: set it to OWNER/NAME when publisher = \"gitea\"")
    secret = str(table.get("gitea_token_secret", "gitea-token"))
    if not secret:
        raise SpecError(f"{where}.gitea_token_secret: empty; name the secret that holds the token "
                        "(default \"gitea-token\")")
    return {"gitea_url": url, "gitea_repo": repo, "gitea_token_secret": secret}


def reproduce_count(table: dict[str, Any], where: str) -> int:
    """[release] reproduce: how many builds of each platform must be byte-identical (1 or 2)."""
    value = table.get("reproduce", 1)
    if value not in (1, 2) or isinstance(value, bool):
        raise SpecError(f"{where}.reproduce: must be 1 (one build per platform) or 2 (two builds that must be "
                        f"byte-identical before publishing), got {value!r}")
    return int(value)


DEFAULT_PLATFORM_TIMEOUT_MINUTES = 60
DEFAULT_BUILD_TIMEOUT_MINUTES = 180
MAX_TIMEOUT_MINUTES = 7 * 24 * 60


def _minutes(table: dict[str, Any], where: str, name: str, default: float, bounds: str) -> float:
    value = table.get(name, default)
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not 0 < value <= MAX_TIMEOUT_MINUTES):
        raise SpecError(f"{where}.{name}: must be a number of minutes above 0 and at most "
                        f"{MAX_TIMEOUT_MINUTES} (a week), got {value!r}; it bounds {bounds} (default {default})")
    return float(value)


def platform_timeout(table: dict[str, Any], where: str) -> float:
    """[release] platform_timeout_minutes: how long a platform build may wait with none of its
    workers connected before the release cancels it and fails (a fraction such as 0.5 is allowed)."""
    return _minutes(table, where, "platform_timeout_minutes", DEFAULT_PLATFORM_TIMEOUT_MINUTES,
                    "how long a release waits for a platform none of whose workers is connected")


def build_timeout(table: dict[str, Any], where: str) -> float:
    """[release] build_timeout_minutes: the longest a platform's cargo build may run, output or not
    (Buildbot's own limit only ends a command silent for 20 minutes)."""
    return _minutes(table, where, "build_timeout_minutes", DEFAULT_BUILD_TIMEOUT_MINUTES,
                    "how long a platform's cargo build may run before it is stopped and fails")
