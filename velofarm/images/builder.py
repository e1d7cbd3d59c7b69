"""`velofarm image build`: the builder image, from images/builder/ and wheels downloaded on the host.

The image build reaches no package index for Python: buildbot-worker and its dependencies are
downloaded here with pip and copied into the build context. Debian packages come from the host's
own apt mirror (the same sources `velofarm image base` uses), which the build reaches over the
engine's default network. The tag is a hash of every input (Dockerfile, start script, the wheels,
the base image's ID, the apt sources), so a changed input gives a new image.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from velofarm.errors import ImageError
from velofarm.images import base
from velofarm.images.engine import Progress, docker_cli, image_id, run_stage

IMAGE_DIR = Path(__file__).resolve().parents[2] / "images" / "builder"
BUILDER_REPO = "velofarm-builder"
DEFAULT_BASE = "debian:bookworm-slim"
WORKER_REQUIREMENT = "buildbot-worker==4.3.0"  # the version the master runs (pyproject.toml)
CONTEXT_FILES = ("Dockerfile", "start-worker.sh")
LABEL = "org.velofarm.inputs"
# Catalogue platforms whose toolchains the Dockerfile installs.
IMAGE_PLATFORMS = ("linux-x86_64", "linux-arm64", "windows-x86_64-gnu")


@dataclass(frozen=True)
class BuilderImage:
    tag: str
    image_id: str  # sha256:...; the builds' builder_image_digest
    built: bool  # False when an image with these inputs existed already


def download_wheels(dest: Path, progress: Progress) -> list[Path]:
    """buildbot-worker and its dependencies as wheels for this host's CPython (bookworm has 3.11 too)."""
    run_stage(f"image     [1/3] pip download {WORKER_REQUIREMENT} (wheels for the image)",
              [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
               "--python-version", "3.11", "--implementation", "cp", "--dest", str(dest), WORKER_REQUIREMENT],
              progress, timeout=600)
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ImageError(f"pip download {WORKER_REQUIREMENT}: no wheels arrived in {dest}; check that PyPI "
                         "(or your index in pip.conf) is reachable")
    return wheels


def inputs_hash(context: Path, base_id: str, apt_sources: str) -> str:
    """sha256 over the context files, each wheel, the base image and the apt sources."""
    h = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(context)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    h.update(base_id.encode() + b"\0" + apt_sources.encode())
    return h.hexdigest()


def pick_base(requested: str | None, progress: Progress) -> str:
    """--base when given; else debian:bookworm-slim when the engine has it; else our debootstrap base."""
    if requested:
        if not image_id(requested):
            raise ImageError(f"--base {requested}: the Docker engine has no such image; pull it, or run "
                             "`velofarm image base` and leave --base out")
        return requested
    if image_id(DEFAULT_BASE):
        return DEFAULT_BASE
    progress(f"base      {DEFAULT_BASE} is not here (and nothing is pulled): using velofarm's debootstrap base")
    return base.make_base(progress)


def build_builder(progress: Progress, base_image: str | None = None, rebuild: bool = False) -> BuilderImage:
    """The builder image for the current inputs; built only when no image has them."""
    chosen = pick_base(base_image, progress)
    with tempfile.TemporaryDirectory(prefix="velofarm-image-") as scratch:
        context = copy_context(IMAGE_DIR, CONTEXT_FILES, Path(scratch))
        (context / "wheels").mkdir()
        download_wheels(context / "wheels", progress)
        return build_context(BUILDER_REPO, context, chosen, progress, rebuild)


def copy_context(source: Path, names: tuple[str, ...], context: Path) -> Path:
    for name in names:
        if not (source / name).is_file():
            raise ImageError(f"{source / name}: missing; the image is made from {source}")
        shutil.copy2(source / name, context / Path(name).name)
    return context


def build_context(repo: str, context: Path, chosen: str, progress: Progress, rebuild: bool = False) -> BuilderImage:
    """`docker build` of a prepared context, tagged REPO:<hash of the inputs>; reused when it exists."""
    apt_sources = base.planned_base()[2]
    digest = inputs_hash(context, image_id(chosen), apt_sources)
    tag = f"{repo}:{digest[:12]}"
    existing = image_id(tag)
    if existing and not rebuild:
        progress(f"image     [2/3] {tag} exists (same inputs); reusing it")
        return BuilderImage(tag, existing, built=False)
    run_stage(f"image     [2/3] docker build {tag} from {chosen} (apt from the host's mirror; this takes minutes)",
              [docker_cli(), "build", "--quiet", "--build-arg", f"BASE={chosen}",
               "--build-arg", f"APT_SOURCES={apt_sources.strip()}", "--label", f"{LABEL}={digest}",
               "--tag", tag, str(context)], progress, timeout=3600)
    built = image_id(tag)
    if not built:
        raise ImageError(f"docker build {tag}: finished, but the engine has no such image")
    progress(f"image     [3/3] {tag} is {built[:19]}")
    return BuilderImage(tag, built, built=True)


def remove_image(tag: str) -> None:
    subprocess.run([docker_cli(), "image", "rm", "--force", tag], capture_output=True, check=False, timeout=120)
