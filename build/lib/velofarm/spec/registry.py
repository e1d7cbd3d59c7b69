"""The worker registry: workers added with `velofarm worker add`, kept beside farm.toml.

`workers/registry.toml` holds one `[workers.NAME]` table per worker (platforms, max_builds,
os), never a password. The spec loader merges it with farm.toml's [workers] and validates
both with the same rules. Writes are atomic (temporary file, then rename) under a lock, so
a crash or a second `velofarm worker add` never leaves a half-written registry.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from velofarm.errors import SpecError
from velofarm.spec import tomlwrite

HEADER = """\
# velofarm worker registry: written by `velofarm worker add|remove`; safe to commit (no passwords:
# each worker's password is the secret worker-NAME in the secrets folder). farm.toml's
# [master] worker_registry names this file. Hand edits are validated like farm.toml.
"""
ALLOWED_KEYS = {"workers"}
TABLE_FIELDS = ("platforms", "max_builds", "os")


def read_registry(path: Path) -> dict[str, dict[str, Any]]:
    """The registry's worker tables (name → fields); {} when the file does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read ({exc}); check its permissions") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}; fix the file by hand or restore it "
                        "from git") from None
    unknown = sorted(set(data) - ALLOWED_KEYS)
    if unknown:
        raise SpecError(f"{path}: unknown top-level key '{unknown[0]}'; the registry holds only "
                        "[workers.NAME] tables")
    workers = data.get("workers", {})
    if not isinstance(workers, dict):
        raise SpecError(f"{path}: 'workers' must be tables ([workers.NAME]); fix the file or restore "
                        "it from git")
    return workers


def render_registry(workers: dict[str, dict[str, Any]]) -> str:
    """The registry file's text for these worker tables, names sorted for readable diffs."""
    ordered = {name: {k: workers[name][k] for k in TABLE_FIELDS if k in workers[name]}
               for name in sorted(workers)}
    body = tomlwrite.dumps({"workers": ordered}) if ordered else ""
    return HEADER + ("\n" + body if body else "")


def write_registry(path: Path, workers: dict[str, dict[str, Any]]) -> None:
    """Replace the registry atomically; the text is checked to read back as the same tables."""
    text = render_registry(workers)
    if tomllib.loads(text).get("workers", {}) != {n: _fields(w) for n, w in workers.items()}:
        raise SpecError(f"{path}: internal error: the registry would not read back as written; "
                        "nothing written")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fields(table: dict[str, Any]) -> dict[str, Any]:
    return {k: table[k] for k in TABLE_FIELDS if k in table}


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the registry, so two commands cannot lose each other's edit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a", encoding="utf-8") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the master (and this command) runs on Linux or macOS
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
