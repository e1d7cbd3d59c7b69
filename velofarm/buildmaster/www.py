"""The web UI: Buildbot's views, bound to loopback by default, with sign-in, roles and the Releases page.

Roles, deny by default: anyone may read; `ops` may force a dry run, stop, cancel and rebuild;
`release-manager` (who also holds `ops`) may start a release that publishes. Buildbot ALLOWS
any action that no rule matches, so the rules end with a catch-all that nobody passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from buildbot.data.forceschedulers import ForceSchedulerEndpoint, ForceSchedulersEndpoint
from buildbot.plugins import util
from buildbot.www.authz import Forbidden
from buildbot.www.authz.endpointmatchers import EndpointMatcherBase, Match
from buildbot.www.rest import RestRootResource, V2RootResource
from twisted.internet import defer

from velofarm.buildmaster.auth import HashedPasswordAuth, RolesFromFarmUsers, RolesFromGitHubTeams
from velofarm.buildmaster.controls import install_role_aware_index
from velofarm.buildmaster.dashboard import mount_downloads, releases_dashboard
from velofarm.buildmaster.farmplan import RELEASE_BUILDER
from velofarm.errors import SpecError
from velofarm.secretstore import SecretStore
from velofarm.spec.farm import Spec
from velofarm.users import GITHUB_SECRET, GITHUB_TABLE, OPS, RELEASE_MANAGER

WEBHOOK_SECRET = "webhook-secret"
PUBLISHING_SCHEDULERS = ("release",)
# A role no user is ever given, so the catch-all rule denies everyone; Buildbot shows its name in
# the refusal ("you need to have role ..."), hence the wording.
NOBODY = "nobody (not allowed on this farm)"


def www_config(spec: Spec, store: SecretStore, artifacts_root: Path) -> dict[str, Any]:
    """Buildbot's `www` settings: port, views, sign-in, roles, the Releases page and downloads."""
    auth, role_matchers = sign_in(spec, store)
    RestRootResource.addApiVersion(2, OfferedForceForms)  # before the site is built: see the class
    install_role_aware_index()  # Stop/Rebuild/Cancel only for roles that may use them (controls.py)
    mount_downloads(artifacts_root)
    return {
        "port": f"tcp:{spec.master.www_port}:interface={spec.master.www_bind}",
        "plugins": {"waterfall_view": {}, "console_view": {}, "grid_view": {},
                    "wsgi_dashboards": [releases_dashboard(spec, artifacts_root)]},
        "auth": auth,
        "authz": farm_authz(role_matchers),
    }


def sign_in(spec: Spec, store: SecretStore) -> tuple[Any, list[Any]]:
    """The auth and the role matchers: GitHub teams when [users.github] is set, else farm.toml users."""
    github: dict[str, Any] | None = spec.users.get(GITHUB_TABLE)
    if github is None:
        users = {name: body["role"] for name, body in spec.users.items()}
        return HashedPasswordAuth(users, store), [RolesFromFarmUsers(users)]
    secret_name = str(github.get("client_secret_secret", GITHUB_SECRET))
    secret = store.get(secret_name)
    if not secret:
        raise SpecError(f"farm.toml: users.github: the OAuth client secret '{secret_name}' is missing from "
                        f"{store.directory}; write it there (mode 0600)")
    auth = util.GitHubAuth(str(github["client_id"]), secret, serverURL=github.get("server_url") or None,
                           apiVersion=4, getTeamsMembership=True)
    return auth, [RolesFromGitHubTeams(dict(github["teams"]))]


def farm_authz(role_matchers: list[Any]) -> Any:
    """The rules, in order; the first rule that matches an action decides it."""
    return util.Authz(
        roleMatchers=role_matchers,
        allowRules=[
            ForceSchedulerMatcher(PUBLISHING_SCHEDULERS, role=RELEASE_MANAGER),
            PublishingRebuildMatcher(role=RELEASE_MANAGER),
            util.ForceBuildEndpointMatcher(role=OPS),
            util.StopBuildEndpointMatcher(role=OPS),
            CancelBuildRequestMatcher(role=OPS),
            util.RebuildBuildEndpointMatcher(role=OPS),
            util.AnyControlEndpointMatcher(role=NOBODY),
        ])


class ForceSchedulerMatcher(EndpointMatcherBase):
    """A force through one of the named force schedulers (Buildbot's own matcher only knows builders,
    and both release forms start the same builder)."""

    def __init__(self, schedulers: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schedulers = schedulers

    def match_ForceSchedulerEndpoint_force(self, epobject: Any, epdict: dict[str, Any],
                                           options: dict[str, Any]) -> defer.Deferred[Match | None]:
        return defer.succeed(Match(self.master) if epdict.get("schedulername") in self.schedulers else None)


class PublishingRebuildMatcher(EndpointMatcherBase):
    """A rebuild of a release build that was not a dry run: a rebuild reuses the properties, so it
    would publish again."""

    @defer.inlineCallbacks
    def match_BuildEndpoint_rebuild(self, epobject: Any, epdict: dict[str, Any],
                                    options: dict[str, Any]) -> Any:
        build = yield epobject.get({}, epdict)
        if build is None:
            return None
        builder = yield self.master.data.get(("builders", build["builderid"]))
        if builder is None or builder["name"] != RELEASE_BUILDER:
            return None
        props = yield self.master.db.builds.getBuildProperties(build["buildid"])
        dry_run = props.get("dry_run", (False, ""))[0]
        return None if dry_run is True else Match(self.master, build=build)


class CancelBuildRequestMatcher(EndpointMatcherBase):
    """Cancelling a build request that has not started: the UI's "Cancel" on a pending build."""

    def match_BuildRequestEndpoint_cancel(self, epobject: Any, epdict: dict[str, Any],
                                          options: dict[str, Any]) -> defer.Deferred[Match | None]:
        return defer.succeed(Match(self.master))


class OfferedForceForms(V2RootResource):
    """The REST API, listing to each user only the force forms they may submit.

    Buildbot's UI shows a button for every force scheduler, even to anonymous users whose force
    would be refused. Reads do pass through authz, so the list is filtered by asking authz whether
    this user may force each scheduler. Installed with RestRootResource.addApiVersion, Buildbot's
    own hook for the API version classes, before the site is built.
    """

    @defer.inlineCallbacks
    def getEndpoint(self, request: Any, method: str, params: dict[str, Any]) -> Any:
        ep, kwargs = yield super().getEndpoint(request, method, params)
        if method == "GET" and isinstance(ep, (ForceSchedulersEndpoint, ForceSchedulerEndpoint)):
            ep = _AllowedForceSchedulers(ep, self.master, request)
        return ep, kwargs


class _AllowedForceSchedulers:
    """Wraps a force-scheduler endpoint; only `get` changes."""

    def __init__(self, endpoint: Any, master: Any, request: Any) -> None:
        self._endpoint = endpoint
        self._master = master
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._endpoint, name)

    @defer.inlineCallbacks
    def get(self, result_spec: Any, kwargs: dict[str, Any]) -> Any:
        data = yield self._endpoint.get(result_spec, kwargs)
        if isinstance(data, dict):
            allowed = yield self._may_force(data["name"])
            return data if allowed else None
        kept = []
        for sched in data or []:
            if (yield self._may_force(sched["name"])):
                kept.append(sched)
        return kept

    @defer.inlineCallbacks
    def _may_force(self, name: str) -> Any:
        try:
            yield self._master.www.assertUserAllowed(self._request, ("forceschedulers", name), "force", {})
        except Forbidden:
            return False
        return True
