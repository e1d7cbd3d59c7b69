"""Web UI users: roles, password hashing, and the `[users.NAME]` tables of farm.toml.

farm.toml says who may do what (reviewable, no secrets); each password HASH lives in the
secrets folder as `user-NAME`, so no hash ever sits in git. Standard library only (plus
`bcrypt` to accept hashes made by `htpasswd -B`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from functools import lru_cache

from velofarm.errors import VelofarmError
from velofarm.names import unsafe_name_reason

OPS = "ops"
RELEASE_MANAGER = "release-manager"
ROLES = (OPS, RELEASE_MANAGER)
# A release manager may also do everything ops may: a dry run before publishing is good practice.
IMPLIED_ROLES = {OPS: (OPS,), RELEASE_MANAGER: (RELEASE_MANAGER, OPS)}
# `[users.github]` configures GitHub sign-in, so no password user may take that name.
GITHUB_TABLE = "github"
GITHUB_SECRET = "github-oauth-secret"
MIN_PASSWORD_LENGTH = 10

# scrypt at N=2^15, r=8: ~0.1 s and 32 MiB per check, which makes guessing slow without making
# sign-in slow. The parameters are stored in each hash so they can be raised later.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
_SCRYPT_HASH = re.compile(r"^scrypt\$n=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")


class UserError(VelofarmError):
    """A user could not be added, removed or given a password."""


def user_secret_name(name: str) -> str:
    """The secrets-folder file that holds this user's password hash."""
    return f"user-{name}"


def roles_for(role: str) -> tuple[str, ...]:
    """Every role a user declared with `role` holds."""
    return IMPLIED_ROLES.get(role, ())


def check_user_name(name: str) -> None:
    """Refuse names that cannot be a user (path-unsafe, or reserved for GitHub sign-in)."""
    reason = unsafe_name_reason(name)
    if reason:
        raise UserError(f"user name '{name}' {reason}")
    if name == GITHUB_TABLE:
        raise UserError(f"user name '{name}' is reserved for the [users.{GITHUB_TABLE}] sign-in settings")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"role '{role}' is not one of {', '.join(ROLES)}")


def check_password_policy(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
                        "(or --generate)")
    if password != password.strip():
        raise UserError("the password starts or ends with a space; it would be hard to type again")


def generate_password() -> str:
    """A random password (144 bits), to be shown once."""
    return secrets.token_urlsafe(18)


def hash_password(password: str) -> str:
    """An scrypt hash with its salt and parameters: `scrypt$n=..,r=..,p=..$SALT$HASH`."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return (f"scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}$"
            f"{base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}")


def verify_password(password: str, encoded: str | None) -> bool:
    """True when `password` matches the stored hash; a missing or malformed hash never matches.

    A missing hash still costs one scrypt, so timing does not tell which user names exist.
    """
    if not encoded:
        hmac.compare_digest(_scrypt(password, _dummy_salt(), SCRYPT_N, SCRYPT_R, SCRYPT_P), b"\0" * 32)
        return False
    if encoded.startswith(("$2a$", "$2b$", "$2y$")):
        return _verify_bcrypt(password, encoded)
    m = _SCRYPT_HASH.match(encoded)
    if not m:
        return False
    n, r, p = int(m[1]), int(m[2]), int(m[3])
    if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
        return False  # refuse parameters that would stall the master
    try:
        salt, expected = base64.b64decode(m[4], validate=True), base64.b64decode(m[5], validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(expected)), expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = 32) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=max(SCRYPT_MAXMEM, 256 * n * r), dklen=dklen)


@lru_cache(maxsize=1)
def _dummy_salt() -> bytes:
    return secrets.token_bytes(16)


def _verify_bcrypt(password: str, encoded: str) -> bool:
    import bcrypt

    data = password.encode("utf-8")
    if len(data) > 72:
        return False  # bcrypt ignores (or, in bcrypt 5, refuses) bytes past 72
    try:
        return bool(bcrypt.checkpw(data, encoded.encode("ascii")))
    except ValueError:
        return False


def github_table_problem(body: object, other_users: list[str]) -> str | None:
    """What is wrong with a `[users.github]` table (GitHub sign-in), or None when it is right."""
    if not isinstance(body, dict):
        return "must be a table: client_id, teams, and optionally client_secret_secret and server_url"
    allowed = {"client_id", "client_secret_secret", "server_url", "teams"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        return f"unknown field '{unknown[0]}'; allowed: {', '.join(sorted(allowed))}"
    if not isinstance(body.get("client_id"), str) or not body["client_id"]:
        return "client_id: set it to the OAuth app's client ID (the secret goes in the secrets folder)"
    if unsafe_name_reason(body.get("client_secret_secret", GITHUB_SECRET)):
        return "client_secret_secret: must name a file in the secrets folder, e.g. \"github-oauth-secret\""
    url = body.get("server_url", "")
    if not isinstance(url, str) or (url and not url.startswith("https://")):
        return "server_url: GitHub Enterprise's https:// address, or leave it out for github.com"
    teams = body.get("teams")
    if not isinstance(teams, dict) or not teams:
        return "teams: map GitHub teams to roles, e.g. { \"my-org/ops\" = \"ops\" }"
    for team, role in teams.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_. -]+", team) or role not in ROLES:
            return f"teams.{team}: must be \"ORG/TEAM\" = one of {', '.join(ROLES)}"
    if other_users:
        return (f"GitHub sign-in replaces passwords, so password users ({', '.join(other_users)}) "
                "could not sign in; remove them or the [users.github] table")
    return None


# --- farm.toml, edited as text so that ops' comments and layout survive ------------------------

def _header_key(name: str) -> str:
    # A bare TOML key cannot hold '.', which would split the name into nested tables.
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _header_pattern(name: str) -> re.Pattern[str]:
    key = "(?:" + re.escape(name) + "|" + re.escape(json.dumps(name)) + "|'" + re.escape(name) + "')"
    return re.compile(r"^\s*\[\s*users\s*\.\s*" + key + r"\s*\]\s*(#.*)?$")


def add_user_table(text: str, name: str, role: str) -> str:
    """farm.toml text with a `[users.NAME]` table appended."""
    check_user_name(name)
    check_role(role)
    if has_user_table(text, name):
        raise UserError(f"user '{name}' already exists in farm.toml; remove it first to change the role")
    body = text if not text or text.endswith("\n") else text + "\n"
    return body + f"\n[users.{_header_key(name)}]\nrole = {json.dumps(role)}\n"


def has_user_table(text: str, name: str) -> bool:
    pattern = _header_pattern(name)
    return any(pattern.match(line) for line in text.splitlines())


def remove_user_table(text: str, name: str) -> str:
    """farm.toml text without the `[users.NAME]` table (header to the next table or the end)."""
    pattern = _header_pattern(name)
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
    if start is None:
        raise UserError(f"user '{name}' is not declared as a [users.{name}] table in farm.toml")
    end = start + 1
    while end < len(lines) and not re.match(r"^\s*\[", lines[end]):
        end += 1
    # Comments and blank lines just before the next table belong to that table: keep them.
    while end > start + 1 and re.match(r"^\s*(#.*)?$", lines[end - 1]) and end < len(lines):
        end -= 1
    while start > 0 and not lines[start - 1].strip():
        start -= 1  # drop the blank line add_user_table put before the header
    return "".join(lines[:start] + lines[end:])
