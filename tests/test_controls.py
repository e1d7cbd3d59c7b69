"""Which build controls the UI's index page removes for a visitor's roles (controls.py)."""

from __future__ import annotations

import json

from velofarm.buildmaster.controls import HIDE_SCRIPT, hidden_controls
from velofarm.users import OPS, RELEASE_MANAGER, roles_for


def test_anonymous_and_roleless_visitors_lose_every_control() -> None:
    for roles in (set(), {"nobody"}):
        hidden = hidden_controls(roles)
        assert {"Stop", "Rebuild", "Cancel", "Cancel whole queue"} <= set(hidden)


def test_ops_and_release_managers_keep_stop_rebuild_and_cancel() -> None:
    for role in (OPS, RELEASE_MANAGER):
        hidden = hidden_controls(set(roles_for(role)))
        assert not {"Stop", "Rebuild", "Cancel"} & set(hidden), role
        assert "Actions..." in hidden  # worker actions: nobody's role allows them


def test_the_script_carries_exactly_the_hidden_captions() -> None:
    script = HIDE_SCRIPT % (json.dumps(hidden_controls(set())), "0")
    listed = json.loads(script.split("new Set(", 1)[1].split("), releaseBuilder", 1)[0])
    assert listed == hidden_controls(set()) and script.startswith('<script id="velofarm-controls">')
