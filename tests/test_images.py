"""The builder image's inputs: the host's apt mirror (never hard-coded) and a tag that hashes every input."""

from __future__ import annotations

from pathlib import Path

import pytest

from velofarm.errors import ImageError
from velofarm.images.base import AptSource, base_tag, host_mirror, read_apt_sources, sources_list
from velofarm.images.builder import IMAGE_DIR, inputs_hash

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example.internal/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example.internal/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example.internal/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_sources_give_the_mirror_and_the_images_sources_list(tmp_path: Path) -> None:
    folder = tmp_path / "sources.list.d"
    folder.mkdir()
    (folder / "debian.sources").write_text(DEB822)
    sources = read_apt_sources((folder, tmp_path / "sources.list"))
    assert host_mirror(sources) == "http://mirror.example.internal/debian"
    assert sources_list(sources) == (
        "deb http://mirror.example.internal/debian bookworm main contrib\n"
        "deb http://mirror.example.internal/debian bookworm-updates main contrib\n"
        "deb http://mirror.example.internal/debian-security bookworm-security main\n")


def test_one_line_sources_list_is_read_too(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("# a comment\ndeb-src http://x/debian bookworm main\n"
                                           "deb [arch=amd64 signed-by=/k.gpg] http://ftp.example.org/debian bookworm main\n")
    sources = read_apt_sources((tmp_path / "none.d", tmp_path / "sources.list"))
    assert sources == [AptSource("http://ftp.example.org/debian", ("bookworm",), ("main",))]


def test_no_bookworm_entry_is_an_error_naming_the_files_and_the_fix() -> None:
    with pytest.raises(ImageError, match=r"sources.list: no 'deb' entry for suite 'bookworm'; .*--mirror URL"):
        host_mirror([AptSource("http://x/debian", ("trixie",), ("main",))])


def test_the_base_tag_changes_with_the_mirror() -> None:
    one = base_tag("http://a/debian", "deb http://a/debian bookworm main\n")
    two = base_tag("http://b/debian", "deb http://b/debian bookworm main\n")
    assert one.startswith("velofarm-base:bookworm-") and one != two
    assert one == base_tag("http://a/debian", "deb http://a/debian bookworm main\n")


def test_the_builder_tag_hashes_the_dockerfile_the_wheels_and_the_base(tmp_path: Path) -> None:
    for name in ("Dockerfile", "start-worker.sh"):
        (tmp_path / name).write_bytes((IMAGE_DIR / name).read_bytes())
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "buildbot_worker-4.3.0-py3-none-any.whl").write_bytes(b"wheel")
    first = inputs_hash(tmp_path, "sha256:base1", "deb http://a/debian bookworm main\n")
    assert first == inputs_hash(tmp_path, "sha256:base1", "deb http://a/debian bookworm main\n")
    assert first != inputs_hash(tmp_path, "sha256:base2", "deb http://a/debian bookworm main\n")
    assert first != inputs_hash(tmp_path, "sha256:base1", "deb http://b/debian bookworm main\n")
    (tmp_path / "Dockerfile").write_text((IMAGE_DIR / "Dockerfile").read_text() + "# changed\n")
    changed = inputs_hash(tmp_path, "sha256:base1", "deb http://a/debian bookworm main\n")
    (tmp_path / "wheels" / "buildbot_worker-4.3.0-py3-none-any.whl").write_bytes(b"other wheel")
    assert len({first, changed, inputs_hash(tmp_path, "sha256:base1", "deb http://a/debian bookworm main\n")}) == 3


def test_the_dockerfile_takes_its_base_as_an_argument_and_installs_every_image_platforms_toolchain() -> None:
    text = (IMAGE_DIR / "Dockerfile").read_text()
    assert "ARG BASE=debian:bookworm-slim\nFROM ${BASE}" in text
    for package in ("libstd-rust-dev:arm64", "gcc-aarch64-linux-gnu", "qemu-user", "libstd-rust-dev-windows",
                    "gcc-mingw-w64-x86-64", "wine64", "python3-venv", "git"):
        assert package in text
    assert "--no-index" in text  # buildbot-worker from the wheels in the context, not from PyPI
