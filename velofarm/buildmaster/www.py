"""The web UI: Buildbot's views, bound to loopback by default, and the signed webhook."""

from __future__ import annotations

from typing import Any

from velofarm.secretstore import SecretStore
from velofarm.spec import Spec

WEBHOOK_SECRET = "webhook-secret"


def www_config(spec: Spec, store: SecretStore) -> dict[str, Any]:
    www: dict[str, Any] = {
        "port": f"tcp:{spec.master.www_port}:interface={spec.master.www_bind}",
        "plugins": {"waterfall_view": {}, "console_view": {}, "grid_view": {}},
        "change_hook_dialects": {},
    }
    webhook_secret = store.get(WEBHOOK_SECRET)
    if webhook_secret:
        www["change_hook_dialects"]["velofarm"] = {"secret": webhook_secret, "tag_pattern": spec.release.tag_pattern}
    return www
