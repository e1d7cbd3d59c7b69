"""Small core modules: the TOML writer, the secrets folder, the artifact store's commit, tag hooks, names."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import FARM_TOML

from velofarm.artifacts.store import BuildIdentity, check_part, commit_incoming, incoming_dir, read_build_identity
from velofarm.errors import ArtifactError, SpecError
from velofarm.names import unsafe_name_reason
from velofarm.release.checksums import checksum_line, sha256_file
from velofarm.secretstore import SecretStore, worker_secret_name
from velofarm.spec import tomlwrite
from velofarm.tags.notify import pushed_tags

# ------------------------------------------------------------------------------------ tomlwrite


def roundtrip(data: dict[str, Any]) -> dict[str, Any]:
    return tomllib.loads(tomlwrite.dumps(data))


def test_farm_toml_round_trips() -> None:
    data = tomllib.loads(FARM_TOML.read_text(encoding="utf-8"))
    assert roundtrip(data) == data
    assert "\\." in data["release"]["tag_pattern"]  # backslashes in a real value survived


@pytest.mark.parametrize("value", [
    'say "hi"', "C:\\Users\\ci\\bin", "back\\slash\"quote", "tab\tnewline\nreturn\r", "bell\x07nul\x00del\x7f",
    "ünïcødé ✓ 漢字", "", " leading and trailing ", "'single'", "''' triple '''", '"""', "#not a comment",
    "[not.a.table]", "key = value",
])
def test_strings_round_trip(value: str) -> None:
    data = {"s": value, "list": [value, "x"], "t": {"env": {"V": value}}}
    assert roundtrip(data) == data


@pytest.mark.parametrize("data", [
    {},
    {"a": {}},
    {"a": {"b": {}}},
    {"a": 1, "b": True, "c": False, "d": -7, "e": 0, "big": 2**62},
    {"list": [], "nested": [[1, 2], ["a"]], "mixed": [{"x": 1}, {"y": "z"}]},
    {"platforms": {"windows-x86_64-gnu": {"env": {"RUSTC": "/usr/bin/rustc", "CC": "x86_64-w64-mingw32-gcc"},
                                          "rustflags": ["-C", "link-arg=-Wl,--no-insert-timestamp"]},
                   "linux-x86_64": {}}},
    {"p": {"env": {}}},
    {"p": {"env": {"N": 1}}},  # not all strings: a real table
    {"top": "scalar", "t": {"x": 1, "sub": {"y": 2}, "z": 3}},
    {"keys": {"with space": 1, "dotted.key": 2, "": 3, "-": 4, "under_score-dash": 5, "123": 6}},
    {"workers": {"lin-1": {"platforms": ["linux-x86_64"], "max_builds": 2, "os": "linux"}}},
])
def test_tables_round_trip(data: dict[str, Any]) -> None:
    assert roundtrip(data) == data


def test_env_stays_inline_and_tables_get_headers() -> None:
    text = tomlwrite.dumps({"platforms": {"w": {"env": {"RUSTC": "/usr/bin/rustc"}, "os": "linux"}}})
    assert '[platforms.w]' in text and 'env = { RUSTC = "/usr/bin/rustc" }' in text
    assert "[platforms]\n" not in text


def test_unwritable_value_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot write NoneType"):
        tomlwrite.dumps({"a": None})


@pytest.mark.parametrize("data", [{"title": "Velostream \U0001F680"}, {"smoke": ["--greet", "\U0001F600"]},
                                  {"users": {"jos\u00e9": {"role": "ops"}}}, {"\u00e9": 1}])
def test_non_bmp_strings_and_non_ascii_keys_round_trip(data: dict[str, Any]) -> None:
    assert roundtrip(data) == data


