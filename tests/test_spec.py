"""farm.toml: the repository's file loads, and every bad input is refused naming the field and the fix."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FARM_TOML

from velofarm.errors import SpecError
from velofarm.spec.farm import DEFAULT_TAG_PATTERN, load_spec, parse_spec
from velofarm.spec.platforms import catalogue, catalogue_data, known_targets
from velofarm.tags.tagpolicy import decide

# A small valid farm: two catalogue platforms, one worker each. Every bad-input test changes one thing.
BASE: dict[str, Any] = {
    "project": {"name": "demo", "git_url": "https://example.invalid/demo.git", "ship": ["README.md"],
                "binaries": {"demo": ["--version"], "demo-tool": []}},
    "platforms": {"linux-x86_64": {}, "macos-arm64": {}},
    "workers": {"lin-1": {"platforms": ["linux-x86_64"]}, "mac-1": {"platforms": ["macos-arm64"]}},
}


def parse(data: dict[str, Any], tmp_path: Path) -> Any:
    # registry={} keeps a registry another change may add out of these tests.
    return parse_spec(data, tmp_path / "farm.toml", registry={})


def refusal(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> str:
    """The SpecError message for BASE with `change` applied (the test fails if nothing is refused)."""
    data = copy.deepcopy(BASE)
    change(data)
    with pytest.raises(SpecError) as info:
        parse(data, tmp_path)
    return str(info.value)


def test_base_is_valid(tmp_path: Path) -> None:
    spec = parse(copy.deepcopy(BASE), tmp_path)
    assert list(spec.platforms) == ["linux-x86_64", "macos-arm64"]
    assert spec.platforms["macos-arm64"].target == "aarch64-apple-darwin"
    assert [b.name for b in spec.project.binaries] == ["demo", "demo-tool"]
    assert spec.project.binaries[0].smoke == ("--version",) and spec.project.binaries[1].smoke == ()


# ------------------------------------------------------------------------------ the repository's farm.toml

def test_repository_farm_toml_has_all_eight_catalogue_platforms() -> None:
    spec = load_spec(FARM_TOML)
    assert sorted(spec.platforms) == sorted(catalogue_data())
    assert len(spec.platforms) == 8
    p = spec.platforms
    assert {n for n, x in p.items() if x.method == "cross"} == {"linux-x86_64-musl", "linux-arm64-musl"}
    assert {x.target for x in p.values() if x.method == "cross"} == {
        "x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"}
    assert {x.target for x in p.values() if x.os == "macos"} == {"x86_64-apple-darwin", "aarch64-apple-darwin"}
    assert (p["windows-x86_64-msvc"].target, p["windows-x86_64-msvc"].archive,
            p["windows-x86_64-msvc"].os) == ("x86_64-pc-windows-msvc", "zip", "windows")
    assert p["linux-x86_64"].target == "x86_64-unknown-linux-gnu"
    gnu = p["windows-x86_64-gnu"]
    assert (gnu.target, gnu.os, gnu.cargo, gnu.env) == (
        "x86_64-pc-windows-gnu", "linux", "/usr/bin/cargo", {"RUSTC": "/usr/bin/rustc"})
    arm = p["linux-arm64"]
    assert (arm.target, arm.os, arm.method, arm.cargo, arm.linker) == (
        "aarch64-unknown-linux-gnu", "linux", "cargo", "/usr/bin/cargo", "aarch64-linux-gnu-gcc")
    assert spec.release.publisher == "directory"
    assert spec.master.www_port == 8010


def test_repository_farm_toml_workers_serve_their_platforms() -> None:
    # The registry may add workers; the ones farm.toml declares must be there as declared.
    spec = load_spec(FARM_TOML)
    declared = {"linux-docker-1": ("linux-x86_64-musl", "linux-arm64-musl"),
                "mac-mini-1": ("macos-x86_64", "macos-arm64"),
                "win-msvc-1": ("windows-x86_64-msvc",),
                "linux-1": ("linux-x86_64", "windows-x86_64-gnu", "linux-arm64")}
    for name, platforms in declared.items():
        assert spec.workers[name].platforms == platforms
        assert spec.workers[name].source == "farm.toml"
    assert spec.workers["linux-docker-1"].max_builds == 2
    for name in spec.platforms:
        assert spec.workers_for(name), name


def test_every_catalogue_platform_validates_and_names_a_known_target() -> None:
    platforms = catalogue()
    targets = set(known_targets())
    assert len(platforms) == 8
    for p in platforms.values():
        assert p.target in targets
    assert len({p.target for p in platforms.values()}) == 8


def test_catalogue_override_keeps_the_other_fields(tmp_path: Path) -> None:
    text = FARM_TOML.read_text(encoding="utf-8").replace(
        "[platforms.linux-x86_64]\n", "[platforms.linux-x86_64]\nsize_limit_mb = 40\n")
    assert "size_limit_mb = 40" in text
    path = tmp_path / "farm.toml"
    path.write_text(text, encoding="utf-8")
    spec = load_spec(path)
    assert spec.platforms["linux-x86_64"].size_limit_mb == 40
    assert spec.platforms["linux-x86_64"].to_json()["size_limit_bytes"] == 40 * 1024 * 1024
    assert spec.platforms["linux-x86_64"].linker == "cc"  # still the catalogue's
    assert spec.platforms["macos-arm64"].size_limit_mb == 30


def test_custom_platform_outside_the_catalogue(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["platforms"]["freebsd"] = {"target": "x86_64-unknown-freebsd", "os": "linux", "method": "cross"}
    data["workers"]["lin-1"]["platforms"].append("freebsd")
    spec = parse(data, tmp_path)
    assert (spec.platforms["freebsd"].target, spec.platforms["freebsd"].archive) == (
        "x86_64-unknown-freebsd", "tar.gz")


# --------------------------------------------------------------------------------------- files

def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"farm\.toml: not found; create it"):
        load_spec(tmp_path / "farm.toml")


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "farm.toml"
    path.write_text("[project]\nname = \"demo\nbroken\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"^farm\.toml: not valid TOML: .*line 2"):
        load_spec(path)


# --------------------------------------------------------------------------------- platforms

def test_misspelt_target_gets_suggestion(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["platforms"]["macos-arm64"].update(target="aarch64-apple-darwn"))
    assert "platforms.macos-arm64.target: unknown target 'aarch64-apple-darwn'" in msg
    assert "did you mean 'aarch64-apple-darwin'" in msg


def test_unknown_target_without_suggestion_points_at_rustc(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["platforms"]["macos-arm64"].update(target="zzz-nothing"))
    assert "unknown target 'zzz-nothing'" in msg and "did you mean" not in msg
    assert "rustc --print target-list" in msg


def test_misspelt_platform_name_not_in_catalogue(tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["platforms"] = {"linux-x86_64": {}, "macos-arm46": {}}
        d["workers"]["mac-1"]["platforms"] = ["macos-arm46"]
    msg = refusal(tmp_path, change)
    assert "platforms.macos-arm46: not in the catalogue (did you mean 'macos-arm64'?)" in msg
    assert "give target, os and method" in msg


def test_duplicate_target_across_platforms(tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["platforms"]["gnu-again"] = {"target": "x86_64-unknown-linux-gnu", "os": "linux"}
        d["workers"]["lin-1"]["platforms"].append("gnu-again")
    msg = refusal(tmp_path, change)
    assert "platforms.gnu-again.target: 'x86_64-unknown-linux-gnu' is already built by platform 'linux-x86_64'" in msg
    assert "one platform per target" in msg


def test_platform_no_worker_serves(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["workers"].pop("mac-1"))
    assert "platforms.macos-arm64: no worker serves this platform" in msg
    assert "velofarm worker add NAME --platform macos-arm64" in msg


@pytest.mark.parametrize("key,value,expect", [
    ("size_limit_mb", 0, "got 0"), ("size_limit_mb", -5, "got -5"), ("size_limit_mb", "40", "got '40'"),
    ("size_limit_mb", 1.5, "got 1.5"), ("size_limit_mb", True, "got True"),
])
def test_bad_size_limit(tmp_path: Path, key: str, value: object, expect: str) -> None:
    msg = refusal(tmp_path, lambda d: d["platforms"]["linux-x86_64"].update({key: value}))
    assert "platforms.linux-x86_64.size_limit_mb: must be a positive whole number of megabytes" in msg
    assert expect in msg


@pytest.mark.parametrize("key,value,expect", [
    ("method", "crosss", "'crosss' is not one of cargo, cross (did you mean 'cross'?)"),
    ("method", "make", "'make' is not one of cargo, cross"),
    ("archive", "zpi", "'zpi' is not one of tar.gz, zip"),
    ("archive", "tgz", "'tgz' is not one of tar.gz, zip"),
    ("os", "linxu", "'linxu' is not one of linux, macos, windows (did you mean 'linux'?)"),
])
def test_bad_choice(tmp_path: Path, key: str, value: str, expect: str) -> None:
    msg = refusal(tmp_path, lambda d: d["platforms"]["linux-x86_64"].update({key: value}))
    assert f"platforms.linux-x86_64.{key}: {expect}" in msg


def test_unknown_platform_field_gets_suggestion(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["platforms"]["linux-x86_64"].update(size_limit=40))
    assert "platforms.linux-x86_64: unknown field 'size_limit' (did you mean 'size_limit_mb'?)" in msg
    assert "allowed fields:" in msg


@pytest.mark.parametrize("key,value,expect", [
    ("env", {"RUSTC": 1}, "env: must be a table of string values"),
    ("env", "RUSTC=x", "env: must be a table of string values"),
    ("runner", "qemu", "runner: must be a list of non-empty strings"),
    ("rustflags", ["-C", ""], "rustflags: must be a list of non-empty strings"),
    ("cargo", 5, "cargo: must be a string"),
])
def test_bad_platform_field_types(tmp_path: Path, key: str, value: object, expect: str) -> None:
    msg = refusal(tmp_path, lambda d: d["platforms"]["linux-x86_64"].update({key: value}))
    assert f"platforms.linux-x86_64.{expect}" in msg


def test_custom_platform_needs_os(tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["platforms"]["custom"] = {"target": "x86_64-unknown-freebsd"}
        d["workers"]["lin-1"]["platforms"].append("custom")
    assert "platforms.custom.os: missing; one of linux, macos, windows" in refusal(tmp_path, change)


def test_platform_must_be_a_table(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["platforms"].update({"linux-x86_64": "yes"}))
    assert "platforms.linux-x86_64: must be a table ([platforms.linux-x86_64])" in msg


# ------------------------------------------------------------------------------------- names

UNSAFE = [
    ("a/b", "must not contain a path separator"),
    ("a\\b", "must not contain a path separator"),
    ("a b", "no spaces or shell characters"),
    ("a;rm", "no spaces or shell characters"),
    ("$(id)", "no spaces or shell characters"),
    ("..", "must not be '.' or '..'"),
    ("-rf", "no spaces or shell characters"),
    ("x" * 65, "must be at most 64 characters"),
]


@pytest.mark.parametrize("name,reason", UNSAFE)
def test_unsafe_project_name(tmp_path: Path, name: str, reason: str) -> None:
    msg = refusal(tmp_path, lambda d: d["project"].update(name=name))
    assert f"project.name: name '{name}'" in msg and reason in msg and "rename it" in msg


@pytest.mark.parametrize("name,reason", UNSAFE)
def test_unsafe_platform_name(tmp_path: Path, name: str, reason: str) -> None:
    msg = refusal(tmp_path, lambda d: d["platforms"].update({name: {"target": "x86_64-pc-windows-gnu", "os": "linux"}}))
    assert f"platforms.{name}: name '{name}'" in msg and reason in msg and "rename it" in msg


@pytest.mark.parametrize("name,reason", UNSAFE)
def test_unsafe_worker_name(tmp_path: Path, name: str, reason: str) -> None:
    msg = refusal(tmp_path, lambda d: d["workers"].update({name: {"platforms": ["linux-x86_64"]}}))
    assert f"workers.{name}: name '{name}'" in msg and reason in msg and "rename it" in msg


@pytest.mark.parametrize("name,reason", UNSAFE)
def test_unsafe_binary_name(tmp_path: Path, name: str, reason: str) -> None:
    msg = refusal(tmp_path, lambda d: d["project"]["binaries"].update({name: []}))
    assert f"project.binaries.{name}: name '{name}'" in msg and reason in msg and "rename it" in msg


def test_empty_project_name(tmp_path: Path) -> None:
    assert "project.name: missing; set it to a string" in refusal(tmp_path, lambda d: d["project"].update(name=""))


def test_reserved_worker_name(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["workers"].update({"release-coordinator": {"platforms": ["linux-x86_64"]}}))
    assert "workers.release-coordinator: this name is reserved" in msg


# ---------------------------------------------------------------------------------- binaries

@pytest.mark.parametrize("twin", ["demo", "DEMO", "Demo"])
def test_binary_declared_twice_case_insensitively(tmp_path: Path, twin: str) -> None:
    def change(d: dict[str, Any]) -> None:
        d["project"]["binaries"] = {"Demo" if twin == "demo" else "demo": [], twin: ["--version"]}
    msg = refusal(tmp_path, change)
    assert "binary declared twice" in msg and "keep one" in msg
    assert "project.binaries." in msg


@pytest.mark.parametrize("smoke", ["--version", [1], True, {"a": "b"}, [["--version"]]])
def test_bad_smoke_value(tmp_path: Path, smoke: object) -> None:
    msg = refusal(tmp_path, lambda d: d["project"]["binaries"].update(demo=smoke))
    assert "project.binaries.demo: must be a list of arguments such as [\"--version\"]" in msg
    assert "or [] for no smoke test" in msg


def test_binaries_missing(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["project"].pop("binaries"))
    assert "project.binaries: declare each binary with its smoke arguments" in msg


# -------------------------------------------------------------------------------------- ship

@pytest.mark.parametrize("entry", ["/etc/passwd", "../secrets", "docs/../../x", "a\\b", ".."])
def test_ship_entry_outside_repository(tmp_path: Path, entry: str) -> None:
    msg = refusal(tmp_path, lambda d: d["project"].update(ship=["README.md", entry]))
    assert f"project.ship: '{entry}' must be a plain relative path inside the repository" in msg


def test_duplicate_ship_entry(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["project"].update(ship=["README.md", "LICENSE", "README.md"]))
    assert "project.ship: 'README.md' is declared twice; keep one" in msg


@pytest.mark.parametrize("ship", ["README.md", [""], [1], None])
def test_ship_must_be_a_list_of_paths(tmp_path: Path, ship: object) -> None:
    msg = refusal(tmp_path, lambda d: d["project"].update(ship=ship))
    assert "project.ship: must be a list of paths" in msg


@pytest.mark.parametrize("ship", [["./README.md"], ["docs", "docs/"], ["docs", "docs/guide.md"], ["c:x"]])
def test_ship_entries_the_packer_refuses_are_refused_up_front(tmp_path: Path, ship: list[str]) -> None:
    refusal(tmp_path, lambda d: d["project"].update(ship=ship))


# ------------------------------------------------------------------------------ unknown keys

@pytest.mark.parametrize("where,change,expect", [
    ("top", lambda d: d.update(platfroms={}), "farm.toml: unknown field 'platfroms' (did you mean 'platforms'?)"),
    ("project", lambda d: d["project"].update(binarys={}),
     "project: unknown field 'binarys' (did you mean 'binaries'?)"),
    ("worker", lambda d: d["workers"]["lin-1"].update(max_build=2),
     "workers.lin-1: unknown field 'max_build' (did you mean 'max_builds'?)"),
    ("release", lambda d: d.update(release={"tag_patern": "^v$"}),
     "release: unknown field 'tag_patern' (did you mean 'tag_pattern'?)"),
    ("master", lambda d: d.update(master={"www_prot": 8010}),
     "master: unknown field 'www_prot' (did you mean 'www_port'?)"),
])
def test_unknown_keys_get_suggestions(tmp_path: Path, where: str, change: Callable[[dict[str, Any]], object],
                                      expect: str) -> None:
    msg = refusal(tmp_path, change)
    assert expect in msg and "allowed" in msg


def test_missing_tables(tmp_path: Path) -> None:
    assert "[project] is missing or empty" in refusal(tmp_path, lambda d: d.pop("project"))
    assert "[platforms] is missing or empty" in refusal(tmp_path, lambda d: d.update(platforms={}))


# ----------------------------------------------------------------------------------- workers

@pytest.mark.parametrize("value", [0, 65, -1, "2", True, 1.0])
def test_bad_max_builds(tmp_path: Path, value: object) -> None:
    msg = refusal(tmp_path, lambda d: d["workers"]["lin-1"].update(max_builds=value))
    assert f"workers.lin-1.max_builds: must be a whole number from 1 to 64, got {value!r}" in msg


def test_max_builds_bounds_accepted(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["workers"]["lin-1"]["max_builds"] = 64
    data["workers"]["mac-1"]["max_builds"] = 1
    spec = parse(data, tmp_path)
    assert (spec.workers["lin-1"].max_builds, spec.workers["mac-1"].max_builds) == (64, 1)


def test_worker_names_unknown_platform(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["workers"]["lin-1"].update(platforms=["linux-x86_64", "linux-x86_46"]))
    assert "workers.lin-1.platforms: unknown platform 'linux-x86_46' (did you mean 'linux-x86_64'?)" in msg
    assert "declare it under [platforms.linux-x86_46] first" in msg


def test_worker_platform_listed_twice(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["workers"]["lin-1"].update(platforms=["linux-x86_64", "linux-x86_64"]))
    assert "workers.lin-1.platforms: a platform is listed twice; keep one" in msg


@pytest.mark.parametrize("platforms", [[], "linux-x86_64", None])
def test_worker_without_platform_list(tmp_path: Path, platforms: object) -> None:
    msg = refusal(tmp_path, lambda d: d["workers"]["lin-1"].update(platforms=platforms))
    assert "workers.lin-1.platforms: list the platforms this worker builds" in msg


def test_worker_os_must_match_its_platforms(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d["workers"]["lin-1"].update(os="macos"))
    assert "workers.lin-1.os: 'macos', but platform linux-x86_64 builds on linux" in msg
    assert 'set os = "linux"' in msg
    msg = refusal(tmp_path, lambda d: d["workers"]["lin-1"].update(os="linus"))
    assert "workers.lin-1.os: 'linus' is not one of linux, macos, windows (did you mean 'linux'?)" in msg


def test_workers_must_be_tables(tmp_path: Path) -> None:
    assert "workers: must be tables ([workers.NAME])" in refusal(tmp_path, lambda d: d.update(workers=["lin-1"]))
    msg = refusal(tmp_path, lambda d: d["workers"].update({"lin-1": ["linux-x86_64"]}))
    assert "workers.lin-1: must be a table ([workers.lin-1])" in msg


# ----------------------------------------------------------------------------------- release

def test_tag_pattern_must_end_with_dollar(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d.update(release={"tag_pattern": r"^v\d+\.\d+\.\d+"}))
    assert "release.tag_pattern: must end with '$'" in msg and "'v1.0.0junk' does not match" in msg


@pytest.mark.parametrize("pattern", [r"^v(\d+$", "^v[$", "*v$", 5])
def test_tag_pattern_invalid_regex(tmp_path: Path, pattern: object) -> None:
    msg = refusal(tmp_path, lambda d: d.update(release={"tag_pattern": pattern}))
    assert "release.tag_pattern: not a valid regular expression" in msg


def test_default_tag_pattern_is_anchored(tmp_path: Path) -> None:
    spec = parse(copy.deepcopy(BASE), tmp_path)
    assert spec.release.tag_pattern == DEFAULT_TAG_PATTERN
    assert spec.tag_matches("v1.0.0") and spec.tag_matches("v1.0.0-rc.1+b.2")
    assert not spec.tag_matches("v1.0.0junk") and not spec.tag_matches("xv1.0.0") and not spec.tag_matches("v1.0")


def test_tag_pattern_with_alternation_still_refuses_junk(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["release"] = {"tag_pattern": r"^v1\.\d+\.\d+|^v2\.\d+\.\d+$"}
    try:
        spec = parse(data, tmp_path)
    except SpecError:
        return  # refusing such a pattern is a fix too
    assert not spec.tag_matches("v1.0.0junk")
    assert not decide("refs/tags/v1.0.0junk", spec.release.tag_pattern).release


def test_github_publisher_needs_repo(tmp_path: Path) -> None:
    for release in ({"publisher": "github"}, {"publisher": "github", "github_repo": "just-a-name"},
                    {"publisher": "github", "github_repo": "a/b/c"}):
        msg = refusal(tmp_path, lambda d, release=release: d.update(release=release))
        assert 'release.github_repo: set it to OWNER/NAME when publisher = "github"' in msg
    data = copy.deepcopy(BASE)
    data["release"] = {"publisher": "github", "github_repo": "velostreamai/velostream",
                       "github_api_url": "https://ghe.example/api/v3/"}
    spec = parse(data, tmp_path)
    assert (spec.release.github_repo, spec.release.github_api_url) == (
        "velostreamai/velostream", "https://ghe.example/api/v3")


@pytest.mark.parametrize("release,field,fix", [
    ({"publisher": "gitea", "gitea_repo": "acme/velostream"}, "release.gitea_url", "needs a scheme"),
    ({"publisher": "gitea", "gitea_url": "gitea.example.com", "gitea_repo": "a/b"}, "release.gitea_url",
     '"https://gitea.example.com"'),
    ({"publisher": "gitea", "gitea_url": "ftp://gitea.example.com", "gitea_repo": "a/b"}, "release.gitea_url",
     "needs a scheme"),
    ({"publisher": "gitea", "gitea_url": "https://g.example/api/v1", "gitea_repo": "a/b"}, "release.gitea_url",
     'without /api/v1 (velofarm adds it): "https://g.example"'),
    ({"publisher": "gitea", "gitea_url": "https://g.example"}, "release.gitea_repo", "OWNER/NAME"),
    ({"publisher": "gitea", "gitea_url": "https://g.example", "gitea_repo": "a/b/c"}, "release.gitea_repo",
     "OWNER/NAME"),
    ({"publisher": "gitea", "gitea_url": "https://g.example", "gitea_repo": "a/b", "gitea_token_secret": ""},
     "release.gitea_token_secret", "name the secret"),
])
def test_gitea_publisher_fields_are_checked(tmp_path: Path, release: dict[str, str], field: str, fix: str) -> None:
    msg = refusal(tmp_path, lambda d: d.update(release=release))
    assert f"{field}:" in msg and fix in msg


def test_gitea_publisher_fields(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["release"] = {"publisher": "gitea", "gitea_url": "https://git.example.org/forge/",
                       "gitea_repo": "acme/velostream"}
    spec = parse(data, tmp_path)
    assert (spec.release.gitea_url, spec.release.gitea_repo, spec.release.gitea_token_secret) == (
        "https://git.example.org/forge", "acme/velostream", "gitea-token")


def test_unknown_publisher_gets_suggestion(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d.update(release={"publisher": "githb"}))
    assert "release.publisher: 'githb' is not one of directory, github, gitea (did you mean 'github'?)" in msg


# ------------------------------------------------------------------------------------ master

@pytest.mark.parametrize("url", ["postgresql://bb:hunter2@db/bb", "postgresql+psycopg2://u:p@h:5432/d"])
def test_db_url_with_inline_password(tmp_path: Path, url: str) -> None:
    msg = refusal(tmp_path, lambda d: d.update(master={"db_url": url}))
    assert "master.db_url: holds a password" in msg and 'db_url_secret = "db_url"' in msg
    assert "hunter2" not in msg


def test_db_url_without_password_is_fine(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["master"] = {"db_url": "postgresql://bb@db:5432/bb"}
    assert parse(data, tmp_path).master.db_url == "postgresql://bb@db:5432/bb"


def test_db_url_and_secret_together(tmp_path: Path) -> None:
    msg = refusal(tmp_path, lambda d: d.update(master={"db_url": "sqlite:///x", "db_url_secret": "db_url"}))
    assert "master: set db_url or db_url_secret, not both" in msg


@pytest.mark.parametrize("key,value,low", [
    ("www_port", 0, 1), ("www_port", 65536, 1), ("pb_port", "9989", 1), ("pb_port", True, 1),
    ("pb_port", -1, 1), ("webhook_port", -1, 0), ("webhook_port", 70000, 0), ("poll_interval", 1.5, 0),
])
def test_bad_ports(tmp_path: Path, key: str, value: object, low: int) -> None:
    msg = refusal(tmp_path, lambda d: d.update(master={key: value}))
    assert f"master.{key}: must be a whole number from {low} to 65535, got {value!r}" in msg


def test_port_bounds_accepted(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["master"] = {"www_port": 65535, "pb_port": 1, "webhook_port": 0, "poll_interval": 0}
    master = parse(data, tmp_path).master
    assert (master.www_port, master.pb_port, master.webhook_port, master.poll_interval) == (65535, 1, 0, 0)


@pytest.mark.parametrize("key,value", [("www_bind", 8010), ("url", 8010), ("secrets_dir", 1), ("db_url", 5)])
def test_master_string_fields_must_be_strings(tmp_path: Path, key: str, value: object) -> None:
    msg = refusal(tmp_path, lambda d: d.update(master={key: value}))
    assert f"master.{key}" in msg


@pytest.mark.parametrize("manifest", ["/etc/Cargo.toml", "../Cargo.toml"])
def test_manifest_must_be_inside_the_repository(tmp_path: Path, manifest: str) -> None:
    msg = refusal(tmp_path, lambda d: d["project"].update(manifest=manifest))
    assert "project.manifest" in msg


def test_manifest_must_be_a_string(tmp_path: Path) -> None:
    assert "project.manifest: must be a path string" in refusal(tmp_path, lambda d: d["project"].update(manifest=5))


# ----------------------------------------------------------------------- messages name the file

def test_messages_name_the_file_they_came_from(tmp_path: Path) -> None:
    text = FARM_TOML.read_text(encoding="utf-8").replace(
        "[platforms.macos-arm64]\n", "[platforms.macos-arm64]\ntarget = \"aarch64-apple-darwn\"\n")
    path = tmp_path / "farm.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert re.fullmatch(r"farm\.toml: platforms\.macos-arm64\.target: unknown target 'aarch64-apple-darwn' "
                        r"\(did you mean 'aarch64-apple-darwin'\?\); see `rustc --print target-list`",
                        str(info.value))
