"""The web UI in a real browser: Debian's Chromium driven by Playwright (no browser download).

One real release: an `ops` user signs in, forces a dry run of v0.1.0 from the UI's form, watches
the build turn green, and finds the tag on the Releases page with every platform done.
Screenshots land in test-artifacts/ (git-ignored), also when the test fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import HOST_PLATFORMS, REPO, need
from playwright.sync_api import Browser, Page, expect, sync_playwright

from velofarm.cli.localfarm import LocalFarm, git
from velofarm.users import hash_password, user_secret_name

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OPS_PASSWORD = "olga's long password"
RELEASE_TIMEOUT_MS = 840_000  # two cargo builds on a shared 2-core machine; pytest's own limit is 900 s


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = need("/usr/bin/chromium", "chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def farm(make_farm: Callable[..., LocalFarm]) -> LocalFarm:
    """Both host platforms, one ops user, and v0.1.0 tagged in the remote (not pushed: nothing starts)."""
    farm = make_farm(name="browser")
    farm.spec_path.write_text(farm.spec_path.read_text() + '\n[users.olga]\nrole = "ops"\n')
    farm.secrets.put(user_secret_name("olga"), hash_password(OPS_PASSWORD))
    farm.init_repo()
    git("tag", "v0.1.0", "main", cwd=farm.remote)
    farm.start_all()
    return farm


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_ops_forces_a_dry_run_from_the_ui_and_sees_it_on_the_releases_page(farm: LocalFarm,
                                                                           browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(30_000)
    try:
        run_the_release_from_the_ui(farm, page)
    except BaseException:
        shot(page, "failure")
        raise


def run_the_release_from_the_ui(farm: LocalFarm, page: Page) -> None:
    builder = farm.api("builders?name=release")["builders"][0]["builderid"]

    # Anonymous: the builder page offers no force form.
    page.goto(f"{farm.url}#/builders/{builder}")
    expect(page.get_by_text("builds every platform, verifies, publishes")).to_be_visible()
    expect(page.locator("#bb-loginbar-dropdown")).to_contain_text("Anonymous")
    expect(page.get_by_role("button", name="Start")).to_have_count(0)

    # Sign in through the UI's Login link and the sign-in form.
    page.click("#bb-loginbar-dropdown")
    page.get_by_text("Login").click()
    page.fill("#username", "olga")
    page.fill("#password", OPS_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#bb-loginbar-dropdown")).to_contain_text("olga")
    expect(page.get_by_role("button", name="Publish release")).to_have_count(0)  # ops may not publish

    # Force a dry run of v0.1.0 from the form, then watch the build page turn green.
    page.get_by_role("button", name="Start").click()
    page.fill("[data-bb-test-id=force-field-tag]", "v0.1.0")
    page.get_by_role("button", name="Start build").click()
    page.wait_for_url(re.compile(rf"#/builders/{builder}/builds/1$"))
    expect(page.locator(".bb-build-summary").first).to_be_visible()
    release = farm.wait_release(1, timeout=RELEASE_TIMEOUT_MS / 1000)
    assert release["results"] == 0, f"the dry run did not succeed: {release['state_string']}"
    expect(page.locator(".bb-build-summary.results_SUCCESS")).to_be_visible()  # the open page updated itself
    expect(page.locator(".bb-build-summary-details .bb-badge-status")).to_have_text("SUCCESS")
    shot(page, "build-page")
    assert not (farm.root / "releases" / "v0.1.0").exists(), "a dry run must publish nothing"

    # The Releases page: the tag's row, both platforms done, download links.
    page.get_by_role("link", name="Releases").click()
    frame = page.frame_locator("#velofarm-releases-frame")
    row = frame.locator('tr[data-tag="v0.1.0"]')
    expect(row).to_have_attribute("data-publish", "dry run")
    for platform in HOST_PLATFORMS:
        cell = row.locator(f'td[data-platform="{platform}"]')
        expect(cell).to_have_attribute("data-state", "success")
        expect(cell.locator("a.download")).to_have_count(1)
        expect(cell.locator("a.checksum code")).to_have_text(re.compile(r"^[0-9a-f]{12}$"))
    expect(frame.locator("meta[http-equiv=refresh]")).to_have_count(0)  # nothing runs any more
    shot(page, "releases")