# ---------------------------------------------------------------------------------- secretstore

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_put_creates_private_folder_and_file(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    path = store.put("github-token", "ghp_example")
    assert path == tmp_path / "secrets" / "github-token"
    assert mode(tmp_path / "secrets") == 0o700
    assert mode(path) == 0o600
    assert path.read_text(encoding="utf-8") == "ghp_example\n"
    assert store.get("github-token") == "ghp_example"
    assert store.get("absent") is None
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == ["github-token"]  # no temporary left


def test_put_replaces_atomically(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    first = store.put("db_url", "one")
    inode = first.stat().st_ino
    store.put("db_url", "two")
    assert store.get("db_url") == "two"
    assert first.stat().st_ino != inode  # a new file renamed over the old, never rewritten in place
    assert mode(first) == 0o600


def test_put_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = SecretStore(tmp_path / "secrets").put("s", "v")
    finally:
        os.umask(old)
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)


@pytest.mark.parametrize("bad", [0o755, 0o750, 0o701, 0o710])
def test_folder_readable_by_others_is_refused(tmp_path: Path, bad: int) -> None:
    folder = tmp_path / "secrets"
    store = SecretStore(folder)
    store.put("s", "v")
    folder.chmod(bad)
    with pytest.raises(SpecError) as info:
        store.get("s")
    assert f"{folder}: secrets folder is readable by others (mode {bad:o}); run: chmod 700 {folder}" == str(info.value)
    with pytest.raises(SpecError, match="chmod 700"):
        store.put("t", "w")
    assert not (folder / "t").exists()


@pytest.mark.parametrize("bad", [0o644, 0o640, 0o604, 0o660])
def test_file_readable_by_others_is_refused(tmp_path: Path, bad: int) -> None:
    store = SecretStore(tmp_path / "secrets")
    path = store.put("s", "v")
    path.chmod(bad)
    with pytest.raises(SpecError) as info:
        store.get("s")
    assert str(info.value) == f"{path}: secret file is readable by others (mode {bad:o}); run: chmod 600 {path}"


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "a b", ".."])
def test_secret_names_must_be_safe(tmp_path: Path, name: str) -> None:
    store = SecretStore(tmp_path / "secrets")
    with pytest.raises(SpecError, match="secret name"):
        store.put(name, "v")
    assert not (tmp_path / "escape").exists()


