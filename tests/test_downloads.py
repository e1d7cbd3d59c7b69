"""Artifact downloads from the master: the right bytes and headers, and nothing outside the store.

Every request is sent byte for byte (http.client, no URL normalisation), against a real master
whose artifact store holds archives, symlinks and dot-folders, next to files that must never be
served: the secrets folder and a marker file beside the store.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FARM_TOML

from velofarm.cli.localfarm import LocalFarm, write_farm
from velofarm.release.dashboard_data import DownloadRefused, download_segments, open_artifact

MARKER = b"TOP-SECRET-MARKER"
TAG = "v0.1.0"
LINUX = "linux-x86_64"
WINDOWS = "windows-x86_64-gnu"
TARBALL = f"velostream-{TAG}-x86_64-unknown-linux-gnu.tar.gz"
ZIPFILE = f"velostream-{TAG}-x86_64-pc-windows-gnu.zip"
PREFIX = "/plugins/wsgi_dashboards/artifacts/"


def put(folder: Path, name: str, payload: bytes) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(payload)
    (folder / f"{name}.sha256").write_text(f"{hashlib.sha256(payload).hexdigest()}  {name}\n")
    return payload


def fill_store(root: Path, outside: Path) -> dict[str, bytes]:
    """Two archives, plus every kind of trap: symlinks to files and folders inside and outside."""
    files = {TARBALL: put(root / TAG / LINUX, TARBALL, os.urandom(700 * 1024)),  # several producer chunks
             ZIPFILE: put(root / TAG / WINDOWS, ZIPFILE, b"PK\x05\x06" + bytes(18))}
    (outside / "outside.txt").write_bytes(MARKER)
    (root / TAG / LINUX / "passwd.tar.gz").symlink_to("/etc/passwd")
    (root / TAG / LINUX / "outside.tar.gz").symlink_to(outside / "outside.txt")
    (root / TAG / LINUX / "inside.tar.gz").symlink_to(root / TAG / LINUX / TARBALL)  # refused too
    (root / TAG / "linux-link").symlink_to(root / TAG / LINUX)
    (root / "v0.2.0").symlink_to(root / TAG)
    (root / "v0.3.0").mkdir()
    (root / "v0.3.0" / LINUX).symlink_to(outside)
    put(root / TAG / f".incoming-{LINUX}-7", TARBALL, MARKER)
    return files


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    farm = write_farm(tmp_path_factory.mktemp("downloads") / "farm", FARM_TOML, [LINUX, WINDOWS])
    farm.secrets.put("user-olga", MARKER.decode())
    farm.start_master()  # no workers, no repository: only the web server is needed
    yield farm
    farm.stop_master()


@pytest.fixture(scope="module")
def files(farm: LocalFarm) -> dict[str, bytes]:
    return fill_store(farm.master_dir / "artifacts", farm.master_dir)


def fetch(farm: LocalFarm, raw_path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", farm.www_port, timeout=30)
    try:
        conn.putrequest(method, raw_path, skip_accept_encoding=True)  # sent as is: no normalisation
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_archives_download_with_their_type_and_length(farm: LocalFarm, files: dict[str, bytes]) -> None:
    for platform, name, media in ((LINUX, TARBALL, "application/gzip"),
                                  (WINDOWS, ZIPFILE, "application/zip")):
        status, headers, body = fetch(farm, f"{PREFIX}{TAG}/{platform}/{name}")
        assert status == 200
        assert headers["content-type"] == media
        assert headers["content-length"] == str(len(files[name]))
        assert headers["content-disposition"] == f'attachment; filename="{name}"'
        assert headers["x-content-type-options"] == "nosniff"
        assert body == files[name]


def test_checksums_download_as_text(farm: LocalFarm, files: dict[str, bytes]) -> None:
    status, headers, body = fetch(farm, f"{PREFIX}{TAG}/{LINUX}/{TARBALL}.sha256")
    assert status == 200 and headers["content-type"] == "text/plain"
    assert body.decode() == f"{hashlib.sha256(files[TARBALL]).hexdigest()}  {TARBALL}\n"
    assert headers["content-length"] == str(len(body))


def test_head_gives_the_headers_without_the_body(farm: LocalFarm, files: dict[str, bytes]) -> None:
    status, headers, body = fetch(farm, f"{PREFIX}{TAG}/{LINUX}/{TARBALL}", method="HEAD")
    assert (status, headers["content-length"], body) == (200, str(len(files[TARBALL])), b"")


TRAVERSALS = {
    # dot-dot, plain and percent-encoded (upper and lower case)
    "dot-dot above the store": "../../outside.txt",
    "dot-dot above the master": "../../../../secrets/user-olga",
    "dot-dot inside the path": f"{TAG}/../../outside.txt",
    "dot-dot as the file": f"{TAG}/{LINUX}/..",
    "encoded dot-dot": "%2e%2e/%2E%2E/outside.txt",
    "half-encoded dot-dot": ".%2e/.%2e/outside.txt",
    "double-encoded dot-dot": "%252e%252e/%252e%252e/outside.txt",
    # encoded slashes: Twisted would decode them inside one segment
    "encoded slash to the archive": f"{TAG}%2F{LINUX}%2F{TARBALL}",
    "encoded slash, lower case": f"{TAG}%2f{LINUX}%2f{TARBALL}",
    "encoded slash and dot-dot": "..%2F..%2Foutside.txt/x/y",
    "encoded slash to the secrets": "..%2F..%2F..%2F..%2Fsecrets%2Fuser-olga",
    # backslashes, raw and encoded
    "backslashes": f"{TAG}\\{LINUX}\\{TARBALL}",
    "encoded backslashes": "..%5C..%5Coutside.txt/x/y",
    # absolute paths
    "absolute path": "/etc/passwd",
    "encoded absolute path": "%2Fetc%2Fpasswd/x/y",
    "absolute path in the file": f"{TAG}/{LINUX}//etc/passwd",
    # NUL and friends
    "encoded NUL": f"{TAG}/{LINUX}/{TARBALL}%00.sha256",
    "encoded ordinary name": f"v0%2E1%2E0/{LINUX}/{TARBALL}",
    # symlinks, to files and folders, pointing outside and inside
    "symlink to /etc/passwd": f"{TAG}/{LINUX}/passwd.tar.gz",
    "symlink to a file outside": f"{TAG}/{LINUX}/outside.tar.gz",
    "symlink to a file inside": f"{TAG}/{LINUX}/inside.tar.gz",
    "symlinked platform folder": f"{TAG}/linux-link/{TARBALL}",
    "symlinked tag folder": f"v0.2.0/{LINUX}/{TARBALL}",
    "platform folder linked outside": "v0.3.0/linux-x86_64/outside.txt",
    # what is not an artifact
    "a half-uploaded folder": f"{TAG}/.incoming-{LINUX}-7/{TARBALL}",
    "a folder": f"{TAG}/{LINUX}",
    "too deep": f"{TAG}/{LINUX}/{TARBALL}/x",
    "the store itself": "",
    "a missing file": f"{TAG}/{LINUX}/velostream-v9.9.9.tar.gz",
}


@pytest.mark.parametrize("path", TRAVERSALS.values(), ids=TRAVERSALS.keys())
def test_nothing_outside_the_store_is_served(farm: LocalFarm, files: dict[str, bytes], path: str) -> None:
    status, _, body = fetch(farm, PREFIX + path)
    assert status in (400, 403, 404), (status, body[:200])
    assert MARKER not in body and b"root:" not in body
    assert files[TARBALL][:64] not in body


def test_only_get_and_head(farm: LocalFarm, files: dict[str, bytes]) -> None:
    status, _, _ = fetch(farm, f"{PREFIX}{TAG}/{LINUX}/{TARBALL}", method="POST")
    assert status == 405


def test_the_dashboard_on_the_master_links_the_stored_archives(farm: LocalFarm,
                                                               files: dict[str, bytes]) -> None:
    status, headers, body = fetch(farm, "/plugins/wsgi_dashboards/releases/table")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert 'data-tag="v0.1.0"' in page and 'data-state="stored"' in page
    assert "v0.2.0" not in page  # a symlinked tag folder is not a tag
    links = re.findall(r'href="\.\./artifacts/([^"]+)"', page)
    assert sorted(links) == sorted([f"{TAG}/{LINUX}/{TARBALL}", f"{TAG}/{LINUX}/{TARBALL}.sha256",
                                    f"{TAG}/{WINDOWS}/{ZIPFILE}", f"{TAG}/{WINDOWS}/{ZIPFILE}.sha256"])
    for link in links:
        assert fetch(farm, PREFIX + link)[0] == 200


# --- the same rules without a server -------------------------------------------------------------

@pytest.mark.parametrize("raw", [[b"a", b"b"], [b"..", b"b", b"c"], [b"a%2Fb", b"b", b"c"], [b"", b"b", b"c"],
                                 [b".hidden", b"b", b"c"], [b"a\\b", b"b", b"c"], [b"a", b"b", b"c\x00"]])
def test_download_segments_refuse_anything_but_three_plain_names(raw: list[bytes]) -> None:
    with pytest.raises(DownloadRefused):
        download_segments(raw)


def test_open_artifact_refuses_symlinks_by_kind(tmp_path: Path) -> None:
    root = tmp_path / "store"
    fill_store(root, tmp_path)
    fileobj, size = open_artifact(root, TAG, LINUX, TARBALL)
    with fileobj:
        assert size == 700 * 1024 and len(fileobj.read()) == size
    for tag, platform, name, kind in ((TAG, LINUX, "passwd.tar.gz", "symlink"),
                                      (TAG, "linux-link", TARBALL, "symlink"),
                                      ("v0.2.0", LINUX, TARBALL, "symlink"),
                                      (TAG, LINUX, "nothing", "missing"),
                                      ("..", LINUX, TARBALL, "malformed")):
        with pytest.raises(DownloadRefused) as refused:
            open_artifact(root, tag, platform, name)
        assert refused.value.kind == kind
