"""What the GitHub stand-in holds: releases and their assets (what it saw is standin_base.Seen)."""

from __future__ import annotations

from dataclasses import dataclass, field

from support.standin_base import stamp


@dataclass
class StoredAsset:
    id: int
    name: str
    content_type: str
    label: str | None = None
    size: int = 0
    digest: str | None = None
    state: str = "open"
    created_at: str = field(default_factory=stamp)
    updated_at: str = field(default_factory=stamp)


@dataclass
class StoredRelease:
    id: int
    tag_name: str
    name: str | None
    body: str | None
    draft: bool
    prerelease: bool
    created_at: str = field(default_factory=stamp)
    published_at: str | None = None
    updated_at: str = field(default_factory=stamp)
    immutable: bool = False
    assets: list[StoredAsset] = field(default_factory=list)
