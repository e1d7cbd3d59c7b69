"""The master's artifact store: `<root>/<tag>/<platform>/`, complete or absent."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from velofarm.errors import ArtifactError
from velofarm.release.checksums import read_checksum_file, sha256_file

# Tags, platforms and archive names become folder and file names under the store: one path part
# each, so no value can reach outside it. '+' is allowed for semantic-version build metadata.
SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\Z", re.ASCII)


def check_part(value: str, what: str) -> str:
    """`value` if it is a single safe path part; ArtifactError naming it otherwise."""
    if not isinstance(value, str) or not SAFE_PART.match(value) or ".." in value or len(value) > 200:
        raise ArtifactError(f"{what} {value!r} cannot name a file in the artifact store: use letters, digits, "
                        "'.', '_', '+' and '-' only (no '/', no '..')")
    return value


def incoming_dir(root: Path, tag: str, platform: str, build_number: int) -> Path:
    """Where one build uploads its files before they are checked and moved into place."""
    check_part(tag, "tag")
    check_part(platform, "platform")
    return root / tag / f".incoming-{platform}-{int(build_number)}"


def commit_incoming(root: Path, tag: str, platform: str, build_number: int, archive: str,
                    received_sha256: str | None = None) -> Path:
    """Verify an uploaded archive against its .sha256 and atomically make it the platform's artifact.

    `received_sha256` is the digest the upload receiver computed from the bytes as they arrived;
    given it, the archive is not read a second time.
    """
    check_part(archive, "archive")
    incoming = incoming_dir(root, tag, platform, build_number)
    archive_path, sums_path = incoming / archive, incoming / f"{archive}.sha256"
    try:
        for path in (archive_path, sums_path):
            if not path.is_file():
                raise ArtifactError(f"tag {tag}: platform {platform}: {path.name} did not arrive at the master")
        expected, name = read_checksum_file(sums_path)
        actual = received_sha256 or sha256_file(archive_path)
        if name != archive or actual != expected:
            raise ArtifactError(f"tag {tag}: platform {platform}: {archive} arrived with SHA-256 {actual}, "
                            f"but the worker computed {expected}; the transfer was damaged: rebuild")
        for path in (archive_path, sums_path):
            path.chmod(0o644)  # uploads arrive 0600 (mkstemp); artifacts are served to ops
        final = root / tag / platform
        old = root / tag / f".old-{platform}-{build_number}"
        if final.exists():
            os.replace(final, old)  # a rebuild replaces the previous artifact whole
        try:
            os.replace(incoming, final)
        except OSError:
            if old.exists():
                os.replace(old, final)  # put the previous artifact back rather than leave none
            raise
        shutil.rmtree(old, ignore_errors=True)
        return final / archive
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


BUILD_IMAGE_FILE = "builder-image.json"  # beside a platform's archive: the image that built it


def write_build_image(folder: Path, image: str, digest: str) -> Path:
    """Record which container image built this platform's archive (temp name, then rename)."""
    path = folder / BUILD_IMAGE_FILE
    tmp = folder / f".{BUILD_IMAGE_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"builder_image": image, "builder_image_digest": digest}, indent=1) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_build_image(folder: Path) -> dict[str, str]:
    """What write_build_image recorded, or {} for an archive built on a plain worker."""
    path = folder / BUILD_IMAGE_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: str(data[k]) for k in ("builder_image", "builder_image_digest") if k in data}
