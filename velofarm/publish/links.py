"""Where a published release can be downloaded and read: the URLs the notes and release.json carry.

Pure: computed from farm.toml's [release] settings alone, so the notes written before publishing
already hold the addresses the publisher will create.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from velofarm.spec.farm import ReleaseSettings


def _part(text: str) -> str:
    # A tag such as v1.0.0+build.5 stays readable; anything unsafe in a path is escaped.
    return urllib.parse.quote(text, safe="+")


def github_web_url(api_url: str) -> str:
    """The web host of a GitHub API: api.github.com -> github.com, https://HOST/api/v3 -> https://HOST."""
    parts = urllib.parse.urlsplit(api_url.rstrip("/"))
    host, path = parts.netloc, parts.path
    if path.endswith("/api/v3"):
        path = path.removesuffix("/api/v3")
    elif host.startswith("api."):
        host = host.removeprefix("api.")  # github.com and GHE.com (api.TENANT.ghe.com)
    return urllib.parse.urlunsplit((parts.scheme, host, path, "", ""))


def _forge_repo_url(settings: ReleaseSettings) -> str:
    """https://HOST/OWNER/REPO of the forge releases go to, or '' for the directory publisher."""
    if settings.publisher == "github":
        return f"{github_web_url(settings.github_api_url)}/{settings.github_repo}"
    if settings.publisher == "gitea":  # Gitea/Forgejo: the same /releases/download/TAG/ASSET paths
        return f"{settings.gitea_url.rstrip('/')}/{settings.gitea_repo}"
    return ""


def asset_url(settings: ReleaseSettings, tag: str, asset: str) -> str:
    """The download URL of one asset; for a directory without base_url, the path next to the notes."""
    forge = _forge_repo_url(settings)
    if forge:
        return f"{forge}/releases/download/{_part(tag)}/{_part(asset)}"
    if settings.base_url:
        return f"{settings.base_url}/{_part(tag)}/{_part(asset)}"
    return _part(asset)


def release_page_url(settings: ReleaseSettings, tag: str) -> str:
    """The page (or folder) that shows the release; '' when only a local folder holds it."""
    forge = _forge_repo_url(settings)
    if forge:
        return f"{forge}/releases/tag/{_part(tag)}"
    return f"{settings.base_url}/{_part(tag)}/" if settings.base_url else ""


def changelog_links(settings: ReleaseSettings) -> dict[str, str]:
    """URL prefixes for the changelog: "pull" + number, "commit" + sha; none when there is no forge."""
    forge = _forge_repo_url(settings)
    if not forge:
        return {}
    pulls = "pulls" if settings.publisher == "gitea" else "pull"  # Gitea/Forgejo: /pulls/N
    return {"pull": f"{forge}/{pulls}/", "commit": f"{forge}/commit/"}


def is_absolute(url: str) -> bool:
    """True for a URL a browser or curl can fetch from anywhere (not a path next to the notes)."""
    return urllib.parse.urlsplit(url).scheme in ("http", "https")


def describe_target(settings: ReleaseSettings, directory: Any, tag: str) -> str:
    """Where a release of `tag` would be published, in words (for `velofarm plan`)."""
    page = release_page_url(settings, tag)
    if settings.publisher == "directory":
        where = f"{directory}/{tag}/"
        return f"{where} (served as {page})" if page else where
    return page
