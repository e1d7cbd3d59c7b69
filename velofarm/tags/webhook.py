"""Tag webhooks from GitHub, Gitea and Forgejo: signature check and event parsing (no Buildbot)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

SIGNATURE_HEADERS = ("X-Hub-Signature-256", "X-Gitea-Signature", "X-Forgejo-Signature")
EVENT_HEADERS = ("X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event")
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Gitea-Delivery", "X-Forgejo-Delivery")
REPOSITORY_URL_FIELDS = ("clone_url", "html_url", "ssh_url", "git_url", "url")
ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class TagPush:
    """A tag that appeared in the repository (never a deletion)."""

    ref: str  # refs/tags/NAME
    revision: str  # the tagged commit when the event names it, else the tag object's sha
    repository: str
    who: str
    # Every address the payload gives for its repository (clone, web, ssh), to match the farm's.
    urls: tuple[str, ...] = field(default=(), compare=False)


def signature_of(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is the HMAC-SHA256 of body ('sha256=<hex>' for GitHub, bare hex for Gitea)."""
    if not header or not secret:
        return False
    given = header.strip()
    given = given[len("sha256="):] if given.startswith("sha256=") else given
    return hmac.compare_digest(given.lower(), signature_of(secret, body))


def parse_event(event: str, body: bytes) -> tuple[TagPush | None, str]:
    """The tag push in a webhook delivery, or None with the reason it starts nothing."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None, "body is not JSON"
    if not isinstance(payload, dict):
        return None, "body is not a JSON object"
    found = payload.get("repository")
    repository: dict[str, Any] = found if isinstance(found, dict) else {}
    repo = repository.get("clone_url") or repository.get("html_url", "")
    urls = tuple(str(repository[k]) for k in REPOSITORY_URL_FIELDS if isinstance(repository.get(k), str))
    who = (payload.get("sender") or {}).get("login", "webhook")
    if event == "push":
        ref = str(payload.get("ref", ""))
        if not ref.startswith("refs/tags/"):
            return None, f"push of {ref or 'nothing'} is not a tag"
        if payload.get("deleted") or str(payload.get("after", "")).strip("0") == "":
            return None, f"{ref} was deleted"
        head = payload.get("head_commit") or {}
        return TagPush(ref, str(head.get("id") or payload.get("after")), repo, who, urls), "tag pushed"
    if event == "create":
        if payload.get("ref_type") != "tag":
            return None, f"create of a {payload.get('ref_type')} is not a tag"
        if not isinstance(payload.get("ref"), str) or not payload["ref"]:
            return None, "create event names no tag"
        # A create event has no commit; the release resolves the tag itself.
        return (TagPush(f"refs/tags/{payload.get('ref')}", str(payload.get("sha", "")), repo, who, urls),
                "tag created")
    if event == "ping":
        return None, "ping"
    return None, f"event '{event}' is not a tag push"


def repository_key(url: str) -> str:
    """One spelling of a repository address: no scheme, user, trailing '/' or '.git', lower case.

    'https://github.com/O/N.git', 'git@github.com:O/N' and 'ssh://git@github.com/O/N' are alike.
    """
    text = url.strip().lower()
    scp = re.fullmatch(r"[^/@:]+@([^/:]+):(.*)", text)  # git@host:owner/name
    if scp:
        text = f"{scp[1]}/{scp[2]}"
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = re.sub(r"^[^/@]+@", "", text)
    text = text.rstrip("/")
    return text[:-4] if text.endswith(".git") else text


def is_for_repository(push: TagPush, repo_url: str) -> bool:
    """True when the delivery names the repository the farm releases (an org-wide hook sends all)."""
    want = repository_key(repo_url)
    return any(repository_key(url) == want for url in (push.urls or (push.repository,)) if url)
