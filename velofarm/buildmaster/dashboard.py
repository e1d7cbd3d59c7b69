"""The Releases page (a wsgi_dashboards Flask app) and artifact downloads from the master.

Dashboards bypass authz, so the page reads only an allow-list of build properties. It costs a
fixed number of queries however long the history: one for the builders, one per builder for
its recent builds, one for all their allow-listed properties, one for waiting requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from buildbot.data import resultspec
from flask import Flask, render_template, request
from twisted.internet import defer, reactor
from twisted.internet.threads import blockingCallFromThread
from twisted.web import resource, server
from twisted.web.static import NoRangeStaticProducer

from velofarm.buildmaster.farmplan import RELEASE_BUILDER
from velofarm.release.dashboard_data import (
    ALLOWED_PROPERTIES,
    BuildRecord,
    DownloadRefused,
    StepNote,
    download_segments,
    matching,
    notable_step,
    open_artifact,
    page_of,
    release_rows,
    stored_tags,
    with_artifacts,
)
from velofarm.release.model import content_type
from velofarm.spec.farm import Spec

NAME = "releases"
DOWNLOADS = b"artifacts"  # mounted beside the dashboard: /plugins/wsgi_dashboards/artifacts/TAG/PLATFORM/FILE
BUILDS_PER_BUILDER = 1000  # history shown; older builds drop off (their stored artifacts stay listed)
REFRESH_SECONDS = 10
TEMPLATES = Path(__file__).parent / "templates"

# (builds, number of requests waiting to start) for the given builder names
Fetch = Callable[[list[str]], tuple[list[BuildRecord], int]]


def releases_dashboard(spec: Spec, artifacts_root: Path) -> dict[str, Any]:
    """The wsgi_dashboards entry for the Releases page."""
    return {"name": NAME, "caption": "Releases", "app": releases_app(spec, artifacts_root),
            "order": 2, "icon": "rocket"}


def releases_app(spec: Spec, artifacts_root: Path, fetch: Fetch | None = None) -> Flask:
    """The Flask app; `fetch` reads builds (by default from the master through the data API)."""
    app = Flask(__name__, template_folder=str(TEMPLATES))
    platform_builders = {p.builder_name: p.name for p in spec.platforms.values()}
    builders = [RELEASE_BUILDER, *platform_builders]

    def read(names: list[str]) -> tuple[list[BuildRecord], int]:
        if fetch is not None:
            return fetch(names)
        master = app.buildbot_api.master  # type: ignore[attr-defined]
        found = blockingCallFromThread(reactor, fetch_builds, master, names, BUILDS_PER_BUILDER)
        return cast(tuple[list[BuildRecord], int], found)

    @app.get("/index.html")
    def index() -> str:
        # The UI injects this HTML into its page, where scripts and meta refresh do not run; the
        # frame is a page of its own that can refresh itself while a release runs.
        return render_template("releases_frame.html", src=f"plugins/wsgi_dashboards/{NAME}/table")

    @app.get("/table")
    def table() -> Any:
        builds, waiting = read(builders)
        rows = release_rows(builds, RELEASE_BUILDER, platform_builders, stored_tags(artifacts_root))
        query = request.args.get("q", "")[:100]
        found = matching(rows, query)
        shown, page, pages = page_of(found, request.args.get("page", 1, type=int) or 1)
        refresh = REFRESH_SECONDS if waiting or any(r.running for r in rows) else 0
        # Links are relative to .../releases/table, so a reverse proxy's path prefix keeps working.
        html = render_template("releases.html", rows=with_artifacts(shown, artifacts_root), total=len(rows),
                               found=len(found), query=query, target=publish_target(spec), now=time.time(),
                               platforms=list(platform_builders.values()), page=page, pages=pages,
                               waiting=waiting, refresh=refresh, title=spec.project.title,
                               ui="../../../", downloads=f"../{DOWNLOADS.decode()}")
        return html, 200, {"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"}

    app.jinja_env.filters["duration"] = _duration
    app.jinja_env.filters["size"] = _size
    return app


def publish_target(spec: Spec) -> str:
    """Where a publishing release goes, as the page names it."""
    release = spec.release
    if release.publisher == "github":
        return f"GitHub {release.github_repo}"
    if release.publisher == "gitea":
        return f"Gitea {release.gitea_repo} at {release.gitea_url}"
    if release.publisher == "directory":
        return f"folder {release.directory}"
    return release.publisher


@defer.inlineCallbacks
def fetch_builds(master: Any, names: list[str], limit: int) -> Any:
    """Recent builds of the named builders with allow-listed properties, and how many requests wait."""
    builders = yield master.data.get(("builders",))
    ids = {b["name"]: b["builderid"] for b in builders if b["name"] in names}
    found: list[tuple[str, dict[str, Any]]] = []
    for name, builderid in ids.items():
        builds = yield master.data.get(("builders", builderid, "builds"), order=["-number"], limit=limit)
        found += [(name, b) for b in builds]
    table = master.db.model.build_properties
    props = yield master.db.pool.do(_properties, table, [b["buildid"] for _, b in found])
    waiting = yield master.data.get(("buildrequests",),
                                    filters=[resultspec.Filter("complete", "eq", [False])])
    # Steps only for the builds whose row shows one: failed (the failing step) or running (the current).
    noted = [b["buildid"] for _, b in found if not b["complete"] or b["results"] in (2, 4, 6)]
    steps = yield master.db.pool.do(_steps, master.db.model, noted)
    records = []
    for name, b in found:
        record = BuildRecord(builder=name, builderid=b["builderid"], number=b["number"],
                             complete=bool(b["complete"]), results=b["results"], started_at=_epoch(b["started_at"]),
                             complete_at=_epoch(b["complete_at"]), props=props.get(b["buildid"], {}))
        records.append(replace(record, step=notable_step(record.state, steps.get(b["buildid"], []))))
    return records, sum(1 for r in waiting if r["builderid"] in ids.values() and not r["claimed"])


def _properties(conn: Any, table: Any, buildids: list[int]) -> dict[int, dict[str, Any]]:
    """The allow-listed properties of many builds in one query per 500 builds (the data API would
    take one query per build)."""
    result: dict[int, dict[str, Any]] = {}
    for start in range(0, len(buildids), 500):
        query = sa.select(table.c.buildid, table.c.name, table.c.value).where(
            table.c.buildid.in_(buildids[start:start + 500]), table.c.name.in_(ALLOWED_PROPERTIES))
        for row in conn.execute(query):
            result.setdefault(row.buildid, {})[row.name] = json.loads(row.value)
    return result


def _steps(conn: Any, model: Any, buildids: list[int]) -> dict[int, list[StepNote]]:
    """The steps (with their first log's slug) of the given builds, in two queries per 500 builds."""
    result: dict[int, list[StepNote]] = {}
    steps, logs = model.steps, model.logs
    for start in range(0, len(buildids), 500):
        rows = list(conn.execute(sa.select(
            steps.c.id, steps.c.buildid, steps.c.number, steps.c.name, steps.c.state_string, steps.c.results,
            steps.c.complete_at, steps.c.started_at, steps.c.hidden).where(
                steps.c.buildid.in_(buildids[start:start + 500]))))
        slugs: dict[int, str] = {}
        for log_row in conn.execute(sa.select(logs.c.stepid, logs.c.slug).where(
                logs.c.stepid.in_([r.id for r in rows])).order_by(logs.c.id)):
            slugs.setdefault(log_row.stepid, log_row.slug)
        for r in rows:
            result.setdefault(r.buildid, []).append(StepNote(
                number=r.number, name=r.name, summary=r.state_string, results=r.results,
                complete=r.complete_at is not None, hidden=bool(r.hidden), log=slugs.get(r.id, ""),
                started_at=_epoch(r.started_at)))
    return result


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


# --- downloads ---------------------------------------------------------------------------------

def mount_downloads(artifacts_root: Path) -> None:
    """Serve the artifact store at /plugins/wsgi_dashboards/artifacts/.

    A Twisted resource rather than a Flask route: a download streams from the reactor instead of
    holding one of the few threads that also serve the REST API, and only Twisted sees the raw
    path (WSGI's PATH_INFO arrives with %2F already decoded to '/').
    """
    from buildbot_wsgi_dashboards import ep  # the plugin object Buildbot mounts at /plugins/wsgi_dashboards

    ep.resource.putChild(DOWNLOADS, ArtifactDownloads(artifacts_root))


class ArtifactDownloads(resource.Resource):
    """GET/HEAD TAG/PLATFORM/FILE from the artifact store; anything else is refused."""

    isLeaf = True

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def render_GET(self, request: Any) -> Any:
        return self._serve(request, send_body=True)

    def render_HEAD(self, request: Any) -> Any:
        return self._serve(request, send_body=False)

    def _serve(self, request: Any, send_body: bool) -> Any:
        # Twisted splits the raw path before it decodes each segment, so these line up with postpath.
        raw = request.path.split(b"/")[1 + len(request.prepath):]
        try:
            tag, platform, name = download_segments(raw)
            fileobj, size = open_artifact(self.root, tag, platform, name)
        except DownloadRefused as exc:
            return _refuse(request, exc)
        media = content_type(name)
        request.setHeader(b"content-type", media.encode())
        request.setHeader(b"content-length", str(size).encode())
        disposition = "inline" if media.startswith("text/") else "attachment"
        request.setHeader(b"content-disposition", f'{disposition}; filename="{name}"'.encode())
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-cache")  # a rebuild replaces a file under the same name
        if not send_body:
            fileobj.close()
            return b""
        NoRangeStaticProducer(request, fileobj).start()
        return server.NOT_DONE_YET


def _refuse(request: Any, exc: DownloadRefused) -> bytes:
    request.setResponseCode({"malformed": 400, "symlink": 403}.get(exc.kind, 404))
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return f"refused: {exc}\n".encode()
