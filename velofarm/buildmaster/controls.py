"""Build controls (Stop, Rebuild, Cancel) shown only to users whose role may use them.

Buildbot's UI draws Stop, Rebuild and Cancel for every visitor and lets the API refuse them.
The force forms are already filtered by the REST API (www.OfferedForceForms); the other
controls have no API to filter, so the page itself is changed: the UI's index page is rendered
with the visitor's roles known, and a short script removes the buttons those roles may not
use. The API's refusal stays the rule; this only stops the UI from offering what it refuses.
"""

from __future__ import annotations

import json
from typing import Any

from buildbot.www import config as wwwconfig
from twisted.internet import defer

from velofarm.buildmaster.schedulers import RELEASE_BUILDER
from velofarm.users import OPS, RELEASE_MANAGER

# Captions of the top bar's control buttons (buildbot_www 4.3), by the role that may use them.
CONTROLS_BY_ROLE: dict[str, tuple[str, ...]] = {
    OPS: ("Stop", "Stopping...", "Rebuild", "Rebuilding...", "Cancel", "Cancelling...", "Cancel whole queue"),
}
# Worker actions (pause, graceful shutdown) are denied to everyone by the catch-all rule.
NEVER_OFFERED = ("Actions...",)

# A rebuild reuses the build's properties, so rebuilding a publishing release publishes: only a
# release manager may (www.PublishingRebuildMatcher). For everyone else the script asks the API
# whether a release build is a dry run before it leaves Rebuild on that build's page.
HIDE_SCRIPT = """<script id="velofarm-controls">
(function () {
  var hidden = new Set(%s), releaseBuilder = %s, publishing = {};
  function publishingBuild() {
    var m = releaseBuilder && location.hash.match(/^#\\/builders\\/(\\d+)\\/builds\\/(\\d+)$/);
    if (!m || Number(m[1]) !== releaseBuilder) return false;
    var key = m[1] + "/" + m[2];
    if (!(key in publishing)) {
      publishing[key] = true;  // hidden until the API says it is a dry run
      fetch("api/v2/builders/" + m[1] + "/builds/" + m[2] + "?property=dry_run").then(function (r) { return r.json(); })
        .then(function (d) { var p = d.builds[0].properties.dry_run; publishing[key] = !(p && p[0] === true); sweep(); })
        .catch(function () {});
    }
    return publishing[key];
  }
  function sweep() {
    var noRebuild = publishingBuild();
    document.querySelectorAll("nav button, .navbar button, .bb-workers-view button").forEach(function (b) {
      var caption = b.textContent.trim();
      var shown = !hidden.has(caption) && !(noRebuild && caption === "Rebuild");
      if (b.hidden === shown) { b.hidden = !shown; b.style.display = shown ? "" : "none"; }
    });
  }
  window.addEventListener("hashchange", sweep);
  new MutationObserver(sweep).observe(document.documentElement, {childList: true, subtree: true, characterData: true});
  document.addEventListener("DOMContentLoaded", sweep);
})();
</script>
"""


def hidden_controls(roles: set[str]) -> list[str]:
    """The button captions a user with these roles must not see."""
    hidden = [caption for role, captions in CONTROLS_BY_ROLE.items() if role not in roles for caption in captions]
    return sorted({*hidden, *NEVER_OFFERED})


class RoleAwareIndex(wwwconfig.IndexResource):
    """The UI's index page with the visitor's forbidden controls removed."""

    @defer.inlineCallbacks
    def renderIndex(self, request: Any) -> Any:
        page: bytes = yield super().renderIndex(request)
        user = self.master.www.getUserInfos(request)
        roles = set() if user.get("anonymous") else set(self.master.www.authz.getRolesFromUser(user))
        release_builder = 0  # 0: this user may rebuild any release build (or none at all)
        if OPS in roles and RELEASE_MANAGER not in roles:
            builders = yield self.master.data.get(("builders",))
            release_builder = next((b["builderid"] for b in builders if b["name"] == RELEASE_BUILDER), 0)
        script = HIDE_SCRIPT % (json.dumps(hidden_controls(roles)), json.dumps(release_builder))
        return page.replace(b"</html>", script.encode("ascii") + b"</html>", 1)


def install_role_aware_index() -> None:
    """Have the www service build its index page from RoleAwareIndex; call before the site is built.

    The service looks the class up on buildbot.www.config each time it (re)builds the site.
    """
    wwwconfig.IndexResource = RoleAwareIndex  # type: ignore[misc]
