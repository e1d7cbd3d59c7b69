"""A streaming multipart/form-data reader for the stand-ins: each file part goes straight to disk,
hashed on the way, so a 64 MiB upload is never held in memory."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 16


class Incomplete(Exception):
    """The body ended (connection cut) or broke the multipart format."""


@dataclass
class Part:
    field: str
    filename: str | None
    content_type: str
    path: Path | None = None  # file parts
    text: str = ""  # other parts
    size: int = 0
    sha256: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def boundary_of(content_type: str) -> bytes | None:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    return match.group(1).encode() if match else None


class _Body:
    """The request body as a buffer refilled from the socket, never past Content-Length."""

    def __init__(self, read: Callable[[int], bytes], length: int) -> None:
        self.read, self.left, self.buf = read, length, b""

    def fill(self) -> None:
        if self.left <= 0:
            raise Incomplete("the body ended inside the form")
        chunk = self.read(min(CHUNK, self.left))
        if not chunk:
            raise Incomplete("the connection was cut")
        self.left -= len(chunk)
        self.buf += chunk

    def until(self, marker: bytes, sink: Callable[[bytes], None] | None = None) -> None:
        """Consume up to and including `marker`, passing what comes before it to `sink`."""
        while (at := self.buf.find(marker)) < 0:
            keep = len(marker) - 1
            if sink is not None and len(self.buf) > keep:
                sink(self.buf[:-keep] if keep else self.buf)
                self.buf = self.buf[-keep:] if keep else b""
            elif sink is None and len(self.buf) > 16384:
                raise Incomplete("a part's headers are too long")
            self.fill()
        if sink is not None:
            sink(self.buf[:at])
        self.buf = self.buf[at + len(marker):]


def read_form(read: Callable[[int], bytes], length: int, boundary: bytes, folder: Path) -> list[Part]:
    """Every part of the form; file parts are written into `folder` (the caller removes them)."""
    body, parts = _Body(read, length), []
    body.until(b"--" + boundary + b"\r\n")
    while True:
        raw = bytearray()
        body.until(b"\r\n\r\n", raw.extend)
        headers = dict(line.split(": ", 1) for line in raw.decode("utf-8", "replace").split("\r\n") if ": " in line)
        disposition = headers.get("Content-Disposition", "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is None:
            raise Incomplete(f"a part without a name: {disposition!r}")
        part = Part(name.group(1), filename.group(1) if filename else None,
                    headers.get("Content-Type", "text/plain"), headers=headers)
        marker = b"\r\n--" + boundary
        if part.filename is not None:
            _file_part(body, marker, part, folder / f"part-{len(parts)}")
        else:
            text = bytearray()
            body.until(marker, text.extend)
            part.text = text.decode("utf-8", "replace")
        parts.append(part)
        while len(body.buf) < 2:
            body.fill()
        if body.buf.startswith(b"--"):
            while body.left > 0 and (chunk := body.read(min(CHUNK, body.left))):  # the epilogue, ignored
                body.left -= len(chunk)
            return parts
        body.until(b"\r\n")


def _file_part(body: _Body, marker: bytes, part: Part, path: Path) -> None:
    """Stream one file part to `path`, hashing it on the way."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        def sink(data: bytes) -> None:
            digest.update(data)
            fh.write(data)
            part.size += len(data)
        body.until(marker, sink)
    part.path, part.sha256 = path, digest.hexdigest()
