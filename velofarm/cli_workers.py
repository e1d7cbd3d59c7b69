"""Placeholder: this command group is filled in by its own change."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add this group's subcommands to the velofarm parser."""
