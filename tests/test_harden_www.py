"""Findings 8 and 9 against a real master: sign-in limits, and a session cookie that is HttpOnly,
SameSite, Secure when [master] url is https, short-lived, and ends when the password changes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from conftest import FARM_TOML, need
from test_www_auth import add_users

from velofarm.buildmaster.signin import MAX_CLIENT_FAILURES, MAX_USER_FAILURES, SignInLimits, TooManySignIns
from velofarm.cli.localfarm import LocalFarm, write_farm
from velofarm.users import hash_password, user_secret_name

pytestmark = pytest.mark.integration
PASSWORDS = {"olga": "olga's long password", "rita": "rita's long password", "tess": "tess's long password",
             "uma": "uma's long password"}
ROLES = {"olga": "ops", "rita": "release-manager", "tess": "ops", "uma": "ops"}
HOURS = 2


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    need("git", "git")
    farm = write_farm(tmp_path_factory.mktemp("www") / "farm", FARM_TOML, ["linux-x86_64"],
                      master={"session_hours": HOURS})
    # As behind the TLS proxy: the public address is https, the master itself serves plain HTTP.
    farm.spec_path.write_text(farm.spec_path.read_text().replace(
        f'url = "http://127.0.0.1:{farm.www_port}/"', f'url = "https://127.0.0.1:{farm.www_port}/"'))
    add_users(farm, ROLES, PASSWORDS)
    farm.start_master()
    yield farm
    farm.stop_master()


def origin(farm: LocalFarm) -> str:
    return f"https://127.0.0.1:{farm.www_port}"


def sign_in(farm: LocalFarm, name: str, password: str | None = None,
            headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(f"{farm.url}auth/login", allow_redirects=False,
                         headers={"Origin": origin(farm)} if headers is None else headers,
                         data={"username": name, "password": PASSWORDS[name] if password is None else password})


def cookie_of(response: requests.Response) -> tuple[str, str]:
    """(name=value, the attributes) of the session cookie the answer sets last (Twisted first sets
    one for the anonymous session the request started with; the browser keeps the last)."""
    header = response.raw.headers.getlist("Set-Cookie")[-1]
    pair, _, attributes = header.partition(";")
    return pair.strip(), attributes.lower()


def who(farm: LocalFarm, cookie: str) -> dict[str, object]:
    # The cookie is Secure, so a client would only send it over https: send it by hand here.
    return dict(requests.get(f"{farm.url}config", headers={"Cookie": cookie}).json()["user"])


def test_the_session_cookie_is_httponly_samesite_and_secure(farm: LocalFarm) -> None:
    r = sign_in(farm, "olga")
    assert r.status_code == 302, r.text
    pair, attributes = cookie_of(r)
    assert "httponly" in attributes and "samesite=lax" in attributes and "secure" in attributes.split("; ")
    assert who(farm, pair)["username"] == "olga"


def test_the_session_lives_session_hours(farm: LocalFarm) -> None:
    pair, _ = cookie_of(sign_in(farm, "olga"))
    payload = pair.split("=", 1)[1].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert abs(claims["exp"] - time.time() - HOURS * 3600) < 120


def test_a_new_password_ends_the_users_sessions(farm: LocalFarm) -> None:
    pair, _ = cookie_of(sign_in(farm, "tess"))
    assert who(farm, pair)["username"] == "tess"
    farm.secrets.put(user_secret_name("tess"), hash_password("tess's newer password"))  # as `user passwd` does
    assert who(farm, pair).get("anonymous") is True
    fresh, _ = cookie_of(sign_in(farm, "tess", "tess's newer password"))
    assert who(farm, fresh)["username"] == "tess"


def test_removing_a_user_ends_their_sessions_at_once(farm: LocalFarm) -> None:
    pair, _ = cookie_of(sign_in(farm, "uma"))
    assert who(farm, pair)["username"] == "uma"
    out = subprocess.run([sys.executable, "-m", "velofarm.cli.main", "user", "remove", "uma", "--spec",
                          str(farm.spec_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert who(farm, pair).get("anonymous") is True  # before any reconfig


@pytest.mark.parametrize("headers", [{}, {"Origin": "null"}, {"Referer": "https://evil.example/login"},
                                     {"Origin": "http://127.0.0.1:1"}])
def test_a_sign_in_without_this_sites_origin_or_referer_is_refused(farm: LocalFarm, headers: dict[str, str]) -> None:
    r = sign_in(farm, "olga", headers=headers)
    assert r.status_code == 403 and "Origin or Referer" in r.text
    assert "Set-Cookie" not in r.headers


def test_a_sign_in_with_this_sites_referer_is_accepted(farm: LocalFarm) -> None:
    r = sign_in(farm, "olga", headers={"Referer": f"{origin(farm)}/auth/login"})
    assert r.status_code == 302


# Last in this module: they use up this client's failures.
def test_failed_sign_ins_are_limited_per_user_then_per_client(farm: LocalFarm) -> None:
    for _ in range(MAX_USER_FAILURES):
        assert sign_in(farm, "olga", "wrong").status_code == 401
    blocked = sign_in(farm, "olga")  # the right password, but too late: no hash is computed
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "too many failed sign-ins for user olga" in blocked.text.lower()
    basic = requests.get(f"{farm.url}auth/login", auth=("olga", PASSWORDS["olga"]), allow_redirects=False)
    assert basic.status_code == 401  # HTTP Basic is limited as well
    assert sign_in(farm, "rita").status_code == 302  # another user from this client still may
    for i in range(MAX_CLIENT_FAILURES - MAX_USER_FAILURES):  # a different name each time
        r = requests.post(f"{farm.url}auth/login", headers={"Origin": origin(farm)}, allow_redirects=False,
                          data={"username": f"guess{i}", "password": "wrong"})
        assert r.status_code == 401
    refused = sign_in(farm, "rita")
    assert refused.status_code == 429 and "this address" in refused.text


def test_limits_count_within_a_window_and_forget_after_it() -> None:
    now = [1000.0]
    limits = SignInLimits(clock=lambda: now[0], window=60, max_user=2, max_client=3)
    limits.failed("a", "1.1.1.1")
    limits.failed("a", "2.2.2.2")
    with pytest.raises(TooManySignIns) as caught:
        limits.check("a", "3.3.3.3")  # per user, whatever the address
    assert caught.value.retry_after == 60
    limits.check("b", "1.1.1.1")
    now[0] += 61
    limits.check("a", "3.3.3.3")  # the window passed
    for name in ("x", "y", "z"):
        limits.failed(name, "4.4.4.4")
    with pytest.raises(TooManySignIns, match="this address"):
        limits.check("w", "4.4.4.4")
    limits.succeeded("x")  # a success forgives the user, not the address
    with pytest.raises(TooManySignIns):
        limits.check("x", "4.4.4.4")
