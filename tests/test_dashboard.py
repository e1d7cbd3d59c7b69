"""The Releases dashboard: rows, states and pages from build records and the artifact store.

Runs the Flask app with a stand-in for the master's data (no reactor); the real master's data
path is exercised by tests/test_downloads.py and tests/test_browser.py.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from velofarm.buildmaster.dashboard import REFRESH_SECONDS, releases_app
from velofarm.release import dashboard_data
from velofarm.release.dashboard_data import BuildRecord, page_of, release_rows
from velofarm.spec.farm import parse_spec

RELEASE, LINUX, WINDOWS = "release", "build-linux-x86_64", "build-windows-x86_64-gnu"
PLATFORMS = {LINUX: "linux-x86_64", WINDOWS: "windows-x86_64-gnu"}
IDS = {RELEASE: 1, LINUX: 2, WINDOWS: 3}
SECRET = "ghp_THIS-MUST-NEVER-SHOW"


def build(builder: str, number: int, tag: str, results: int | None = 0, started: float = 1000.0,
          took: float = 83.0, **props: Any) -> BuildRecord:
    done = results is not None
    return BuildRecord(builder=builder, builderid=IDS[builder], number=number, complete=done, results=results,
                       started_at=started, complete_at=started + took if done else None,
                       props={"tag": tag, **props})


def release(tag: str, number: int, results: int | None = 0, dry_run: bool = False, started: float = 1000.0,
            **props: Any) -> list[BuildRecord]:
    """A release build and its two platform builds."""
    platform_results = 0 if results is None else results
    return [build(RELEASE, number, tag, results, started, dry_run=dry_run, **props),
            build(LINUX, number, tag, platform_results, started + 1),
            build(WINDOWS, number, tag, platform_results, started + 1)]


def rows_by_tag(builds: list[BuildRecord], stored: list[str] | None = None) -> dict[str, Any]:
    return {r.tag: r for r in release_rows(builds, RELEASE, PLATFORMS, stored or [])}


def test_publish_states() -> None:
    rows = rows_by_tag([
        *release("v1.0.0", 1, release_location="https://github.com/acme/velo/releases/tag/v1.0.0",
                 publish_state="published"),
        *release("v1.1.0-rc.1", 2, publish_state="published"),
        *release("v1.2.0", 3, results=2),
        *release("v1.3.0", 4, results=None),
        *release("v1.4.0", 5, dry_run=True),
        *release("v1.5.0", 6, dry_run=True, results=2),
        build(LINUX, 7, "v1.6.0"),
    ], stored=["v1.7.0"])
    assert {tag: row.publish for tag, row in rows.items()} == {
        "v1.0.0": "published", "v1.1.0-rc.1": "pre-release", "v1.2.0": "failed", "v1.3.0": "draft",
        "v1.4.0": "dry run", "v1.5.0": "dry run failed", "v1.6.0": "not released", "v1.7.0": "not released"}
    assert rows["v1.0.0"].location.startswith("https://github.com/")
    assert [c.state for c in rows["v1.2.0"].cells] == ["failure", "failure"]
    assert rows["v1.3.0"].running and not rows["v1.0.0"].running
    assert [c.state for c in rows["v1.6.0"].cells] == ["success", "none"]


def test_a_publish_after_a_dry_run_decides_the_state() -> None:
    rows = rows_by_tag([*release("v1.0.0", 1, dry_run=True),
                        *release("v1.0.0", 2, publish_state="published")])
    assert rows["v1.0.0"].publish == "published"
    assert rows["v1.0.0"].release_build is not None and rows["v1.0.0"].release_build.number == 2


def test_a_running_release_shows_platforms_waiting_not_the_previous_attempt() -> None:
    rows = rows_by_tag([*release("v1.0.0", 1, results=2, started=1000),
                        build(RELEASE, 2, "v1.0.0", None, started=2000, dry_run=True),
                        build(LINUX, 2, "v1.0.0", None, started=2001)])
    assert [c.state for c in rows["v1.0.0"].cells] == ["running", "waiting"]


def test_rows_are_newest_version_first() -> None:
    tags = ["v1.0.0", "v1.10.0", "v1.2.0", "v2.0.0-rc.1", "v2.0.0-beta.2", "v2.0.0", "nightly", "v0.9.9"]
    rows = release_rows([build(LINUX, i, t) for i, t in enumerate(tags)], RELEASE, PLATFORMS)
    assert [r.tag for r in rows] == ["v2.0.0", "v2.0.0-rc.1", "v2.0.0-beta.2", "v1.10.0", "v1.2.0", "v1.0.0",
                                     "v0.9.9", "nightly"]


def test_pages() -> None:
    rows = release_rows([build(LINUX, i, f"v0.0.{i}") for i in range(120)], RELEASE, PLATFORMS)
    assert [len(page_of(rows, n)[0]) for n in (1, 2, 3)] == [50, 50, 20]
    assert page_of(rows, 99)[1:] == (3, 3)
    assert page_of([], 1)[1:] == (1, 1)


# --- the page --------------------------------------------------------------------------------------

@pytest.fixture
def spec(tmp_path: Path) -> Any:
    data = {"project": {"name": "velostream", "title": "Velostream", "git_url": "remote.git",
                        "binaries": {"velo-sql": ["--version"]}},
            "platforms": {"linux-x86_64": {}, "windows-x86_64-gnu": {}},
            "workers": {"box": {"platforms": ["linux-x86_64", "windows-x86_64-gnu"]}}}
    return parse_spec(data, tmp_path / "farm.toml")


def store(root: Path, tag: str, platform: str, name: str, payload: bytes) -> str:
    folder = root / tag / platform
    folder.mkdir(parents=True)
    (folder / name).write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    (folder / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    return digest


class Fetch:
    """Stands in for the master's data API; counts how often the page asks."""

    def __init__(self, builds: list[BuildRecord], waiting: int = 0) -> None:
        self.builds, self.waiting, self.calls = builds, waiting, 0

    def __call__(self, names: list[str]) -> tuple[list[BuildRecord], int]:
        self.calls += 1
        assert set(names) == {RELEASE, LINUX, WINDOWS}
        return self.builds, self.waiting


