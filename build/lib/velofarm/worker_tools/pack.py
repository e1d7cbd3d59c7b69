#!/usr/bin/env python3
"""Stage, archive and checksum one platform's release: stage -> deterministic archive -> .sha256.

Standard library only, Python 3.9+: the master downloads this file into the worker's build
folder (.velofarm/pack.py) and runs it with the worker's own Python, so a worker needs nothing
but buildbot-worker and its toolchain. Also importable (`from velofarm.worker_tools import pack`).

    pack.py stage JOB --tag TAG --name NAME --src DIR --bin-dir DIR --out DIR
    pack.py archive STAGEDIR --format tar.gz|zip --epoch N --out FILE [--executable REL ...]
    pack.py checksum FILE
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

JOB_FORMAT = 1
FORMATS = ("tar.gz", "zip")
CHUNK = 1024 * 1024
# Project, tag and target become the stage folder's name: no separators, no '..' tricks.
SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\Z", re.ASCII)
# A zip entry's DOS date can hold 1980-01-01 .. 2107-12-31 only.
ZIP_MIN = (1980, 1, 1, 0, 0, 0)
ZIP_MAX = (2107, 12, 31, 23, 59, 58)


class PackError(Exception):
    """An expected failure; the message names the tag, platform and file, and the fix."""


class Entry(NamedTuple):
    """One archive member: its name inside the archive, where it is on disk, its mode."""

    name: str
    path: Path
    mode: int
    is_dir: bool


# ---------------------------------------------------------------------------------------- job

def load_job(path: str | Path) -> dict[str, Any]:
    """The job JSON the master wrote for this build; PackError if unreadable or of another format."""
    path = Path(path)
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackError(f"job file {path} cannot be read ({exc}); re-run the build so the master "
                        "writes it again") from None
    if not isinstance(job, dict) or job.get("format") != JOB_FORMAT:
        raise PackError(f"job file {path} is not job format {JOB_FORMAT}; the master and this script "
                        "come from different velofarm versions: restart the master, then rebuild")
    missing = [k for k in ("project", "ship", "binaries", "platform") if k not in job]
    if missing:
        raise PackError(f"job file {path} lacks '{missing[0]}'; restart the master, then rebuild")
    return job


# -------------------------------------------------------------------------------------- stage

def stage(job: dict[str, Any], tag: str, src: str | Path, bin_dir: str | Path,
          out: str | Path, name: str) -> Path:
    """Create OUT/NAME/ holding the binaries and every ship entry.

    NAME (`<project>-<tag>-<target>`) comes from the master (velofarm.spec.job.stage_name), the
    one place an archive is named.

    Built in a temporary sibling and renamed at the end, so a failure leaves nothing behind.
    A previous stage folder of the same name is removed first (the step is re-runnable).
    """
    platform = job["platform"]
    ctx = f"tag {tag}, platform {platform['name']}"
    for part in (job["project"], tag, platform["target"], name):
        if not SAFE_PART.match(str(part)):
            raise PackError(f"{ctx}: '{part}' cannot be part of a folder name; use letters, digits, "
                            "'.', '+', '-' and '_' only")
    src, bin_dir, out = Path(src).resolve(), Path(bin_dir).resolve(), Path(out).resolve()
    if not src.is_dir():
        raise PackError(f"{ctx}: source tree {src} is not a folder; check the checkout step")
    out.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out, name)
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


def _remove_leftovers(out: Path, name: str) -> None:
    # A previous run's stage, or a crashed run's temporary folder, must not mix into this one.
    for old in [out / name, *out.glob(f".{name}.tmp-*")]:
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
            raise PackError(f"{ctx}: binary {fname} is missing from {bin_dir}; check the build step's "
                            "log, and that it is a [[bin]] target of the manifest")
        shutil.copyfile(path, dest / fname)
        os.chmod(dest / fname, 0o755)  # a declared binary is executable whatever the source says


def _ship_path(entry: str, ctx: str) -> PurePosixPath:
    rel = PurePosixPath(entry)
    if (not entry or rel.is_absolute() or "\\" in entry or ":" in entry
            or any(p in ("..", ".") for p in entry.split("/"))):
        raise PackError(f"{ctx}: ship entry '{entry}' must be a plain relative path inside the source "
                        "tree; fix project.ship in farm.toml")
    return rel


def _stage_entry(entry: str, src: Path, dest: Path, ctx: str) -> None:
    rel = _ship_path(entry, ctx)
    path = src.joinpath(*rel.parts)
    if not os.path.lexists(path):
        raise PackError(f"{ctx}: ship entry '{entry}' is missing from the source tree {src}; add it to "
                        "the repository or remove it from project.ship in farm.toml")
    _check_inside(path, src, ctx, entry)
    target = dest.joinpath(*rel.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        if _copy_tree(path, target, src, ctx, entry, frozenset()) == 0:
            raise PackError(f"{ctx}: ship entry '{entry}' is a folder with no files in it ({path}); add "
                            "its files to the repository (git keeps no empty folders) or remove it "
                            "from project.ship in farm.toml")
    elif path.is_file():
        _copy_file(path, target, ctx, entry)
    else:
        raise PackError(f"{ctx}: ship entry '{entry}' ({path}) is neither a file nor a folder (a broken "
                        "symlink?); fix it in the repository")


def _check_inside(path: Path, root: Path, ctx: str, entry: str) -> None:
    # Symlinks are followed, but only within the tree: a release must not pick up the worker's files.
    real = os.path.realpath(path)
    try:
        inside = os.path.commonpath([real, str(root)]) == str(root)
    except ValueError:  # another drive on Windows
        inside = False
    if not inside:
        raise PackError(f"{ctx}: ship entry '{entry}': {path} is a symlink to {real}, outside the source "
                        f"tree {root}; replace the link with the real file in the repository")


def _copy_tree(path: Path, target: Path, root: Path, ctx: str, entry: str,
               active: frozenset[str]) -> int:
    """Copy a folder, following in-tree symlinks; returns how many files it holds."""
    real = os.path.realpath(path)
    if real in active:
        raise PackError(f"{ctx}: ship entry '{entry}': symlink loop at {path}; remove the link")
    if os.path.lexists(target):
        raise PackError(f"{ctx}: ship entry '{entry}' overlaps another entry or a binary at {target.name}; "
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
            raise PackError(f"{ctx}: ship entry '{entry}': {child_path} is neither a file nor a folder "
                            "(a broken symlink?); fix or remove it in the repository")
    return files


def _copy_file(path: Path, target: Path, ctx: str, entry: str) -> None:
    if os.path.lexists(target):
        raise PackError(f"{ctx}: ship entry '{entry}' overlaps another entry or a binary at {target.name}; "
                        "list each path once in project.ship")
    shutil.copyfile(path, target)
    # Only "executable or not" survives: the worker's umask and owner must not reach the archive.
    os.chmod(target, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)


# ------------------------------------------------------------------------------------ archive

def write_archive(stage_dir: str | Path, fmt: str, epoch: int, out: str | Path,
                  executables: Iterable[str] = ()) -> Path:
    """Write a deterministic tar.gz or zip of STAGEDIR (one top-level folder) to OUT.

    Every mtime is `epoch`, owners are 0/'' and modes are 0755 (folders, executables, the
    relative paths in `executables`) or 0644, so equal contents give byte-equal archives.
    """
    stage_dir, out = Path(stage_dir), Path(out)
    where = f"stage folder {stage_dir}"
    if fmt not in FORMATS:
        raise PackError(f"{where}: archive format '{fmt}' is not one of {', '.join(FORMATS)}; fix the "
                        "platform's archive field")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch < 2 ** 32:
        raise PackError(f"{where}: epoch {epoch!r} is not a Unix time; pass the tagged commit's time")
    if not stage_dir.is_dir() or not SAFE_PART.match(stage_dir.name):
        raise PackError(f"{where} does not exist or has an unsafe name; run the stage step first")
    if stage_dir.resolve() in out.resolve().parents:
        raise PackError(f"{where}: archive {out} would be inside the folder it archives; write it beside")
    entries = list(archive_entries(stage_dir, frozenset(executables)))
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        if fmt == "zip":
            _write_zip(entries, epoch, tmp)
        else:
            _write_tar_gz(entries, epoch, tmp)
        os.replace(tmp, out)
    except BaseException:
        if os.path.lexists(tmp):
            tmp.unlink()
        raise
    return out


def archive_entries(stage_dir: Path, executables: frozenset[str] = frozenset()) -> Iterator[Entry]:
    """The stage folder and its contents, each folder before its contents, names sorted."""
    yield Entry(stage_dir.name, stage_dir, 0o755, True)
    yield from _walk(stage_dir, stage_dir.name, executables)


def _walk(directory: Path, arcdir: str, executables: frozenset[str]) -> Iterator[Entry]:
    with os.scandir(directory) as it:
        children = sorted(it, key=lambda e: e.name)  # creation order must not matter
    for child in children:
        name, path = f"{arcdir}/{child.name}", Path(child.path)
        if child.is_dir(follow_symlinks=False):
            yield Entry(name, path, 0o755, True)
            yield from _walk(path, name, executables)
        elif child.is_file(follow_symlinks=False):
            rel = name.split("/", 1)[1]
            exe = child.stat(follow_symlinks=False).st_mode & 0o111 or rel in executables
            yield Entry(name, path, 0o755 if exe else 0o644, False)
        else:
            raise PackError(f"stage folder {arcdir.split('/')[0]}: {path} is a symlink or special file; "
                            "re-run the stage step, which copies only files and folders")


def _write_tar_gz(entries: list[Entry], epoch: int, tmp: Path) -> None:
    # filename="" keeps the temporary name out of the gzip header; the level is fixed.
    with open(tmp, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=epoch) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime, info.mode = epoch, entry.mode
            info.uid = info.gid = 0
            info.uname = info.gname = ""  # numeric owner 0, as `tar --numeric-owner` writes
            if entry.is_dir:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = entry.path.stat().st_size
                with open(entry.path, "rb") as f:
                    tar.addfile(info, f)


def zip_date_time(epoch: int) -> tuple[int, int, int, int, int, int]:
    """The epoch as a zip entry's UTC date, clamped to what a zip can hold (1980..2107)."""
    t = tuple(time.gmtime(epoch)[:6])
    return max(ZIP_MIN, min(ZIP_MAX, t))  # type: ignore[return-value]


