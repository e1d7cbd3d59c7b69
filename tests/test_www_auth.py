"""Sign-in and roles, checked with HTTP against a real master (deny by default).

The master runs with no worker processes: forced releases start on the master's own
coordinator and then wait for platform workers that never come, so no cargo build runs.
The GitHub sign-in is checked as configuration only (it would need github.com).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import FARM_TOML, need

from velofarm.buildmaster.auth import RolesFromGitHubTeams
from velofarm.buildmaster.www import NOBODY, farm_authz, sign_in
from velofarm.cli.localfarm import LocalFarm, git, write_farm
from velofarm.errors import SpecError
from velofarm.secretstore import SecretStore
from velofarm.spec.farm import load_spec
from velofarm.users import hash_password, user_secret_name

PASSWORDS = {"olga": "olga's long password", "rita": "rita's long password", "tess": "tess's long password"}
ROLES = {"olga": "ops", "rita": "release-manager", "tess": "ops"}


def add_users(farm: LocalFarm, roles: dict[str, str], passwords: dict[str, str]) -> None:
    """Declare users in farm.toml and store their hashes, as `velofarm user add` does."""
    tables = "".join(f'\n[users.{name}]\nrole = "{role}"\n' for name, role in roles.items())
    farm.spec_path.write_text(farm.spec_path.read_text() + tables)
    for name, password in passwords.items():
        farm.secrets.put(user_secret_name(name), hash_password(password))


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    need("git", "git")
    farm = write_farm(tmp_path_factory.mktemp("auth") / "farm", FARM_TOML, ["linux-x86_64"])
    add_users(farm, ROLES, PASSWORDS)
    farm.init_repo()
    git("tag", "v0.1.0", "main", cwd=farm.remote)  # tagged in the remote, not pushed: nothing starts
    farm.start_master()
    yield farm
    farm.stop_master()


@pytest.fixture(autouse=True)
def no_release_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test on the master leaves the release builder idle, whatever it started."""
    yield
    if "farm" not in request.fixturenames:
        return
    farm = request.getfixturevalue("farm")
    rita = session(farm, "rita")
    for pending in farm.api("buildrequests?complete=false")["buildrequests"]:
        if not pending["claimed"]:
            rpc(rita, farm, f"buildrequests/{pending['buildrequestid']}", "cancel", reason="test cleanup")
    for build in farm.api("builds?complete=false")["builds"]:
        rpc(rita, farm, f"builds/{build['buildid']}", "stop", reason="test cleanup")
    farm.wait(lambda: not farm.api("builds?complete=false")["builds"], 60, "running builds to stop")


def session(farm: LocalFarm, name: str | None = None) -> requests.Session:
    """A browser-like session, signed in with HTTP Basic when `name` is given."""
    s = requests.Session()
    if name:
        r = s.get(f"{farm.url}auth/login", auth=(name, PASSWORDS[name]), allow_redirects=False)
        assert r.status_code == 302, r.text
    return s


def rpc(s: requests.Session, farm: LocalFarm, path: str, method: str, **params: Any) -> requests.Response:
    body = {"method": method, "params": params, "id": 1, "jsonrpc": "2.0"}
    return s.post(f"{farm.url}api/v2/{path}", json=body)


def force(s: requests.Session, farm: LocalFarm, scheduler: str) -> requests.Response:
    return rpc(s, farm, f"forceschedulers/{scheduler}", "force", tag="v0.1.0", reason="test")


def forms(s: requests.Session, farm: LocalFarm) -> list[str]:
    builder = farm.api("builders?name=release")["builders"][0]["builderid"]
    listed = s.get(f"{farm.url}api/v2/builders/{builder}/forceschedulers").json()["forceschedulers"]
    return sorted(f["name"] for f in listed)


def user_info(s: requests.Session, farm: LocalFarm) -> dict[str, Any]:
    return dict(s.get(f"{farm.url}config").json()["user"])


def started_release(farm: LocalFarm, force_response: requests.Response) -> dict[str, Any]:
    """The release build a successful force started, with its dry_run property."""
    assert force_response.status_code == 200, force_response.text
    buildrequest = next(iter(force_response.json()["result"][1].values()))

    def build() -> dict[str, Any] | None:
        builds = farm.api(f"buildrequests/{buildrequest}/builds?property=dry_run")["builds"]
        # the build's properties are stored a moment after the build itself
        return builds[0] if builds and "dry_run" in builds[0].get("properties", {}) else None
    return dict(farm.wait(build, 60, f"a build for request {buildrequest}"))


