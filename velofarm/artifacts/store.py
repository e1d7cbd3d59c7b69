"""The master's artifact store: one folder per build, complete or absent.

    <root>/<tag>/<platform>/builds/<build id>/   <archive>, <archive>.sha256, build.json
    <root>/<tag>/<platform>/                     the newest build's archive and .sha256 (downloads)

A release reads only the builds it triggered (by build id), never "whatever is newest": a dry run
or rebuild of the same tag that lands meanwhile adds a folder beside them and changes nothing the
release publishes. `build.json` is written by the master from its own records of the build
(build id and number, builder, worker, the commit the coordinator resolved), never from anything
the worker says.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from velofarm.errors import ArtifactError
from velofarm.release.checksums import read_checksum_file, sha256_file

# Tags, platforms and archive names become folder and file names under the store: one path part
# each, so no value can reach outside it. '+' is allowed for semantic-version build metadata.
SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\Z", re.ASCII)
BUILD_JSON = "build.json"
BUILDS = "builds"


def check_part(value: str, what: str) -> str:
    """`value` if it is a single safe path part; ArtifactError naming it otherwise."""
    if not isinstance(value, str) or not SAFE_PART.match(value) or ".." in value or len(value) > 200:
        raise ArtifactError(f"{what} {value!r} cannot name a file in the artifact store: use letters, digits, "
                        "'.', '_', '+' and '-' only (no '/', no '..')")
    return value


@dataclass(frozen=True)
class BuildIdentity:
    """Which build made a stored archive, as the master knows it (build.json; release.json copies it)."""

    tag: str
    platform: str
    build_id: int
    build_number: int
    builder: str
    worker: str
    commit: str
    archive: str = ""
    sha256: str = ""
    signed: dict[str, Any] | None = None  # Authenticode: what was signed, the unsigned archive's digest

    def describe(self) -> str:
        return f"{self.builder} #{self.build_number} (build {self.build_id}, worker {self.worker})"


def incoming_dir(root: Path, tag: str, platform: str, build_id: int) -> Path:
    """Where one build uploads its files before they are checked and moved into place."""
    check_part(tag, "tag")
    check_part(platform, "platform")
    return root / tag / f".incoming-{platform}-{int(build_id)}"


def build_dir(root: Path, tag: str, platform: str, build_id: int) -> Path:
    """The folder holding what one build stored."""
    check_part(tag, "tag")
    check_part(platform, "platform")
    return root / tag / platform / BUILDS / str(int(build_id))


def read_build_identity(folder: Path) -> BuildIdentity:
    """The build.json of one build folder; ArtifactError naming the file if it is unusable."""
    path = folder / BUILD_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return BuildIdentity(**data)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing; the archive beside it is not bound to a build: rebuild") from None
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a build record ({exc}); rebuild the platform") from None


Sign = Callable[[Path], dict[str, Any]]


def commit_incoming(root: Path, record: BuildIdentity, received_sha256: str | None = None,
                    sign: Sign | None = None) -> Path:
    """Verify an uploaded archive against its .sha256, record its build, move it into place.

    `received_sha256` is the digest the upload receiver computed from the bytes as they arrived;
    given it, the archive is not read a second time. `sign`, given, re-signs the archive in the
    incoming folder (Authenticode, on the master) before anything becomes visible.
    """
    tag, platform, archive = record.tag, record.platform, check_part(record.archive, "archive")
    incoming = incoming_dir(root, tag, platform, record.build_id)
    try:
        digest = _verified_upload(incoming, tag, platform, archive, received_sha256)
        signed = sign(incoming / archive) if sign else None
        if signed:
            digest = read_checksum_file(incoming / f"{archive}.sha256")[0]
        record = BuildIdentity(**{**asdict(record), "sha256": digest, "signed": signed})
        _write_json(incoming / BUILD_JSON, asdict(record))
        for path in incoming.iterdir():
            path.chmod(0o600)  # private like the rest of the master's folder; the master serves them over HTTP
        final = build_dir(root, tag, platform, record.build_id)
        if final.exists():
            raise ArtifactError(f"{final}: build {record.build_id} already stored an archive; a build stores once")
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(incoming, final)
        _show_newest(final, final.parent.parent, archive)
        return final / archive
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise ArtifactError(f"tag {tag}: platform {platform}: the artifact store {root} is full ({exc.strerror}) "
                            f"while storing {archive}: free space there, e.g. `velofarm artifacts prune`, "
                            "then rebuild") from None
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _verified_upload(incoming: Path, tag: str, platform: str, archive: str, received: str | None) -> str:
    archive_path, sums_path = incoming / archive, incoming / f"{archive}.sha256"
    for path in (archive_path, sums_path):
        if not path.is_file():
            raise ArtifactError(f"tag {tag}: platform {platform}: {path.name} did not arrive at the master")
    expected, name = read_checksum_file(sums_path)
    actual = received or sha256_file(archive_path)
    if name != archive or actual != expected:
        raise ArtifactError(f"tag {tag}: platform {platform}: {archive} arrived with SHA-256 {actual}, "
                            f"but the worker computed {expected}; the transfer was damaged: rebuild")
    return actual


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _show_newest(build: Path, platform_dir: Path, archive: str) -> None:
    """Hard-link the newest build's files at the platform level, each replaced atomically, for the
    Releases page's download links. Releases never read these (they read builds/<id>/)."""
    for name in (archive, f"{archive}.sha256", BUILD_JSON):
        tmp = platform_dir / f".{name}.newest"
        tmp.unlink(missing_ok=True)
        try:
            os.link(build / name, tmp)
        except OSError:
            shutil.copy2(build / name, tmp)
        os.replace(tmp, platform_dir / name)


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
