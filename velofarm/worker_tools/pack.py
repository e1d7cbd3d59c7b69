#!/usr/bin/env python3
"""Archive and checksum one platform's staged release: deterministic archive -> .sha256.

Standard library only, Python 3.9+: the master sends it to each worker in the tools bundle and
runs it with the worker's own Python, so a worker needs nothing but buildbot-worker and its
toolchain. stage.py builds the folder it archives. A build runs only `archive`: its upload
(transfer.py) hashes the archive in the same process. Also importable
(`from velofarm.worker_tools import pack`).

    pack.py archive STAGEDIR --format tar.gz|zip --epoch N --out FILE [--executable REL ...]
    pack.py checksum FILE
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import re
import stat
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

FORMATS = ("tar.gz", "zip")
CHUNK = 1024 * 1024
# The stage folder's name (stage.py checks it the same way): no separators, no '..' tricks.
SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\Z", re.ASCII)
# A zip entry's DOS date can hold 1980-01-01 .. 2107-12-31 only.
ZIP_MIN = (1980, 1, 1, 0, 0, 0)
ZIP_MAX = (2107, 12, 31, 23, 59, 58)


class PackError(Exception):
    """An expected failure; the message names the folder or file, and the fix."""


class Entry(NamedTuple):
    """One archive member: its name inside the archive, where it is on disk, its mode."""

    name: str
    path: Path
    mode: int
    is_dir: bool


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


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 // 10 else f"{n / 1024:.0f} KiB"


def print_summary(text: str) -> None:
    """The step's one-line summary in the UI: the build step shows the last `summary:` line."""
    print(f"summary: {text}", flush=True)


def _cmd_archive(args: argparse.Namespace) -> int:
    out = write_archive(args.stagedir, args.format, args.epoch, args.out, args.executable)
    count = len(list(archive_entries(Path(args.stagedir))))
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(args.epoch))
    print(f"wrote {out}: {count} entries, {_size(out.stat().st_size)}, every mtime {when} "
          f"(epoch {args.epoch})")
    print_summary(f"{out.name}: {count} entries, {_mib(out.stat().st_size)}")
    return 0


def _cmd_checksum(args: argparse.Namespace) -> int:
    line = write_checksum(args.file)
    print(line, end="")
    print_summary(f"archive {_mib(Path(args.file).stat().st_size)} sha256 {line[:8]}…")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pack.py", description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
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
        print(f"error: pack.py {args.command}: {exc}; check free disk space and permissions "
              "on this worker, then rebuild", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
