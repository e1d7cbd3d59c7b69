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

from velofarm.users import OPS

# Captions of the top bar's control buttons (buildbot_www 4.3), by the role that may use them.
CONTROLS_BY_ROLE: dict[str, tuple[str, ...]] = {
    OPS: ("Stop", "Stopping...", "Rebuild", "Rebuilding...", "Cancel", "Cancelling...", "Cancel whole queue"),
}
# Worker actions (pause, graceful shutdown) are denied to everyone by the catch-all rule.
NEVER_OFFERED = ("Actions...",)

HIDE_SCRIPT = """<script id="velofarm-controls">
(function () {
  var hidden = new Set(%s);
  function sweep() {
    document.querySelectorAll("nav button, .navbar button, .bb-workers-view button").forEach(function (b) {
      var shown = !hidden.has(b.textContent.trim());
      if (b.hidden === shown) { b.hidden = !shown; b.style.display = shown ? "" : "none"; }
    });
  }
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
        script = HIDE_SCRIPT % json.dumps(hidden_controls(roles))
        return page.replace(b"</html>", script.encode("ascii") + b"</html>", 1)


def install_role_aware_index() -> None:
    """Have the www service build its index page from RoleAwareIndex; call before the site is built.

    The service looks the class up on buildbot.www.config each time it (re)builds the site.
    """
    wwwconfig.IndexResource = RoleAwareIndex  # type: ignore[misc]