@pytest.mark.integration
def test_anonymous_is_offered_no_force_form_and_a_force_call_gets_403(farm: LocalFarm) -> None:
    anonymous = session(farm)
    assert forms(anonymous, farm) == []
    assert anonymous.get(f"{farm.url}api/v2/forceschedulers").json()["forceschedulers"] == []
    assert anonymous.get(f"{farm.url}api/v2/forceschedulers/release-dry-run").status_code == 404
    for scheduler in ("release-dry-run", "release"):
        response = force(anonymous, farm, scheduler)
        assert response.status_code == 403, response.text
    assert farm.api("buildrequests")["buildrequests"] == []


@pytest.mark.integration
def test_a_wrong_password_is_refused(farm: LocalFarm) -> None:
    for name, password in (("olga", "rita's long password"), ("nobody", PASSWORDS["olga"]), ("olga", "")):
        basic = requests.get(f"{farm.url}auth/login", auth=(name, password), allow_redirects=False)
        assert basic.status_code == 401
        s = requests.Session()
        form = s.post(f"{farm.url}auth/login", data={"username": name, "password": password},
                      headers={"Origin": farm.url.rstrip("/")}, allow_redirects=False)
        assert form.status_code == 401 and "Wrong user name or password" in form.text
        assert user_info(s, farm).get("anonymous") is True


@pytest.mark.integration
def test_the_sign_in_form_sets_the_session(farm: LocalFarm) -> None:
    s = requests.Session()
    page = s.get(f"{farm.url}auth/login?redirect=/builders")
    assert page.status_code == 200 and 'name="password" type="password"' in page.text
    assert 'value="/builders"' in page.text
    r = s.post(f"{farm.url}auth/login", allow_redirects=False, headers={"Origin": farm.url.rstrip("/")},
               data={"username": "olga", "password": PASSWORDS["olga"], "redirect": "/builders"})
    assert r.status_code == 302 and r.headers["Location"] == f"{farm.url}#/builders"
    assert user_info(s, farm)["username"] == "olga"
    assert user_info(s, farm)["groups"] == ["ops"]


@pytest.mark.integration
def test_the_sign_in_form_refuses_other_sites(farm: LocalFarm) -> None:
    s = requests.Session()
    r = s.post(f"{farm.url}auth/login", allow_redirects=False, headers={"Origin": "https://evil.example"},
               data={"username": "olga", "password": PASSWORDS["olga"]})
    assert r.status_code == 403
    assert user_info(s, farm).get("anonymous") is True


@pytest.mark.integration
def test_ops_may_start_a_dry_run_and_stop_it_but_not_publish(farm: LocalFarm) -> None:
    olga = session(farm, "olga")
    assert forms(olga, farm) == ["release-dry-run"]
    refused = force(olga, farm, "release")
    assert refused.status_code == 403 and "release-manager" in refused.text
    build = started_release(farm, force(olga, farm, "release-dry-run"))
    assert build["properties"]["dry_run"][0] is True, "the dry-run form must really set dry_run"
    assert rpc(olga, farm, f"builds/{build['buildid']}", "stop", reason="test").status_code == 200
    assert rpc(session(farm), farm, f"builds/{build['buildid']}", "rebuild").status_code == 403
    rebuilt = rpc(olga, farm, f"builds/{build['buildid']}", "rebuild")
    assert rebuilt.status_code == 200, rebuilt.text
    rebuilt_build = started_release(farm, rebuilt)  # a rebuild answers like a force does
    assert rpc(olga, farm, f"builds/{rebuilt_build['buildid']}", "stop").status_code == 200


@pytest.mark.integration
def test_release_manager_may_publish_and_only_they_may_rebuild_a_publishing_release(farm: LocalFarm) -> None:
    rita, olga = session(farm, "rita"), session(farm, "olga")
    assert forms(rita, farm) == ["release", "release-dry-run"]
    build = started_release(farm, force(rita, farm, "release"))
    assert build["properties"]["dry_run"][0] is False
    assert rpc(olga, farm, f"builds/{build['buildid']}", "stop").status_code == 200  # ops may stop anything
    refused = rpc(olga, farm, f"builds/{build['buildid']}", "rebuild")
    assert refused.status_code == 403 and "release-manager" in refused.text  # a rebuild would publish
    rebuilt = rpc(rita, farm, f"builds/{build['buildid']}", "rebuild")
    assert rebuilt.status_code == 200, rebuilt.text
    again = started_release(farm, rebuilt)
    assert rpc(rita, farm, f"builds/{again['buildid']}", "stop").status_code == 200


