"""One exception type per domain; each message names the file, field, tag or asset and the fix."""

import errno


class VelofarmError(Exception):
    """Base of every error velofarm reports to a person."""


class SpecError(VelofarmError):
    """farm.toml (or the catalogue, or the worker registry) is invalid."""


class ArtifactError(VelofarmError):
    """An upload could not become a stored artifact (name, arrival or checksum)."""


class ReleaseError(VelofarmError):
    """A release could not be assembled or verified."""


class PublishError(VelofarmError):
    """A verified release could not be published."""


class ImageError(VelofarmError):
    """A builder image (or its base) could not be made: names the stage, the input and the fix."""


def disk_problem(exc: OSError) -> str:
    """An OSError as a person reads it: 'the disk is full (No space left on device: FILE)'."""
    where = f": {exc.filename}" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"the disk is full (No space left on device{where})"
    if exc.errno == errno.EDQUOT:
        return f"the disk quota is used up (Disk quota exceeded{where})"
    return f"{exc.strerror or exc}{where}"


def disk_fix(exc: OSError, folder: object) -> str:
    """What to do about `exc` met while writing under `folder`."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space on the disk that holds {folder}"
    return f"make {folder} writable for the master (and check the disk)"
