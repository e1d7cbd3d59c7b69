"""What the GitHub stand-in holds (releases and their assets) and what it saw (each request)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Seen:
    method: str
    path: str
    kind: str
    at: float  # time.monotonic()
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    status: int = 0
    request: Any = None  # the MockRequest that passed validation


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
