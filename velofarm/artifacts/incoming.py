"""Files arriving in the artifact store: upload grants, partial files, hashing while writing.

The store side of the upload receiver (velofarm/receiver.py is its HTTP side), with no network
and no Buildbot in it. A UploadGrants maps random tokens to Grants: the folder a build's files land
in and the only names they may have, so nothing a worker sends chooses a path. Each granted file
is a Slot: its partial bytes on disk, the running SHA-256 of them, and a generation number that
lets a resumed connection take over from one that died half-open.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import queue
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from velofarm.artifacts.store import check_part
from velofarm.errors import VelofarmError
from velofarm.release.checksums import checksum_line

CHUNK = 1024 * 1024
TOKEN_TTL = 6 * 3600.0  # a backstop only: the step revokes its token as soon as the upload ends
MAX_BYTES = 16 * 2**30
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
STORE_FULL = 507  # HTTP Insufficient Storage: final, resuming into a full disk cannot help


class RequestError(Exception):
    """A request the receiver refuses; `status` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Superseded(Exception):
    """A newer connection (or the revocation) took this file over; stop writing."""


@dataclass(frozen=True)
class Receipt:
    size: int
    sha256: str


class Slot:
    """One granted file: its partial bytes on disk, their running hash, and who may write next."""

    def __init__(self, folder: Path, name: str) -> None:
        self.lock = threading.Lock()
        self.hashed = threading.Condition(self.lock)
        self.name, self.folder = name, folder
        self.part = folder / f".{name}.part"
        self.generation = 0
        self.offset = 0  # bytes written; `hasher` covers them once `unhashed` is 0
        self.unhashed = 0
        self.hasher = hashlib.sha256()
        self.receipt: Receipt | None = None

    def take_over(self) -> int:
        """Make the caller the only writer (call with the lock held); older writers stop, and the
        chunks they wrote are hashed first, so `offset` and `hasher` agree from here on."""
        while self.unhashed:
            self.hashed.wait()
        self.generation += 1
        return self.generation

    def reset(self) -> None:
        self.offset, self.hasher, self.receipt = 0, hashlib.sha256(), None


@dataclass
class Grant:
    folder: Path
    slots: dict[str, Slot]
    expires: float
    max_bytes: int
    revoked: bool = field(default=False)

    def live(self) -> bool:
        return not self.revoked and time.monotonic() < self.expires


