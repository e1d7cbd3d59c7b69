"""Buildbot's session cookie, hardened in the Buildbot layer.

Buildbot 4.3 (buildbot/www/service.py, BuildbotSession.updateSession) sets the cookie with
`request.addCookie(name, jwt, path=b"/", secure=request.isSecure())`: no HttpOnly, no SameSite,
never Secure behind a TLS proxy (the proxy talks plain HTTP to the master), valid a week
(`expDelay`), and the JWT stays valid whatever happens to the user. Here the session class gets
a cookie with HttpOnly, SameSite=Lax and Secure whenever `[master] url` is https; a lifetime of
`[master] session_hours`; and a check at every request that the user's password is still the one
they signed in with (`velofarm user passwd` or `remove` ends their sessions at once).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from buildbot.www import auth as buildbot_auth
from buildbot.www.service import BuildbotSession

STAMP_FIELD = "session_stamp"


@dataclass
class SessionPolicy:
    secure: bool = False
    still_valid: Callable[[dict[str, Any]], bool] | None = None


POLICY = SessionPolicy()


def password_stamp(stored_hash: str) -> str:
    """What a session remembers of the password it was opened with (never the hash itself)."""
    return hashlib.sha256(stored_hash.encode("utf-8")).hexdigest()[:16]


def _update_session(self: BuildbotSession, request: Any) -> None:
    name = buildbot_auth.build_cookie_name(request.isSecure(), request.sitepath)
    request.addCookie(name, self.uid, path=b"/", secure=request.isSecure() or POLICY.secure,
                      httpOnly=True, sameSite="lax")


def _set_user_info_from_token(self: BuildbotSession, token: str) -> None:
    info = buildbot_auth.parse_user_info_from_token(token, self.site.session_secret)
    if POLICY.still_valid is not None and not POLICY.still_valid(info):
        raise KeyError("session ended: the user's password changed or the user was removed")
    self.user_info = info


def install_session_policy(secure: bool, hours: int,
                           still_valid: Callable[[dict[str, Any]], bool] | None) -> datetime.timedelta:
    """Apply the policy to Buildbot's session class; returns the lifetime for www's
    `cookie_expiration_time` (which Buildbot copies into the same class at each reconfig)."""
    POLICY.secure, POLICY.still_valid = secure, still_valid
    lifetime = datetime.timedelta(hours=hours)
    BuildbotSession.expDelay = lifetime
    BuildbotSession.updateSession = _update_session  # type: ignore[method-assign]
    BuildbotSession._set_user_info_from_token = _set_user_info_from_token  # type: ignore[method-assign]
    return lifetime