def _write_zip(entries: list[Entry], epoch: int, tmp: Path) -> None:
    date_time = zip_date_time(epoch)
    with zipfile.ZipFile(tmp, "w") as zf:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name + ("/" if entry.is_dir else ""), date_time=date_time)
            info.create_system = 3  # unix, so external_attr's mode is honoured (and not host-dependent)
            if entry.is_dir:
                info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10  # 0x10: MS-DOS folder bit
                info.compress_type = zipfile.ZIP_STORED
                zf.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | entry.mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, entry.path.read_bytes(), compresslevel=9)


# ----------------------------------------------------------------------------------- checksum

def sha256_file(path: str | Path) -> str:
    """The file's SHA-256 as lowercase hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_line(hex_digest: str, name: str) -> str:
    """`<hex>  <name>\\n`: the line both `sha256sum -c` and `shasum -a 256 -c` accept."""
    if not re.fullmatch(r"[0-9a-f]{64}", hex_digest):
        raise PackError(f"{name}: '{hex_digest}' is not a lowercase SHA-256 hex digest")
    if not name or any(c in name for c in "/\\\n\r"):
        raise PackError(f"'{name}' cannot be named in a checksum line; use a plain file name")
    return f"{hex_digest}  {name}\n"


def write_checksum(path: str | Path) -> str:
    """Write `<path>.sha256` (via a temporary name) and return its one line."""
    path = Path(path)
    if not path.is_file():
        raise PackError(f"archive {path} not found; run the archive step first")
    line = checksum_line(sha256_file(path), path.name)
    target = path.with_name(path.name + ".sha256")
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.write_bytes(line.encode("utf-8"))  # bytes: no CRLF on Windows
    os.replace(tmp, target)
    return line


# ---------------------------------------------------------------------------------------- CLI

def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


def _tree_stats(path: Path) -> tuple[int, int]:
    if path.is_file():
        return 1, path.stat().st_size
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _cmd_stage(args: argparse.Namespace) -> int:
    job = load_job(args.job)
    folder = stage(job, args.tag, args.src, args.bin_dir, args.out, args.name)
    print(f"staged {folder} (tag {args.tag}, platform {job['platform']['name']})")
    suffix = job["platform"].get("exe_suffix") or ""
    for item in [b["name"] + suffix for b in job["binaries"]] + list(job["ship"]):
        count, size = _tree_stats(folder.joinpath(*PurePosixPath(item).parts))
        print(f"  {item:<40} {count:>5} file{'s' if count != 1 else ' '} {_size(size):>10}")
    return 0


def _cmd_archive(args: argparse.Namespace) -> int:
    out = write_archive(args.stagedir, args.format, args.epoch, args.out, args.executable)
    count = len(list(archive_entries(Path(args.stagedir))))
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(args.epoch))
    print(f"wrote {out}: {count} entries, {_size(out.stat().st_size)}, every mtime {when} "
          f"(epoch {args.epoch})")
    return 0


def _cmd_checksum(args: argparse.Namespace) -> int:
    print(write_checksum(args.file), end="")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pack.py", description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stage", help="copy binaries and ship entries into OUT/NAME/")
    p.add_argument("job")
    p.add_argument("--name", required=True, help="the stage folder's name, <project>-<tag>-<target>")
    p.add_argument("--tag", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_stage)
    p = sub.add_parser("archive", help="write a deterministic archive of a stage folder")
    p.add_argument("stagedir")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--epoch", required=True, type=int)
    p.add_argument("--out", required=True)
    p.add_argument("--executable", action="append", default=[],
                   help="a path inside the stage folder to mark 0755 (repeatable)")
    p.set_defaults(func=_cmd_archive)
    p = sub.add_parser("checksum", help="write FILE.sha256")
    p.add_argument("file")
    p.set_defaults(func=_cmd_checksum)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; expected failures print one `error: ` line and return 1."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PackError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        tag = f" (tag {args.tag})" if getattr(args, "tag", None) else ""
        print(f"error: pack.py {args.command}{tag}: {exc}; check free disk space and permissions "
              "on this worker, then rebuild", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
