#!/usr/bin/env python3
"""Stage one platform's release: the built binaries and every ship entry into OUT/NAME/.

Standard library only, Python 3.9+: the master sends it to each worker in the tools bundle and
runs it with the worker's own Python, in the checked-out source tree; pack.py then archives the
folder. Also importable (`from velofarm.worker_tools import stage`).

    stage.py JOB --tag TAG --name NAME --src DIR --bin-dir DIR --out DIR [--clean]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

JOB_FORMAT = 1
JOB_MEMBER = "job.json"  # inside the tools bundle
# Project, tag and target become the stage folder's name: no separators, no '..' tricks.
SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\Z", re.ASCII)


class StageError(Exception):
    """An expected failure; the message names the tag, platform and file, and the fix."""


# ---------------------------------------------------------------------------------------- job

def load_job(path: str | Path) -> dict[str, Any]:
    """The job JSON the master wrote for this build, from a job.json or from the tools bundle that
    carries one (velofarm/spec/toolbundle.py); StageError if unreadable or of another format."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as bundle:
                text = bundle.read(JOB_MEMBER).decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        job = json.loads(text)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise StageError(f"job file {path} cannot be read ({exc}); re-run the build so the master "
                         "writes it again") from None
    if not isinstance(job, dict) or job.get("format") != JOB_FORMAT:
        raise StageError(f"job file {path} is not job format {JOB_FORMAT}; the master and this script "
                         "come from different velofarm versions: restart the master, then rebuild")
    missing = [k for k in ("project", "ship", "binaries", "platform") if k not in job]
    if missing:
        raise StageError(f"job file {path} lacks '{missing[0]}'; restart the master, then rebuild")
    return job


# -------------------------------------------------------------------------------------- stage

def stage(job: dict[str, Any], tag: str, src: str | Path, bin_dir: str | Path,
          out: str | Path, name: str, clean: bool = False) -> Path:
    """Create OUT/NAME/ holding the binaries and every ship entry.

    NAME (`<project>-<tag>-<target>`) comes from the master (velofarm.spec.job.stage_name), the
    one place an archive is named.

    Built in a temporary sibling and renamed at the end, so a failure leaves nothing behind.
    A previous stage folder of the same name is removed first (the step is re-runnable); with
    `clean`, everything else in OUT too (earlier builds' archives), never the sources or binaries.
    """
    platform = job["platform"]
    ctx = f"tag {tag}, platform {platform['name']}"
    for part in (job["project"], tag, platform["target"], name):
        if not SAFE_PART.match(str(part)):
            raise StageError(f"{ctx}: '{part}' cannot be part of a folder name; use letters, digits, "
                             "'.', '+', '-' and '_' only")
    src, bin_dir, out = Path(src).resolve(), Path(bin_dir).resolve(), Path(out).resolve()
    if not src.is_dir():
        raise StageError(f"{ctx}: source tree {src} is not a folder; check the checkout step")
    if clean and any(out == p or out in p.parents for p in (src, bin_dir)):
        raise StageError(f"{ctx}: --clean would empty {out}, which holds the source tree or the binaries; "
                         "stage into a folder of its own")
    out.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out, name, clean)
    tmp = out / f".{name}.tmp-{os.getpid()}"
    try:
        tmp.mkdir()
        _stage_binaries(job, bin_dir, tmp, ctx)
        for entry in job["ship"]:
            _stage_entry(str(entry), src, tmp, ctx)
        final = out / name
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _remove_leftovers(out: Path, name: str, everything: bool) -> None:
    # A previous run's stage, or a crashed run's temporary folder, must not mix into this one.
    for old in list(out.iterdir()) if everything else [out / name, *out.glob(f".{name}.tmp-*")]:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif os.path.lexists(old):
            old.unlink()


def _stage_binaries(job: dict[str, Any], bin_dir: Path, dest: Path, ctx: str) -> None:
    suffix = job["platform"].get("exe_suffix") or ""
    for binary in job["binaries"]:
        fname = f"{binary['name']}{suffix}"
        path = bin_dir / fname
        if not SAFE_PART.match(fname) or not path.is_file():
            raise StageError(f"{ctx}: binary {fname} is missing from {bin_dir}; check the build step's "
                             "log, and that it is a [[bin]] target of the manifest")
        shutil.copyfile(path, dest / fname)
        os.chmod(dest / fname, 0o755)  # a declared binary is executable whatever the source says


def _ship_path(entry: str, ctx: str) -> PurePosixPath:
    rel = PurePosixPath(entry)
    if (not entry or rel.is_absolute() or "\\" in entry or ":" in entry
            or any(p in ("..", ".") for p in entry.split("/"))):
        raise StageError(f"{ctx}: ship entry '{entry}' must be a plain relative path inside the source "
                         "tree; fix project.ship in farm.toml")
    return rel


