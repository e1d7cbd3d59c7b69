"""`velofarm image deploy`: the images deploy/compose.yaml runs (master, PostgreSQL, build engine).

All three come from the same base as the builder image; the master's Python packages are wheels
made on the host (`pip wheel '.[postgres]'`), so no image build reaches a Python index.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from velofarm.errors import ImageError
from velofarm.images.builder import BuilderImage, build_context, copy_context, pick_base
from velofarm.images.engine import Progress, run_stage

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
IMAGES = {  # repository: files of deploy/ in its context (the Dockerfile first)
    "velofarm-master": ("Dockerfile", "master-entrypoint.sh"),
    "velofarm-postgres": ("Dockerfile.postgres", "postgres-entrypoint.sh"),
    "velofarm-engine": ("Dockerfile.engine", "engine-entrypoint.sh"),
}


def master_wheels(dest: Path, progress: Progress) -> None:
    """velofarm itself and every dependency (with the postgres extra) as wheels."""
    with tempfile.TemporaryDirectory(prefix="velofarm-src-") as scratch:
        # A copy of the package alone: setuptools writes build/ and *.egg-info beside what it builds.
        src = Path(scratch)
        shutil.copy2(REPO / "pyproject.toml", src / "pyproject.toml")
        shutil.copytree(REPO / "velofarm", src / "velofarm", ignore=shutil.ignore_patterns("__pycache__"))
        run_stage("image     [1/3] pip wheel velofarm[postgres] (wheels for the master image)",
                  [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(dest), f"{src}[postgres]"],
                  progress, timeout=1200, env={"SOURCE_DATE_EPOCH": "315532800"})  # same source, same wheel
    if not any(dest.glob("velofarm-*.whl")):
        raise ImageError(f"pip wheel {REPO}: no velofarm wheel in {dest}")


def build_deploy_images(progress: Progress, base_image: str | None = None) -> dict[str, BuilderImage]:
    """Each deploy image, built unless one with the same inputs exists."""
    chosen = pick_base(base_image, progress)
    result = {}
    for repo, files in IMAGES.items():
        with tempfile.TemporaryDirectory(prefix=f"{repo}-") as scratch:
            context = copy_context(DEPLOY, files, Path(scratch))
            if files[0] != "Dockerfile":
                (context / files[0]).rename(context / "Dockerfile")
            if repo == "velofarm-master":
                (context / "wheels").mkdir()
                master_wheels(context / "wheels", progress)
            result[repo] = build_context(repo, context, chosen, progress)
    return result
