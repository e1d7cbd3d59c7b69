"""Finding 7: the GitHub token goes only to the configured API and uploads hosts, over https
(plain http only on loopback), and a draft is always created at the built commit."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from support.github_standin import TOKEN, GitHubStandIn
from test_github_publisher import REPO, make_release, publisher

from velofarm.errors import PublishError
from velofarm.publish.http import HttpClient, TokenHosts


class Thief(BaseHTTPRequestHandler):
    """A server on another loopback address that records every request (and its headers)."""

    seen: list[dict[str, str]] = []
    link = ""

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if type(self).link:
            self.send_header("Link", type(self).link)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(host: str, handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


@pytest.fixture
def thief() -> Iterator[str]:
    Thief.seen = []
    server, url = serve("127.0.0.2", Thief)
    yield url
    server.shutdown()


def test_a_pagination_link_to_another_host_gets_no_token(thief: str) -> None:
    class Api(Thief):
        seen: list[dict[str, str]] = []
        link = f'<{thief}/steal?page=2>; rel="next"'

    server, api = serve("127.0.0.1", Api)
    try:
        client = HttpClient(api, TOKEN, log=lambda line: None, sleep=lambda s: None)
        with pytest.raises(PublishError, match="refusing to send the token to http://127.0.0.2"):
            list(client.get_pages("/repos/acme/velostream/releases"))
    finally:
        server.shutdown()
    assert len(Api.seen) == 1 and Api.seen[0]["Authorization"] == f"Bearer {TOKEN}"
    assert Thief.seen == []


def test_an_upload_url_on_another_host_gets_no_token(thief: str, tmp_path: Path) -> None:
    client = HttpClient("http://127.0.0.1:9", TOKEN, log=lambda line: None, sleep=lambda s: None)
    (tmp_path / "a.tar.gz").write_bytes(b"x")
    with pytest.raises(PublishError, match="refusing to send the token"):
        client.upload(f"{thief}/repos/acme/velostream/releases/1/assets?name=a.tar.gz", tmp_path / "a.tar.gz",
                      "application/gzip")
    assert Thief.seen == []


@pytest.mark.parametrize("url", ["http://github.example.com/api/v3", "http://api.github.com", "ftp://x/y", "api.github.com"])
def test_a_plain_http_api_url_is_refused_unless_loopback(url: str) -> None:
    with pytest.raises(PublishError, match="API URL"):
        HttpClient(url, TOKEN)


@pytest.mark.parametrize("api,url,ok", [
    ("https://api.github.com", "https://api.github.com/repos/a/b/releases?page=2", True),
    ("https://api.github.com", "https://uploads.github.com/repos/a/b/releases/1/assets", True),
    ("https://api.github.com", "http://uploads.github.com/repos/a/b/releases/1/assets", False),
    ("https://api.github.com", "http://api.github.com/repos/a/b/releases", False),
    ("https://api.github.com", "https://uploads.github.com.evil.example/x", False),
    ("https://api.github.com", "https://evil.example/x", False),
    ("https://ghe.example.com/api/v3", "https://ghe.example.com/api/uploads/repos/a/b/releases/1/assets", True),
    ("https://ghe.example.com/api/v3", "https://uploads.github.com/repos/a/b/releases/1/assets", False),
    ("https://ghe.example.com/api/v3", "https://ghe.example.com:8443/x", False),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8001/upload", True),
    ("http://127.0.0.1:8000", "http://127.0.0.2:8000/upload", False),
    ("http://127.0.0.1:8000", "https://evil.example/x", False),
])
def test_token_hosts(api: str, url: str, ok: bool) -> None:
    hosts = TokenHosts(api)
    if ok:
        hosts.check(url)
    else:
        with pytest.raises(PublishError, match="refusing to send the token"):
            hosts.check(url)


def test_a_draft_is_created_at_the_built_commit(tmp_path: Path) -> None:
    release = make_release(tmp_path)
    with GitHubStandIn(REPO) as gh:
        gh.expect(release.tag, {a.name: (a.size, a.sha256) for a in release.assets})
        publisher(gh).publish(release)
    creates = [s for s in gh.requests if s.method == "POST" and s.path.endswith("/releases")]
    assert len(creates) == 1 and creates[0].body["target_commitish"] == release.commit
    assert gh.validation_errors == []


def test_a_release_without_a_commit_is_refused_before_any_write(tmp_path: Path) -> None:
    import dataclasses
    release = dataclasses.replace(make_release(tmp_path), commit="")
    with GitHubStandIn(REPO) as gh:
        with pytest.raises(PublishError, match="names no commit"):
            publisher(gh).publish(release)
    assert gh.writes() == []
