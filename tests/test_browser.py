"""The web UI in a real browser, as each person uses it: Debian's Chromium driven by Playwright.

One farm for the whole module (a master and two real workers building the example project):
- a wrong password is refused with a message, and the same form then signs in;
- a release manager starts a publishing release from the form, watches it go green, finds it on
  the Releases page, downloads an archive through the page and checks its SHA-256 against the
  page and against SHA256SUMS;
- ops sees the dry-run form but not the publishing one, runs a dry run from it, may rebuild it
  but not the publishing release, and a publishing force sent from their session is refused;
- an anonymous visitor sees no Stop, Rebuild or force button on builders, builds or Releases;
- the Releases page with many tags is paginated, newest first, and filters by tag;
- a tag is pushed while the Windows linker is missing: the Releases page shows that platform
  red, and its link opens the failing step's log, which names the cause.
Tests that need a finished release wait for (or start) one, so each can also run alone.
Screenshots land in test-artifacts/ (git-ignored) at the end of every test, failed or not;
`UPDATE_SCREENSHOTS=1` also writes docs/releases-page.png for the README.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
from conftest import FARM_TOML, HOST_PLATFORMS, REPO, need, need_host_toolchains
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from velofarm.cli.localfarm import LocalFarm, git, write_farm
from velofarm.users import hash_password, user_secret_name

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
USERS = {"olga": ("ops", "olga's long password"), "rita": ("release-manager", "rita's longer password")}
RELEASE_TIMEOUT_MS = 840_000  # two cold cargo builds on a shared 2-core machine; pytest's limit is 900 s
CONTROLS = ("Stop", "Rebuild", "Cancel", "Start", "Publish release", "Start build")
SEEDED_TAGS = 120


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """Both host platforms, an ops user and a release manager; v0.1.0 tagged in the remote (not
    pushed through the hook, so nothing starts by itself)."""
    need("/usr/bin/chromium", "chromium")
    need_host_toolchains()
    farm = write_farm(tmp_path_factory.mktemp("browser") / "farm", FARM_TOML, HOST_PLATFORMS)
    users = "".join(f'\n[users.{name}]\nrole = "{role}"\n' for name, (role, _) in USERS.items())
    farm.spec_path.write_text(farm.spec_path.read_text() + users)
    for name, (_, password) in USERS.items():
        farm.secrets.put(user_secret_name(name), hash_password(password))
    farm.init_repo()
    git("tag", "v0.1.0", "main", cwd=farm.remote)
    farm.start_all()
    try:
        yield farm
    finally:
        farm.stop_all()
        if os.environ.get("VELOFARM_KEEP_LOGS"):
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(farm.master_dir / "twistd.log", ARTIFACTS / "browser-twistd.log")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = need("/usr/bin/chromium", "chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test: nobody is signed in."""
    context = browser.new_context(viewport={"width": 1500, "height": 900}, accept_downloads=True)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    shot(page, request.node.name.removeprefix("test_")[:60] + "-end")  # also when the test failed


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- what people do ----------------------------------------------------------------------------

def sign_in(page: Page, farm: LocalFarm, name: str, password: str | None = None) -> None:
    """Through the UI: the login bar's Login link, then the sign-in form."""
    page.goto(farm.url)
    page.click("#bb-loginbar-dropdown")
    page.get_by_text("Login").click()
    page.fill("#username", name)
    page.fill("#password", password or USERS[name][1])
    page.get_by_role("button", name="Sign in").click()


def release_builder(farm: LocalFarm) -> int:
    return int(farm.api("builders?name=release")["builders"][0]["builderid"])


def builder_id(farm: LocalFarm, name: str) -> int:
    return int(farm.api(f"builders?name={name}")["builders"][0]["builderid"])