def _stage_entry(entry: str, src: Path, dest: Path, ctx: str) -> None:
    rel = _ship_path(entry, ctx)
    path = src.joinpath(*rel.parts)
    if not os.path.lexists(path):
        raise StageError(f"{ctx}: ship entry '{entry}' is missing from the source tree {src}; add it to "
                         "the repository or remove it from project.ship in farm.toml")
    _check_inside(path, src, ctx, entry)
    target = dest.joinpath(*rel.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        if _copy_tree(path, target, src, ctx, entry, frozenset()) == 0:
            raise StageError(f"{ctx}: ship entry '{entry}' is a folder with no files in it ({path}); add "
                             "its files to the repository (git keeps no empty folders) or remove it "
                             "from project.ship in farm.toml")
    elif path.is_file():
        _copy_file(path, target, ctx, entry)
    else:
        raise StageError(f"{ctx}: ship entry '{entry}' ({path}) is neither a file nor a folder (a broken "
                         "symlink?); fix it in the repository")


def _check_inside(path: Path, root: Path, ctx: str, entry: str) -> None:
    # Symlinks are followed, but only within the tree: a release must not pick up the worker's files.
    real = os.path.realpath(path)
    try:
        inside = os.path.commonpath([real, str(root)]) == str(root)
    except ValueError:  # another drive on Windows
        inside = False
    if not inside:
        raise StageError(f"{ctx}: ship entry '{entry}': {path} is a symlink to {real}, outside the source "
                         f"tree {root}; replace the link with the real file in the repository")


def _copy_tree(path: Path, target: Path, root: Path, ctx: str, entry: str,
               active: frozenset[str]) -> int:
    """Copy a folder, following in-tree symlinks; returns how many files it holds."""
    real = os.path.realpath(path)
    if real in active:
        raise StageError(f"{ctx}: ship entry '{entry}': symlink loop at {path}; remove the link")
    if os.path.lexists(target):
        raise StageError(f"{ctx}: ship entry '{entry}' overlaps another entry or a binary at {target.name}; "
                         "list each path once in project.ship")
    target.mkdir()
    with os.scandir(path) as it:
        children = sorted(it, key=lambda e: e.name)
    files = 0
    for child in children:
        child_path = Path(child.path)
        if child.is_symlink():
            _check_inside(child_path, root, ctx, entry)
        if child.is_dir():
            files += _copy_tree(child_path, target / child.name, root, ctx, entry, active | {real})
        elif child.is_file():
            _copy_file(child_path, target / child.name, ctx, entry)
            files += 1
        else:
            raise StageError(f"{ctx}: ship entry '{entry}': {child_path} is neither a file nor a folder "
                             "(a broken symlink?); fix or remove it in the repository")
    return files


def _copy_file(path: Path, target: Path, ctx: str, entry: str) -> None:
    if os.path.lexists(target):
        raise StageError(f"{ctx}: ship entry '{entry}' overlaps another entry or a binary at {target.name}; "
                         "list each path once in project.ship")
    shutil.copyfile(path, target)
    # Only "executable or not" survives: the worker's umask and owner must not reach the archive.
    os.chmod(target, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)


# ---------------------------------------------------------------------------------------- CLI

def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 // 10 else f"{n / 1024:.0f} KiB"


def print_summary(text: str) -> None:
    """The step's one-line summary in the UI: the build step shows the last `summary:` line."""
    print(f"summary: {text}", flush=True)


def _tree_stats(path: Path) -> tuple[int, int]:
    if path.is_file():
        return 1, path.stat().st_size
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _run(args: argparse.Namespace) -> int:
    job = load_job(args.job)
    folder = stage(job, args.tag, args.src, args.bin_dir, args.out, args.name, args.clean)
    print(f"staged {folder} (tag {args.tag}, platform {job['platform']['name']})")
    suffix = job["platform"].get("exe_suffix") or ""
    files = total = 0
    for item in [b["name"] + suffix for b in job["binaries"]] + list(job["ship"]):
        count, size = _tree_stats(folder.joinpath(*PurePosixPath(item).parts))
        files, total = files + count, total + size
        print(f"  {item:<40} {count:>5} file{'s' if count != 1 else ' '} {_size(size):>10}")
    print_summary(f"staged {len(job['binaries'])} binaries and {len(job['ship'])} ship entries "
                  f"({files} files, {_mib(total)})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stage.py", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("job")
    parser.add_argument("--name", required=True, help="the stage folder's name, <project>-<tag>-<target>")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--src", required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--clean", action="store_true", help="empty OUT first (earlier builds' archives)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Stage the release; expected failures print one `error: ` line and return 1."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"error: stage.py (tag {args.tag}): {exc}; check free disk space and permissions "
              "on this worker, then rebuild", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