def test_generate_returns_a_strong_stored_value(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    values = {store.generate(f"worker-{i}") for i in range(20)}
    assert len(values) == 20
    for value in values:
        assert len(value) >= 32 and value.isascii() and " " not in value
    one = store.generate("worker-x")
    assert store.get("worker-x") == one
    assert worker_secret_name("lin-1") == "worker-lin-1"


def test_remove(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    store.put("s", "v")
    store.remove("s")
    store.remove("s")  # removing twice is fine
    assert store.get("s") is None


# ------------------------------------------------------------------------------ artifact store

ARCHIVE = "demo-v1.2.3-x86_64-unknown-linux-gnu.tar.gz"


COMMIT = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def record(build: int, commit: str = COMMIT, tag: str = "v1.2.3", platform: str = "linux-x86_64",
           archive: str = ARCHIVE) -> BuildIdentity:
    return BuildIdentity(tag=tag, platform=platform, build_id=build, build_number=build - 100,
                       builder=f"build-{platform}", worker="linux-1", commit=commit, archive=archive)


def upload(root: Path, build: int, content: bytes, listed_digest: str | None = None,
           listed_name: str = ARCHIVE) -> Path:
    """What a worker's upload leaves in the incoming folder."""
    incoming = incoming_dir(root, "v1.2.3", "linux-x86_64", build)
    incoming.mkdir(parents=True)
    (incoming / ARCHIVE).write_bytes(content)
    digest = listed_digest or sha256_file(incoming / ARCHIVE)
    (incoming / f"{ARCHIVE}.sha256").write_text(checksum_line(digest, listed_name), encoding="utf-8")
    for path in incoming.iterdir():
        path.chmod(0o600)
    return incoming


def test_commit_moves_a_good_upload_into_its_build_folder(tmp_path: Path) -> None:
    incoming = upload(tmp_path, 107, b"archive bytes")
    final = commit_incoming(tmp_path, record(107))
    assert final == tmp_path / "v1.2.3" / "linux-x86_64" / "builds" / "107" / ARCHIVE
    assert final.read_bytes() == b"archive bytes"
    assert sorted(p.name for p in final.parent.iterdir()) == sorted([ARCHIVE, f"{ARCHIVE}.sha256", "build.json"])
    assert mode(final) == 0o600 and mode(final.parent / f"{ARCHIVE}.sha256") == 0o600  # the master's folder is private
    assert not incoming.exists()
    assert sorted(p.name for p in (tmp_path / "v1.2.3").iterdir()) == ["linux-x86_64"]


def test_commit_records_the_build_that_made_the_archive(tmp_path: Path) -> None:
    upload(tmp_path, 107, b"archive bytes")
    final = commit_incoming(tmp_path, record(107))
    stored = read_build_identity(final.parent)
    assert stored == BuildIdentity(tag="v1.2.3", platform="linux-x86_64", build_id=107, build_number=7,
                                 builder="build-linux-x86_64", worker="linux-1", commit=COMMIT, archive=ARCHIVE,
                                 sha256=hashlib.sha256(b"archive bytes").hexdigest())
    assert stored.describe() == "build-linux-x86_64 #7 (build 107, worker linux-1)"


def test_a_later_build_of_the_same_tag_adds_a_folder_and_changes_no_earlier_one(tmp_path: Path) -> None:
    upload(tmp_path, 107, b"the release's build")
    first = commit_incoming(tmp_path, record(107))
    upload(tmp_path, 108, b"a dry run landing later")
    second = commit_incoming(tmp_path, record(108))
    assert first.read_bytes() == b"the release's build" and second.read_bytes() == b"a dry run landing later"
    platform_dir = tmp_path / "v1.2.3" / "linux-x86_64"
    assert sorted(p.name for p in (platform_dir / "builds").iterdir()) == ["107", "108"]
    # the platform level shows the newest build, for downloads; releases read builds/<id>/
    assert (platform_dir / ARCHIVE).read_bytes() == b"a dry run landing later"
    assert read_build_identity(platform_dir).build_id == 108
    assert sorted(p.name for p in platform_dir.iterdir()) == sorted([ARCHIVE, f"{ARCHIVE}.sha256", "build.json", "builds"])
    assert sorted(p.name for p in (tmp_path / "v1.2.3").iterdir()) == ["linux-x86_64"]  # no .incoming-


def test_a_build_stores_once(tmp_path: Path) -> None:
    upload(tmp_path, 107, b"first")
    commit_incoming(tmp_path, record(107))
    upload(tmp_path, 107, b"again")
    with pytest.raises(ArtifactError, match="build 107 already stored an archive"):
        commit_incoming(tmp_path, record(107))
    assert (tmp_path / "v1.2.3" / "linux-x86_64" / "builds" / "107" / ARCHIVE).read_bytes() == b"first"


def test_commit_trusts_the_receivers_digest(tmp_path: Path) -> None:
    upload(tmp_path, 107, b"bytes")
    with pytest.raises(ArtifactError, match="arrived with SHA-256 " + "f" * 64):
        commit_incoming(tmp_path, record(107), received_sha256="f" * 64)


@pytest.mark.parametrize("case", ["digest", "name"])
def test_mismatched_checksum_is_refused_and_nothing_is_in_place(tmp_path: Path, case: str) -> None:
    upload(tmp_path, 107, b"good old build")
    commit_incoming(tmp_path, record(107))
    kwargs = {"listed_digest": "0" * 64} if case == "digest" else {"listed_name": "other.tar.gz"}
    incoming = upload(tmp_path, 108, b"damaged in transit", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ArtifactError) as info:
        commit_incoming(tmp_path, record(108))
    assert f"tag v1.2.3: platform linux-x86_64: {ARCHIVE} arrived with SHA-256" in str(info.value)
    assert "rebuild" in str(info.value)
    assert not incoming.exists()
    platform_dir = tmp_path / "v1.2.3" / "linux-x86_64"
    assert (platform_dir / ARCHIVE).read_bytes() == b"good old build"
    assert sorted(p.name for p in (platform_dir / "builds").iterdir()) == ["107"]
    assert sorted(p.name for p in (tmp_path / "v1.2.3").iterdir()) == ["linux-x86_64"]


def test_first_upload_mismatch_leaves_no_artifact(tmp_path: Path) -> None:
    incoming = upload(tmp_path, 103, b"x", listed_digest="1" * 64)
    with pytest.raises(ArtifactError):
        commit_incoming(tmp_path, record(103))
    assert not incoming.exists() and not (tmp_path / "v1.2.3" / "linux-x86_64").exists()


@pytest.mark.parametrize("missing", [ARCHIVE, f"{ARCHIVE}.sha256"])
def test_missing_upload_file(tmp_path: Path, missing: str) -> None:
    incoming = upload(tmp_path, 107, b"x")
    (incoming / missing).unlink()
    with pytest.raises(ArtifactError, match=f"{missing} did not arrive at the master"):
        commit_incoming(tmp_path, record(107))
    assert not incoming.exists() and not (tmp_path / "v1.2.3" / "linux-x86_64").exists()


@pytest.mark.parametrize("tag,platform,archive", [
    ("../v1", "linux-x86_64", ARCHIVE), ("v1.2.3", "a/b", ARCHIVE), ("v1.2.3", "linux-x86_64", "../x.tar.gz"),
    ("v1.2.3", "linux-x86_64", ".hidden"), ("v1..2", "linux-x86_64", ARCHIVE), ("", "linux-x86_64", ARCHIVE),
])
def test_store_paths_stay_inside(tmp_path: Path, tag: str, platform: str, archive: str) -> None:
    with pytest.raises(ArtifactError, match="cannot name a file in the artifact store"):
        commit_incoming(tmp_path / "store", record(1, tag=tag, platform=platform, archive=archive))
    assert not (tmp_path / "store").exists()


def test_check_part_allows_semver_build_metadata() -> None:
    assert check_part("v1.2.3-rc.1+build.5", "tag") == "v1.2.3-rc.1+build.5"


# ------------------------------------------------------------------------------- post-receive

SHA1, SHA2 = "a" * 40, "b" * 40
ZERO = "0" * 40


def test_pushed_tags() -> None:
    lines = io.StringIO(
        f"{ZERO} {SHA1} refs/tags/v1.0.0\n"        # created
        f"{SHA1} {SHA2} refs/tags/v1.0.1\n"        # moved
        f"{SHA1} {ZERO} refs/tags/v0.9.0\n"        # deleted: skipped
        f"{ZERO} {SHA1} refs/heads/main\n"         # branch: skipped
        f"{SHA1} {SHA2} refs/heads/v1.0.0\n"       # a branch named like a tag: skipped
        "\n"
        "garbage line\n"
        f"{ZERO} {SHA2} refs/tags/v2.0.0-rc.1")    # last line without newline
    assert pushed_tags(lines) == [("refs/tags/v1.0.0", SHA1), ("refs/tags/v1.0.1", SHA2),
                                  ("refs/tags/v2.0.0-rc.1", SHA2)]


def test_pushed_tags_empty() -> None:
    assert pushed_tags(io.StringIO("")) == []
    assert pushed_tags(io.StringIO(f"{SHA1} {ZERO} refs/tags/v1.0.0\n")) == []


# -------------------------------------------------------------------------------------- names

@pytest.mark.parametrize("name", ["velostream", "linux-x86_64", "velo_sql", "v1.2.3", "a", "A9", "x" * 64,
                                  "complete_pipeline_demo"])
def test_safe_names(name: str) -> None:
    assert unsafe_name_reason(name) is None


@pytest.mark.parametrize("name,reason", [
    ("", "must be a non-empty string"), (None, "must be a non-empty string"), (5, "must be a non-empty string"),
    ("a/b", "path separator"), ("a\\b", "path separator"), ("/abs", "path separator"),
    ("..", "must not be '.' or '..'"), ("a..b", "must not contain '..'"), (".", "must not be '.' or '..'"),
    (".hidden", "letters, digits"), ("-flag", "letters, digits"), ("_x", "letters, digits"),
    ("a b", "no spaces or shell characters"), ("a;rm", "shell characters"), ("a$b", "shell characters"),
    ("a`b`", "shell characters"), ("a\nb", "shell characters"), ("caf\u00e9", "letters, digits"),
    ("x" * 65, "at most 64 characters"),
])
def test_unsafe_names(name: object, reason: str) -> None:
    found = unsafe_name_reason(name)
    assert found is not None and reason in found


@pytest.mark.parametrize("check", ["name", "store"])
def test_trailing_newline_is_not_safe(check: str) -> None:
    if check == "name":
        assert unsafe_name_reason("w1\n") is not None
    else:
        with pytest.raises(ArtifactError):
            check_part("v1.2.3\n", "tag")
