"""One name for a thing in the UI: builder tags say where a platform builds and what it targets."""

from __future__ import annotations

from pathlib import Path

from conftest import FARM_TOML

from velofarm.buildmaster.config import builders
from velofarm.spec.farm import load_spec


def test_builder_tags_say_where_a_platform_builds_and_what_it_targets(tmp_path: Path) -> None:
    spec = load_spec(FARM_TOML)
    tags = {b.name: b.tags for b in builders(spec, tmp_path)}
    assert tags["build-windows-x86_64-gnu"] == ["platform", "on-linux", "for-windows", "x86_64", "cargo"]
    assert tags["build-windows-x86_64-msvc"][:3] == ["platform", "on-windows", "for-windows"]
    assert tags["build-macos-arm64"] == ["platform", "on-macos", "for-macos", "aarch64", "cargo"]
    assert tags["build-linux-arm64-musl"] == ["platform", "on-linux", "for-linux", "aarch64", "cross"]
    assert tags["release"] == ["release"]
