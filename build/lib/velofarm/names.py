"""Rules for the names that become paths, builder names and shell arguments."""

import re

# Names become folder names, Buildbot builder names and command-line arguments:
# letters, digits, dot, dash and underscore only, starting with a letter or digit.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z", re.ASCII)


def unsafe_name_reason(name: object) -> str | None:
    """Why `name` cannot be used as a velofarm name, or None when it can."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if "/" in name or "\\" in name:
        return "must not contain a path separator"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if ".." in name:
        return "must not contain '..'"
    if not SAFE_NAME.match(name):
        return "may use only letters, digits, '.', '-' and '_' (no spaces or shell characters)"
    if len(name) > 64:
        return "must be at most 64 characters"
    return None