@pytest.mark.integration
def test_every_other_action_is_denied_to_everyone(farm: LocalFarm) -> None:
    scheduler = farm.api("schedulers")["schedulers"][0]["schedulerid"]
    worker = farm.api("workers")["workers"][0]["workerid"]
    actions = [(f"schedulers/{scheduler}", "enable", {"enabled": False}),
               (f"workers/{worker}", "pause", {"reason": "test"}),
               (f"workers/{worker}", "kill", {}),
               ("builders/1", "rebuild", {})]
    for who in (None, "olga", "rita"):
        s = session(farm, who)
        for path, method, params in actions:
            response = rpc(s, farm, path, method, **params)
            assert response.status_code == 403, (who, path, method, response.text)
    assert farm.api(f"schedulers/{scheduler}")["schedulers"][0]["enabled"] is True


def test_the_rules_end_with_a_catch_all_deny() -> None:
    rules = farm_authz([]).allowRules
    assert type(rules[-1]).__name__ == "AnyControlEndpointMatcher" and rules[-1].role == NOBODY
    assert all(rule.defaultDeny for rule in rules)


@pytest.mark.integration
def test_the_browser_config_holds_no_hash_or_user_list(farm: LocalFarm) -> None:
    for page in ("config", ""):
        text = session(farm, "rita").get(f"{farm.url}{page}").text
        assert "scrypt$" not in text and "tess" not in text
        assert json.dumps({"name": "velofarm"})[1:-1] in text


@pytest.mark.integration
def test_a_new_password_applies_at_once_and_a_removed_user_loses_everything(farm: LocalFarm) -> None:
    tess = session(farm, "tess")
    assert forms(tess, farm) == ["release-dry-run"]
    farm.secrets.put(user_secret_name("tess"), hash_password("tess's newer password"))
    assert requests.get(f"{farm.url}auth/login", auth=("tess", PASSWORDS["tess"])).status_code == 401
    assert requests.get(f"{farm.url}auth/login", auth=("tess", "tess's newer password"),
                        allow_redirects=False).status_code == 302
    out = subprocess.run([sys.executable, "-m", "velofarm.cli.main", "user", "remove", "tess",
                          "--spec", str(farm.spec_path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    _reconfig(farm)
    assert forms(tess, farm) == []  # the old session cookie is still valid, but carries no role now
    assert force(tess, farm, "release-dry-run").status_code == 403
    assert requests.get(f"{farm.url}auth/login", auth=("tess", "tess's newer password")).status_code == 401


def _reconfig(farm: LocalFarm) -> None:
    log = farm.master_dir / "twistd.log"
    before = log.read_text().count("configuration update complete")
    farm.reconfig()
    deadline = time.monotonic() + 60
    while log.read_text().count("configuration update complete") <= before:
        assert time.monotonic() < deadline, "reconfig did not finish"
        time.sleep(0.2)


@pytest.mark.integration
def test_the_ui_pages_stay_readable_by_anyone(farm: LocalFarm) -> None:
    anonymous = session(farm)
    assert anonymous.get(farm.url).status_code == 200
    assert anonymous.get(f"{farm.url}api/v2/builds").status_code == 200
    assert anonymous.get(f"{farm.url}plugins/wsgi_dashboards/releases/table").status_code == 200



GITHUB = ('\n[users.github]\nclient_id = "Iv1.abc"\n'
          'teams = { "acme/ops" = "ops", "acme/Release-Team" = "release-manager" }\n')


def test_github_sign_in_maps_teams_to_roles(tmp_path: Path) -> None:
    farm = write_farm(tmp_path / "farm", FARM_TOML, ["linux-x86_64"])
    farm.spec_path.write_text(farm.spec_path.read_text() + GITHUB)
    spec = load_spec(farm.spec_path)
    with pytest.raises(SpecError, match="github-oauth-secret"):
        sign_in(spec, farm.secrets)
    farm.secrets.put("github-oauth-secret", "oauth-client-secret")
    auth, matchers = sign_in(spec, SecretStore(farm.secrets.directory))
    assert type(auth).__name__ == "GitHubAuth" and auth.getTeamsMembership and auth.apiVersion == 4
    assert "oauth-client-secret" not in json.dumps(auth.getConfigDict())
    [teams] = matchers
    assert isinstance(teams, RolesFromGitHubTeams)
    assert teams.getRolesFromUser({"username": "octocat", "groups": ["acme", "acme/ops"]}) == ["ops"]
    assert teams.getRolesFromUser({"groups": ["acme/release-team"]}) == ["ops", "release-manager"]
    assert teams.getRolesFromUser({"username": "olga", "groups": ["other/ops"]}) == []
