"""The Gitea stand-in's stored state and the JSON Gitea answers for it (shapes from the description)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from support.standin_base import stamp


@dataclass
class StoredAttachment:
    id: int
    uuid: str
    name: str
    size: int
    sha256: str
    created_at: str = field(default_factory=stamp)


@dataclass
class StoredRelease:
    id: int
    tag_name: str
    target: str
    name: str
    body: str
    draft: bool
    prerelease: bool
    order: int = 0
    created_at: str = field(default_factory=stamp)
    published_at: str = ""
    assets: list[StoredAttachment] = field(default_factory=list)


class JsonMixin:
    """JSON documents of the stand-in; needs `url`, `api_url`, `repo` and `branches`."""

    url: str
    api_url: str
    repo: str
    branches: dict[str, str]

    @property
    def docs_url(self) -> str:
        return f"{self.url}/api/swagger"

    def user_json(self) -> dict[str, Any]:
        return {"id": 1, "login": "velofarm-bot", "login_name": "", "source_id": 0, "full_name": "velofarm bot",
                "email": "velofarm-bot@noreply.localhost", "avatar_url": f"{self.url}/avatars/1",
                "language": "", "is_admin": False, "last_login": stamp(), "created": stamp(),
                "restricted": False, "active": True, "prohibit_login": False, "location": "", "website": "",
                "description": "", "visibility": "public", "followers_count": 0, "following_count": 0,
                "starred_repos_count": 0}

    def repo_json(self) -> dict[str, Any]:
        name = self.repo.split("/")[1]
        return {"id": 7, "owner": self.user_json(), "name": name, "full_name": self.repo, "description": "",
                "empty": False, "private": True, "fork": False, "template": False, "mirror": False, "size": 1,
                "html_url": f"{self.url}/{self.repo}", "url": f"{self.api_url}/repos/{self.repo}",
                "clone_url": f"{self.url}/{self.repo}.git", "default_branch": "main", "archived": False,
                "has_releases": True, "release_counter": 0, "object_format_name": "sha1",
                "created_at": stamp(), "updated_at": stamp()}

    def attachment_json(self, a: StoredAttachment) -> dict[str, Any]:
        return {"id": a.id, "name": a.name, "size": a.size, "download_count": 0, "created_at": a.created_at,
                "uuid": a.uuid, "browser_download_url": f"{self.url}/attachments/{a.uuid}"}

    def release_json(self, rel: StoredRelease) -> dict[str, Any]:
        url = f"{self.api_url}/repos/{self.repo}/releases/{rel.id}"
        web = f"{self.url}/{self.repo}"
        return {"id": rel.id, "tag_name": rel.tag_name, "target_commitish": rel.target, "name": rel.name,
                "body": rel.body, "url": url, "html_url": f"{web}/releases/tag/{rel.tag_name}",
                "tarball_url": f"{web}/archive/{rel.tag_name}.tar.gz",
                "zipball_url": f"{web}/archive/{rel.tag_name}.zip", "upload_url": f"{url}/assets",
                "draft": rel.draft, "prerelease": rel.prerelease, "created_at": rel.created_at,
                "published_at": rel.published_at or rel.created_at, "author": self.user_json(),
                "assets": [self.attachment_json(a) for a in rel.assets]}

    def tag_json(self, tag: str, sha: str) -> dict[str, Any]:
        web = f"{self.url}/{self.repo}"
        return {"name": tag, "message": "", "id": sha,
                "commit": {"url": f"{self.api_url}/repos/{self.repo}/git/commits/{sha}", "sha": sha,
                           "created": stamp()},
                "zipball_url": f"{web}/archive/{tag}.zip", "tarball_url": f"{web}/archive/{tag}.tar.gz"}
