"""Tag webhooks from GitHub, Gitea and Forgejo: signature check and event parsing (no Buildbot)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

SIGNATURE_HEADERS = ("X-Hub-Signature-256", "X-Gitea-Signature", "X-Forgejo-Signature")
EVENT_HEADERS = ("X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event")
ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class TagPush:
    """A tag that appeared in the repository (never a deletion)."""

    ref: str  # refs/tags/NAME
    revision: str  # the tagged commit when the event names it, else the tag object's sha
    repository: str
    who: str


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
    repo = (payload.get("repository") or {}).get("clone_url") or (payload.get("repository") or {}).get("html_url", "")
    who = (payload.get("sender") or {}).get("login", "webhook")
    if event == "push":
        ref = str(payload.get("ref", ""))
        if not ref.startswith("refs/tags/"):
            return None, f"push of {ref or 'nothing'} is not a tag"
        if payload.get("deleted") or str(payload.get("after", "")).strip("0") == "":
            return None, f"{ref} was deleted"
        head = payload.get("head_commit") or {}
        return TagPush(ref, str(head.get("id") or payload.get("after")), repo, who), "tag pushed"
    if event == "create":
        if payload.get("ref_type") != "tag":
            return None, f"create of a {payload.get('ref_type')} is not a tag"
        if not isinstance(payload.get("ref"), str) or not payload["ref"]:
            return None, "create event names no tag"
        # A create event has no commit; the release resolves the tag itself.
        return TagPush(f"refs/tags/{payload.get('ref')}", str(payload.get("sha", "")), repo, who), "tag created"
    if event == "ping":
        return None, "ping"
    return None, f"event '{event}' is not a tag push"