def page(spec: Any, root: Path, fetch: Fetch, query: str = "") -> str:
    client = releases_app(spec, root, fetch=fetch).test_client()
    response = client.get(f"/table{query}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_data(as_text=True)


def test_the_page_links_builds_downloads_and_the_release(spec: Any, tmp_path: Path) -> None:
    digest = store(tmp_path, "v1.0.0", "linux-x86_64", "velostream-v1.0.0-x86_64-unknown-linux-gnu.tar.gz",
                   b"x" * 3000)
    location = "https://github.com/acme/velo/releases/v1.0.0"
    builds = release("v1.0.0", 4, publish_state="published", release_location=location)
    html = page(spec, tmp_path, Fetch(builds))
    assert 'data-tag="v1.0.0" data-publish="published"' in html
    assert 'href="../../../#/builders/2/builds/4"' in html and 'target="_top"' in html
    assert ('href="../artifacts/v1.0.0/linux-x86_64/velostream-v1.0.0-x86_64-unknown-linux-gnu.tar.gz"'
            in html)
    assert f"<code>{digest[:12]}</code>" in html and "2.9 KiB" in html
    assert "1 min 23 s" in html
    assert 'class="release-link" target="_top" href="https://github.com/acme/velo/releases/v1.0.0"' in html
    assert "http-equiv=\"refresh\"" not in html


def test_the_frame_for_the_ui(spec: Any, tmp_path: Path) -> None:
    client = releases_app(spec, tmp_path, fetch=Fetch([])).test_client()
    html = client.get("/index.html").get_data(as_text=True)
    assert '<iframe id="velofarm-releases-frame"' in html
    assert 'src="plugins/wsgi_dashboards/releases/table"' in html


@pytest.mark.parametrize("builds, waiting", [(release("v1.0.0", 1, results=None), 0), ([], 1)])
def test_the_page_refreshes_while_a_release_runs_or_waits(spec: Any, tmp_path: Path,
                                                          builds: list[BuildRecord], waiting: int) -> None:
    html = page(spec, tmp_path, Fetch(builds, waiting))
    assert f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' in html


def test_the_page_shows_no_property_outside_the_allow_list(spec: Any, tmp_path: Path) -> None:
    builds = [build(RELEASE, 1, "v1.0.0", github_token=SECRET, dry_run=False, publish_state="published",
                    release_location="/srv/releases/v1.0.0")]
    html = page(spec, tmp_path, Fetch(builds))
    assert SECRET not in html
    assert "/srv/releases/v1.0.0" in html and 'href="/srv' not in html  # a folder is shown, not linked


def test_a_tag_property_cannot_steer_the_store_scan(spec: Any, tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    store(tmp_path, "outside", "linux-x86_64", "secret.tar.gz", SECRET.encode())
    html = page(spec, tmp_path / "store", Fetch([build(LINUX, 1, "../outside")]))
    assert "secret.tar.gz" not in html


def test_two_hundred_tags_cost_one_fetch_and_a_store_scan_of_one_page(
        spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = []
    for i in range(200):
        tag = f"v1.{i}.0"
        builds += release(tag, i + 1, publish_state="published")
        for platform, suffix in (("linux-x86_64", "tar.gz"), ("windows-x86_64-gnu", "zip")):
            store(tmp_path, tag, platform, f"velostream-{tag}-{platform}.{suffix}", tag.encode())
    scans = []
    real_scan = dashboard_data.stored_artifact
    monkeypatch.setattr(dashboard_data, "stored_artifact", lambda *a: scans.append(a) or real_scan(*a))
    fetch = Fetch(builds)
    started = time.perf_counter()
    html = page(spec, tmp_path, fetch)
    elapsed = time.perf_counter() - started
    print(f"200 tags, 600 builds: page 1 rendered in {elapsed * 1000:.0f} ms")  # a number, not a pass/fail
    assert fetch.calls == 1
    assert len(scans) == 50 * 2  # only the rows shown touch the store
    assert html.count("<tr data-tag=") == 50
    assert 'data-tag="v1.199.0"' in html and 'data-tag="v1.149.0"' not in html
    assert '<a href="?page=4">4</a>' in html
    assert html.count('data-state="success"') == 100
    assert 'data-tag="v1.0.0"' in page(spec, tmp_path, fetch, "?page=4")