def force_from_the_form(page: Page, farm: LocalFarm, button: str, tag: str) -> int:
    """Open the release builder, press the form's button, type the tag, start; the new build's number."""
    builder = release_builder(farm)
    page.goto(f"{farm.url}#/builders/{builder}")
    page.get_by_role("button", name=button).click()
    page.fill("[data-bb-test-id=force-field-tag]", tag)
    page.get_by_role("button", name="Start build").click()
    page.wait_for_url(re.compile(rf"#/builders/{builder}/builds/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def releases_frame(page: Page, farm: LocalFarm) -> Any:
    """The Releases page, reached from the UI's menu."""
    page.goto(farm.url)
    page.get_by_role("link", name="Releases").click()
    return page.frame_locator("#velofarm-releases-frame")


def visible_controls(page: Page) -> list[str]:
    return [name for name in CONTROLS if page.get_by_role("button", name=name, exact=True).count()]


# --- reading the farm (REST API, as a script would) ------------------------------------------

def finished_release(farm: LocalFarm, tag: str = "v0.1.0") -> dict[str, Any]:
    """A finished, successful release of `tag`: the one another test started, or one started here
    by the release manager through the API."""
    def ours() -> list[dict[str, Any]]:
        builds = farm.api("builders/release/builds?property=tag&order=number")["builds"]
        return [b for b in builds if b["properties"].get("tag", [None])[0] == tag]
    if not ours():
        force_as(farm, "rita", "release", tag)
    done = farm.wait(lambda: [b for b in ours() if b["complete"]], RELEASE_TIMEOUT_MS / 1000, f"release of {tag}", 1)
    assert done[-1]["results"] == 0, f"the release of {tag} failed: {done[-1]['state_string']}"
    return dict(done[-1])


def labelled_release(farm: LocalFarm, tag: str) -> dict[str, Any] | None:
    """The newest release build of `tag`, with its tag and branch properties."""
    builds = farm.api("builders/release/builds?property=tag&property=branch&order=-number")["builds"]
    return next((b for b in builds if b["properties"].get("tag", [None])[0] == tag), None)


def session(farm: LocalFarm, name: str) -> urllib.request.OpenerDirector:
    """A signed-in HTTP session (the sign-in form, as a browser posts it)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    form = f"username={name}&password={urllib.request.quote(USERS[name][1])}".encode()
    opener.open(urllib.request.Request(f"{farm.url}auth/login", data=form, method="POST"), timeout=30)
    return opener


def force_request(farm: LocalFarm, scheduler: str, tag: str) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "force",
                       "params": {"builderid": str(release_builder(farm)), "tag": tag, "reason": "browser test"}})
    headers = {"Content-Type": "application/json", "Origin": farm.url.rstrip("/")}
    return f"{farm.url}api/v2/forceschedulers/{scheduler}", body.encode(), headers


def force_as(farm: LocalFarm, name: str, scheduler: str, tag: str) -> None:
    url, body, headers = force_request(farm, scheduler, tag)
    session(farm, name).open(urllib.request.Request(url, data=body, headers=headers, method="POST"), timeout=60)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the tests ---------------------------------------------------------------------------------

def test_a_wrong_password_is_refused_and_the_form_stays_usable(farm: LocalFarm, page: Page) -> None:
    sign_in(page, farm, "olga", "not olga's password")
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    expect(page.locator("#password")).to_have_value("")  # nothing typed is echoed back
    shot(page, "wrong-password")
    page.fill("#username", "olga")
    page.fill("#password", USERS["olga"][1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#bb-loginbar-dropdown")).to_contain_text("olga")


def test_release_manager_publishes_from_the_form_and_checks_a_download(farm: LocalFarm, page: Page) -> None:
    sign_in(page, farm, "rita")
    expect(page.locator("#bb-loginbar-dropdown")).to_contain_text("rita")
    number = force_from_the_form(page, farm, "Publish release", "v0.1.0")
    expect(page.locator(".bb-build-summary").first).to_be_visible()
    shot(page, "release-running")

    # While it runs, the Releases page shows each platform's current step and how long it has run.
    # Warm builds take seconds, less than the page's own 10 s refresh: reload it as an impatient
    # release manager would.
    table = f"{farm.url}plugins/wsgi_dashboards/releases/table"
    current = page.locator('tr[data-tag="v0.1.0"][data-running="yes"] td.cell .current-step')
    for _ in range(600):
        page.goto(table)
        if current.filter(has_text=re.compile(r"now: .+ · \d+ s")).count():
            break
        assert not farm.builds("release")[-1]["complete"], "the release ended before the page showed a step"
        page.wait_for_timeout(100)
    expect(current.filter(has_text=re.compile(r"now: .+ · \d+ s")).first).to_be_visible()
    shot(page, "releases-running")

    page.goto(f"{farm.url}#/builders/{release_builder(farm)}/builds/{number}")
    expect(page.locator(".bb-build-summary.results_SUCCESS")).to_be_visible(timeout=RELEASE_TIMEOUT_MS)
    assert farm.wait_release(number, 60)["results"] == 0
    assert labelled_release(farm, "v0.1.0")["properties"]["branch"][0] == "v0.1.0"  # one label for the tag
    expect(page.get_by_role("button", name="Rebuild", exact=True)).to_be_visible()  # she may publish again

    # The platform build's steps say what happened, in the UI itself.
    linux = builder_id(farm, "build-linux-x86_64")
    page.goto(f"{farm.url}#/builders/{linux}/builds/1")
    for summary in ("version 0.1.0 = tag v0.1.0", "toolchain ok (rustc ", "smoke: ", "largest ", "sha256 ",
                    "stored ("):
        expect(page.get_by_text(summary).first).to_be_visible()
    expect(page.get_by_text("preflight.py")).to_have_count(0)  # no command line as a summary
    shot(page, "platform-build-steps")

    frame = releases_frame(page, farm)
    row = frame.locator('tr[data-tag="v0.1.0"]')
    expect(row).to_have_attribute("data-publish", "published")
    expect(row.locator(".release-location")).to_contain_text("releases/v0.1.0")
    # What the release recorded in release.json (signatures, provenance, SBOM, changelog) reaches the page.
    meta = json.loads((farm.root / "releases" / "v0.1.0" / "release.json").read_text())
    signatures = len(meta["signatures"])
    expect(row.locator(".fact-signed")).to_have_text(f"yes ({signatures} file{'' if signatures == 1 else 's'})")
    expect(row.locator(".fact-provenance")).to_have_text(meta["provenance"])
    expect(row.locator(".fact-sbom")).to_have_text(meta["sbom"])
    row.locator("td.changelog summary").click()
    expect(row.locator("td.changelog pre")).to_contain_text(meta["changelog"].strip().splitlines()[-1])
    sums = (farm.root / "releases" / "v0.1.0" / "SHA256SUMS").read_text()
    for platform in HOST_PLATFORMS:
        cell = row.locator(f'td[data-platform="{platform}"]')
        expect(cell).to_have_attribute("data-state", "success")
        page_sha = cell.locator("a.checksum").get_attribute("title") or ""
        with page.expect_download() as download:
            cell.locator("a.download").click()
        saved = ARTIFACTS / "downloads" / download.value.suggested_filename
        download.value.save_as(saved)
        assert sha256_of(saved) == page_sha, f"{saved.name}: the download does not match the page's sha256"
        assert f"{page_sha}  {saved.name}" in sums.splitlines(), f"{saved.name} is not in SHA256SUMS as downloaded"
    shot(page, "releases-published")


def test_ops_sees_the_dry_run_form_only_and_a_publishing_force_is_refused(farm: LocalFarm, page: Page) -> None:
    release = finished_release(farm)
    sign_in(page, farm, "olga")
    expect(page.locator("#bb-loginbar-dropdown")).to_contain_text("olga")
    page.goto(f"{farm.url}#/builders/{release_builder(farm)}")
    expect(page.get_by_role("button", name="Start", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Publish release")).to_have_count(0)
    dry_run = force_from_the_form(page, farm, "Start", "v0.1.0")  # the dry-run form
    shot(page, "ops-dry-run")
    expect(page.locator(".bb-build-summary.results_SUCCESS")).to_be_visible(timeout=RELEASE_TIMEOUT_MS)
    assert labelled_release(farm, "v0.1.0")["properties"]["branch"][0] == "v0.1.0"

    # A finished build offers ops a Rebuild (ops may rebuild; compare the anonymous test): the dry
    # run's and a platform build's, but not the publishing release's, whose rebuild would publish.
    page.wait_for_timeout(1000)  # the page asks the API whether this build is a dry run
    expect(page.get_by_role("button", name="Rebuild", exact=True)).to_be_visible()
    page.goto(f"{farm.url}#/builders/{builder_id(farm, 'build-linux-x86_64')}/builds/1")
    expect(page.get_by_role("button", name="Rebuild", exact=True)).to_be_visible()
    page.goto(f"{farm.url}#/builders/{release_builder(farm)}/builds/{release['number']}")
    expect(page.locator(".bb-build-summary.results_SUCCESS")).to_be_visible()
    page.wait_for_timeout(1000)  # the page asks the API whether this build is a dry run
    assert visible_controls(page) == [], f"ops is offered {visible_controls(page)} on a publishing release"

    # The publishing form's force, sent from this signed-in browser session, is refused.
    url, body, headers = force_request(farm, "release", "v0.1.0")
    answer = page.request.post(url, data=body, headers=headers)
    assert answer.status == 403, f"ops could force a publishing release: {answer.status} {answer.text()}"
    assert "release-manager" in answer.text()
    assert [b["number"] for b in farm.builds("release")][-1] == dry_run, "a release started anyway"


def test_an_anonymous_visitor_sees_no_control_anywhere(farm: LocalFarm, page: Page) -> None:
    release = finished_release(farm)
    linux = builder_id(farm, "build-linux-x86_64")
    pages = {"builders": "#/builders", "release builder": f"#/builders/{release_builder(farm)}",
             "release build": f"#/builders/{release_builder(farm)}/builds/{release['number']}",
             "platform builder": f"#/builders/{linux}", "platform build": f"#/builders/{linux}/builds/1"}
    for what, route in pages.items():
        page.goto(farm.url + route)
        expect(page.locator("#bb-loginbar-dropdown")).to_contain_text("Anonymous")
        expect(page.locator(".bb-build-summary, .bb-builders-table, table").first).to_be_visible()
        page.wait_for_timeout(500)  # let the UI finish drawing its top bar
        assert visible_controls(page) == [], f"the {what} page offers {visible_controls(page)} to anonymous"
    shot(page, "anonymous-platform-build")
    frame = releases_frame(page, farm)
    expect(frame.locator('tr[data-tag="v0.1.0"]')).to_be_visible()
    assert frame.get_by_role("button").all_inner_texts() == ["Filter"]  # the tag filter, nothing else


def test_many_tags_are_paginated_newest_first(farm: LocalFarm, page: Page) -> None:
    """The page also lists every tag in the artifact store (the data it reads besides builds)."""
    store = farm.master_dir / "artifacts"
    for n in range(1, SEEDED_TAGS + 1):
        folder = store / f"v0.0.{n}" / "linux-x86_64"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"velostream-v0.0.{n}-x86_64-unknown-linux-gnu.tar.gz"
        (folder / name).write_bytes(f"archive {n}".encode())
        (folder / f"{name}.sha256").write_text(f"{hashlib.sha256(f'archive {n}'.encode()).hexdigest()}  {name}\n")
    frame = releases_frame(page, farm)
    tags = frame.locator("tr[data-tag]")
    expect(tags).to_have_count(50)
    expect(frame.locator(".summary")).to_contain_text(re.compile(r"\d+ tags · page 1 of 3"))
    shown = tags.evaluate_all("rows => rows.map(r => r.dataset.tag)")
    seeded = [t for t in shown if t.startswith("v0.0.")]
    assert seeded == [f"v0.0.{n}" for n in range(SEEDED_TAGS, SEEDED_TAGS - len(seeded), -1)]
    assert shown.index(seeded[0]) == len(shown) - len(seeded)  # every real release is above them
    frame.get_by_role("link", name="2", exact=True).click()
    expect(frame.locator(".summary")).to_contain_text("page 2 of 3")
    second = frame.locator("tr[data-tag]").evaluate_all("rows => rows.map(r => r.dataset.tag)")
    assert second[0] == f"v0.0.{int(seeded[-1].rsplit('.', 1)[1]) - 1}"
    frame.locator("#q").fill("v0.0.11")
    frame.get_by_role("button", name="Filter").click()
    expect(frame.locator("tr[data-tag]")).to_have_count(11)  # v0.0.11 and v0.0.110 ... v0.0.119
    shot(page, "releases-filtered")


def test_a_failing_platform_is_red_and_links_the_log_naming_the_cause(farm: LocalFarm, page: Page) -> None:
    # Ops misconfigure the Windows linker; then the next version's tag is pushed.
    spec = farm.spec_path.read_text()
    broken = "/nonexistent/x86_64-w64-mingw32-gcc"
    farm.spec_path.write_text(spec.replace("[platforms.windows-x86_64-gnu]",
                                           f'[platforms.windows-x86_64-gnu]\nlinker = "{broken}"', 1))
    farm.reconfig()
    farm.set_version("0.2.0")
    farm.push_tag("v0.2.0")  # through the remote's hook: a publishing release starts by itself
    def started() -> dict[str, Any] | None:
        build = labelled_release(farm, "v0.2.0")
        return build if build and "branch" in build["properties"] else None  # set as the build starts
    release = farm.wait(started, 60, "the release of v0.2.0 to start")
    assert release["properties"]["branch"][0] == "v0.2.0"  # the tag as every page shows it, not refs/tags/...
    sign_in(page, farm, "olga")
    expect(page.locator("#bb-loginbar-dropdown")).to_contain_text("olga")
    page.goto(f"{farm.url}#/builders/{release_builder(farm)}/builds/{release['number']}")
    expect(page.locator(".bb-build-summary.results_FAILURE")).to_be_visible(timeout=RELEASE_TIMEOUT_MS)
    expect(page.get_by_text("platform failed: windows-x86_64-gnu").first).to_be_visible()
    assert not (farm.root / "releases" / "v0.2.0").exists(), "a failed release must publish nothing"

    frame = releases_frame(page, farm)
    row = frame.locator('tr[data-tag="v0.2.0"]')
    expect(row).to_have_attribute("data-publish", "failed")
    expect(row.locator('td[data-platform="linux-x86_64"]')).to_have_attribute("data-state", "success")
    windows = row.locator('td[data-platform="windows-x86_64-gnu"]')
    expect(windows).to_have_attribute("data-state", "failure")
    assert windows.evaluate("td => getComputedStyle(td).backgroundColor") == "rgb(253, 232, 234)"  # red
    expect(windows.locator(".step-summary")).to_contain_text(f"missing linker {broken}")
    screenshot = shot(page, "releases-page")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copy(screenshot, REPO / "docs" / "releases-page.png")

    windows.locator("a.failed-step").click()
    page.wait_for_url(re.compile(r"/steps/\d+/logs/stdio$"))
    expect(page.get_by_text(f"MISSING linker {broken}").first).to_be_visible()
    expect(page.get_by_text("lacks linker").first).to_be_visible()
    shot(page, "failing-step-log")
