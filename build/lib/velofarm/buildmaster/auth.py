"""Sign-in for the web UI: farm.toml users with scrypt password hashes from the secrets folder.

Buildbot's own `HTPasswdAuth` only reads plaintext password files (buildbot#3126), so the farm
checks hashes itself. Browsers get a sign-in form at /auth/login; scripts may send HTTP Basic
credentials to the same address. Either way the answer is Buildbot's session cookie.
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

from buildbot.www import resource
from buildbot.www.auth import AuthBase, AuthRealm, PreAuthenticatedLoginResource, UserInfoProviderBase
from buildbot.www.authz.roles import RolesFromBase
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet import defer, threads
from twisted.web.guard import BasicCredentialFactory, HTTPAuthSessionWrapper
from zope.interface import implementer

from velofarm.secretstore import SecretStore
from velofarm.users import roles_for, user_secret_name, verify_password

LOGIN_PAGE = Template((Path(__file__).parent / "templates" / "login.html").read_text(encoding="utf-8"))
MAX_FIELD = 1024  # longer user names or passwords are refused before any hashing


@implementer(ICredentialsChecker)
class HashedPasswordChecker:
    """Checks a user name and password against farm.toml's users and the hash in the secrets folder.

    The hash is read at each sign-in, so `velofarm user passwd` applies at once; the user list
    comes from the loaded config, so adding or removing a user takes a reconfig.
    """

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, users: dict[str, str], store: SecretStore) -> None:
        self.users = dict(users)
        self.store = store

    def _verify(self, username: str, password: str) -> bool:
        stored = self.store.get(user_secret_name(username)) if username in self.users else None
        return verify_password(password, stored)  # hashes even for unknown names: no timing hint

    @defer.inlineCallbacks
    def requestAvatarId(self, credentials: Any) -> Any:
        try:
            username = credentials.username.decode("utf-8")
            password = credentials.password.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            raise UnauthorizedLogin() from None
        if not username or len(username) > MAX_FIELD or len(password) > MAX_FIELD:
            raise UnauthorizedLogin()
        ok = yield threads.deferToThread(self._verify, username, password)  # scrypt takes ~0.1 s
        if not ok:
            raise UnauthorizedLogin()
        return credentials.username


class FarmUserInfo(UserInfoProviderBase):
    """What the UI shows about a signed-in user: the name and the roles, never an e-mail guess."""

    name = "velofarm"

    def __init__(self, users: dict[str, str]) -> None:
        self.users = dict(users)

    def getUserInfo(self, username: str) -> defer.Deferred[dict[str, Any]]:
        return defer.succeed({"full_name": username,
                              "groups": list(roles_for(self.users.get(username, "")))})


class HashedPasswordAuth(AuthBase):
    """Buildbot auth for farm.toml users; `users` maps each name to its role."""

    def __init__(self, users: dict[str, str], store: SecretStore) -> None:
        super().__init__(userInfoProvider=FarmUserInfo(users))
        self.checker = HashedPasswordChecker(users, store)

    def getLoginResource(self) -> resource.Resource:
        return LoginResource(self.master, self)

    def basic_auth_resource(self) -> Any:
        portal = Portal(AuthRealm(self.master, self), [self.checker])  # type: ignore[list-item]
        return HTTPAuthSessionWrapper(portal, [BasicCredentialFactory(b"velofarm")])

    def getConfigDict(self) -> dict[str, Any]:
        # Shown to the browser: the name only, never the user list.
        return {"name": "velofarm"}


class LoginResource(resource.Resource):
    """GET: the sign-in form (or HTTP Basic for scripts); POST: check the form, set the session."""

    def __init__(self, master: Any, auth: HashedPasswordAuth) -> None:
        super().__init__(master)
        self.auth = auth

    def render_GET(self, request: Any) -> Any:
        if request.getHeader(b"authorization"):
            return self.auth.basic_auth_resource().render(request)
        return self._page(request, "", 200)

    def render_POST(self, request: Any) -> Any:
        return self.asyncRenderHelper(request, self._sign_in)

    @defer.inlineCallbacks
    def _sign_in(self, request: Any) -> Any:
        if not self._same_origin(request):
            # A page elsewhere must not sign a browser in to an account of its choosing.
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"sign-in refused: the form was not sent from this site\n"
        username = _field(request, b"username")
        password = _field(request, b"password")
        try:
            avatar = yield self.auth.checker.requestAvatarId(UsernamePassword(username, password))
        except UnauthorizedLogin:
            return self._page(request, "Wrong user name or password.", 401)
        yield PreAuthenticatedLoginResource(self.master, avatar).renderLogin(request)  # redirects

    def _same_origin(self, request: Any) -> bool:
        origin = request.getHeader(b"origin")
        if not origin or origin == b"null":
            return origin is None  # an opaque ("null") origin is never this site
        ours = urlsplit(self.master.config.buildbotURL)
        theirs = urlsplit(origin.decode("latin-1"))
        return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)

    def _page(self, request: Any, error: str, code: int) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-frame-options", b"DENY")
        redirect = _field(request, b"redirect").decode("utf-8", "replace") or "/"
        page = LOGIN_PAGE.substitute(
            title=html.escape(self.master.config.title or "velofarm"),
            error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
            redirect=html.escape(redirect, quote=True))
        return page.encode("utf-8")


def _field(request: Any, name: bytes) -> bytes:
    values = request.args.get(name) or [b""]
    return bytes(values[0])[:MAX_FIELD + 1]


class RolesFromFarmUsers(RolesFromBase):
    """Roles from farm.toml by user name, looked up at each request.

    Not from the session cookie: a user removed from farm.toml loses every role at the next
    reconfig, even with a cookie that is still valid.
    """

    def __init__(self, users: dict[str, str]) -> None:
        super().__init__()
        self.users = dict(users)

    def getRolesFromUser(self, userDetails: dict[str, Any]) -> list[str]:
        return list(roles_for(self.users.get(str(userDetails.get("username", "")), "")))


class RolesFromGitHubTeams(RolesFromBase):
    """Roles from GitHub team membership ("ORG/TEAM" groups, as GitHubAuth reports them)."""

    def __init__(self, teams: dict[str, str]) -> None:
        super().__init__()
        self.teams = {team.lower(): role for team, role in teams.items()}

    def getRolesFromUser(self, userDetails: dict[str, Any]) -> list[str]:
        roles: set[str] = set()
        for group in userDetails.get("groups", []):
            roles.update(roles_for(self.teams.get(str(group).lower(), "")))
        return sorted(roles)