class UploadGrants:
    """Upload tokens and what each allows. Steps grant and revoke on the reactor thread; the
    receiver's threads look tokens up. Only a hash of each token is kept as the key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()

    def grant(self, folder: Path, names: Iterable[str], ttl: float = TOKEN_TTL,
              max_bytes: int = MAX_BYTES) -> str:
        """A new token allowing exactly `names` to be uploaded into `folder`."""
        names = [check_part(n, "upload name") for n in names]
        if any(n.endswith((".sha256", ".part")) for n in names):
            raise VelofarmError(f"upload names {names}: .sha256 and .part files are written by the receiver")
        folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._grants = {k: g for k, g in self._grants.items() if g.live()}
            self._grants[self._key(token)] = Grant(folder, {n: Slot(folder, n) for n in names},
                                                   time.monotonic() + ttl, max_bytes)
        return token

    def find(self, token: str) -> Grant | None:
        with self._lock:
            grant = self._grants.get(self._key(token))
        return grant if grant is not None and grant.live() else None

    def revoke(self, token: str) -> dict[str, Receipt]:
        """End a grant: later requests get 403, running ones stop; the files that arrived whole."""
        with self._lock:
            grant = self._grants.pop(self._key(token), None)
        if grant is None:
            return {}
        grant.revoked = True
        for slot in grant.slots.values():
            with slot.lock:
                slot.take_over()
        return {name: slot.receipt for name, slot in grant.slots.items() if slot.receipt}


class Put(NamedTuple):
    start: int
    length: int
    total: int
    sha256: str


def write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


class HashPipe:
    """Hashes written chunks in order on a helper thread, so receiving and writing one chunk
    overlaps hashing the previous one (hashlib, recv and write release the GIL: on a busy
    2-core master this is ~1.5x faster than doing all three in turn). BUFFERS bound memory."""

    BUFFERS = 4

    def __init__(self, slot: Slot) -> None:
        self.slot = slot
        self.free: queue.Queue[memoryview] = queue.Queue()
        for _ in range(self.BUFFERS):
            self.free.put(memoryview(bytearray(CHUNK)))
        self.todo: queue.Queue[memoryview | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="velofarm-uploads-hash", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (chunk := self.todo.get()) is not None:
            self.slot.hasher.update(chunk)
            with self.slot.lock:
                self.slot.unhashed -= 1
                self.slot.hashed.notify_all()
            self.free.put(memoryview(chunk.obj))  # the whole buffer again, for the next chunk

    def submit(self, chunk: memoryview) -> None:
        """Queue a chunk already written and counted in `slot.unhashed` (under the lock)."""
        self.todo.put(chunk)

    def close(self) -> None:
        self.todo.put(None)
        self.thread.join()


def receive(slot: Slot, generation: int, stream: io.BufferedIOBase, put: Put) -> None:
    """Append the body to the slot's partial file; chunks are hashed as they are written."""
    fd = os.open(slot.part, os.O_WRONLY | os.O_CREAT, 0o600)
    pipe = HashPipe(slot)
    try:
        with slot.lock:
            if slot.generation != generation:
                raise Superseded()
            os.ftruncate(fd, put.start)  # drop bytes a dead connection wrote past the hashed offset
        os.lseek(fd, put.start, os.SEEK_SET)
        remaining = put.length
        while remaining:
            buffer = pipe.free.get()
            n = stream.readinto(buffer[:min(CHUNK, remaining)])
            if not n:
                raise ConnectionError("the worker closed the connection mid-file")
            with slot.lock:
                if slot.generation != generation:
                    raise Superseded()
                write_all(fd, buffer[:n])
                slot.offset += n
                slot.unhashed += 1
            pipe.submit(buffer[:n])
            remaining -= n
    finally:
        pipe.close()  # every written chunk is hashed before anyone looks at the slot again
        if slot.offset == put.total:
            os.fsync(fd)
        os.close(fd)


def discard_full(slot: Slot, generation: int) -> RequestError:
    """After the store's disk filled up under this file: remove everything of it in the incoming
    folder (nothing partial is kept, and no resume is offered), and the refusal naming the store."""
    with slot.lock:
        offset = slot.offset
        if slot.generation == generation:
            slot.reset()
            for path in (slot.part, slot.folder / slot.name, slot.folder / f".{slot.name}.sha256.part"):
                path.unlink(missing_ok=True)
    store = slot.folder.parent.parent  # <store>/<tag>/.incoming-<platform>-<build>/
    return RequestError(STORE_FULL, f"the artifact store {store} is full (no space left on its disk after "
                                    f"{offset} bytes): free space there, e.g. `velofarm artifacts prune`, "
                                    "then rebuild")


def finish(slot: Slot, generation: int, put: Put) -> Receipt:
    """Check the whole file's hash, then rename it into place beside its .sha256 line."""
    with slot.lock:
        if slot.generation != generation:
            raise Superseded()
        actual = slot.hasher.hexdigest()
        if actual != put.sha256:
            slot.reset()
            slot.part.unlink(missing_ok=True)
            raise RequestError(422, f"{slot.name}: arrived with SHA-256 {actual}, but the worker sent "
                                    f"{put.sha256}; the bytes were damaged on the way (send it again)")
        os.replace(slot.part, slot.folder / slot.name)
        sums = slot.folder / f".{slot.name}.sha256.part"
        with open(sums, "w", encoding="utf-8") as fh:
            fh.write(checksum_line(actual, slot.name))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(sums, slot.folder / f"{slot.name}.sha256")
        dir_fd = os.open(slot.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the renames survive a crash too
        finally:
            os.close(dir_fd)
        slot.receipt = Receipt(slot.offset, actual)
        return slot.receipt
