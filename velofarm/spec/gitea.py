"""The [release] fields of the Gitea/Forgejo publisher: `gitea_url`, `gitea_repo`, `gitea_token_secret`.

Pure (part of spec/): checked when farm.toml is read, so a bad URL or repository is refused before
anything is built.
"""

from __future__ import annotations

import re
from typing import Any

from velofarm.errors import SpecError

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
