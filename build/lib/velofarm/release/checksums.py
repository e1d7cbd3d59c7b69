"""SHA-256 files in the one format both `sha256sum -c` and `shasum -a 256 -c` accept."""

from __future__ import annotations

import re
from pathlib import Path

from velofarm.errors import ReleaseError
from velofarm.worker_tools import pack

LINE = re.compile(r"([0-9a-f]{64})  ([^/\\\r\n]+)\n", re.ASCII)


# One implementation of hashing and of the line format, shared with the workers' packer.
sha256_file = pack.sha256_file
checksum_line = pack.checksum_line


def read_checksum_file(path: Path) -> tuple[str, str]:
    """(hex, name) from a one-line `.sha256` file; ReleaseError naming the file if malformed."""
    # Bytes, not text: reading text would turn CRLF into LF and hide it.
    text = path.read_bytes().decode("utf-8", errors="replace")
    m = LINE.fullmatch(text)
    if not m:
        raise ReleaseError(f"{path.name}: not a checksum line '<64 lowercase hex>  <file name>\\n'; "
                           "rebuild the platform to regenerate it")
    return m.group(1), m.group(2)


def parse_sums(text: str, where: str) -> dict[str, str]:
    """SHA256SUMS content as {name: hex}; ReleaseError on a malformed or duplicate line."""
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        m = LINE.fullmatch(line if line.endswith("\n") else line + "\n")
        if not m:
            raise ReleaseError(f"{where}: line {number} is not '<64 lowercase hex>  <file name>'")
        if m.group(2) in result:
            raise ReleaseError(f"{where}: '{m.group(2)}' is listed twice")
        result[m.group(2)] = m.group(1)
    return result
