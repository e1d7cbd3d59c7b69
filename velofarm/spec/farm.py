"""The farm spec: farm.toml loaded into plain data and validated before any work starts."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from velofarm.errors import SpecError
from velofarm.names import unsafe_name_reason
from velofarm.spec.docker import DOCKER_FIELDS, DockerSettings, check_tls_files, docker_settings
from velofarm.spec.master import MasterSettings, parse_master
from velofarm.spec.platforms import Platform, build_platform, catalogue_data, suggest, worker_os
from velofarm.spec.registry import read_registry
from velofarm.spec.release_fields import (
    DEFAULT_BUILD_TIMEOUT_MINUTES,
    DEFAULT_PLATFORM_TIMEOUT_MINUTES,
    GiteaFields,
    build_timeout,
    gitea_fields,
    notes_fields,
    platform_timeout,
    reproduce_count,
)

DEFAULT_TAG_PATTERN = (r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
                       r"(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
PUBLISHERS = ("directory", "github", "gitea")


@dataclass(frozen=True)
class Binary:
    """A binary to ship; `smoke` is the argument list to run it with, empty for never."""

    name: str
    smoke: tuple[str, ...]


@dataclass(frozen=True)
class Project:
    name: str
    title: str
    git_url: str
    manifest: str
    ship: tuple[str, ...]
    binaries: tuple[Binary, ...]
    needs_protoc: bool = False


@dataclass(frozen=True)
class Worker:
    name: str
    platforms: tuple[str, ...]
    max_builds: int = 1
    os: str = ""  # linux, macos or windows; "" when farm.toml does not say
    source: str = "farm.toml"  # the file that declares it (farm.toml or the worker registry)
    docker: DockerSettings | None = None  # a Docker latent worker: a fresh container per build


@dataclass(frozen=True)
class ReleaseSettings(GiteaFields):  # gitea_url, gitea_repo, gitea_token_secret: see release_fields
    tag_pattern: str = DEFAULT_TAG_PATTERN
    publisher: str = "directory"
    directory: str = "releases"
    github_repo: str = ""
    github_api_url: str = "https://api.github.com"
    github_token_secret: str = "github-token"
    base_url: str = ""  # directory publisher: where releases/ is served; "" links next to the notes
    notes: str = "both"  # git, changelog or both: see release_fields.notes_fields
    reproduce: int = 1  # builds per platform that must agree byte for byte before publishing
    # how long a platform build may wait with none of its workers connected (release_fields)
    platform_timeout_minutes: float = DEFAULT_PLATFORM_TIMEOUT_MINUTES
    # the longest a platform's cargo build may run, output or not (release_fields)
    build_timeout_minutes: float = DEFAULT_BUILD_TIMEOUT_MINUTES


@dataclass(frozen=True)
class Spec:
    """The whole farm: what to build, where, and where releases go."""

    path: Path
    project: Project
    platforms: dict[str, Platform]
    workers: dict[str, Worker]
    release: ReleaseSettings = field(default_factory=ReleaseSettings)
    master: MasterSettings = field(default_factory=MasterSettings)
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolve(self, value: str) -> Path:
        """A path from farm.toml, relative to farm.toml's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.root / path)

    @property
    def repo_url(self) -> str:
        """The git URL, with a local relative path made absolute."""
        url = self.project.git_url
        if "://" in url or url.startswith("git@") or url.startswith("/"):
            return url
        return str(self.resolve(url))

    def workers_for(self, platform: str) -> list[Worker]:
        return [w for w in self.workers.values() if platform in w.platforms]

    def tag_matches(self, tag: str) -> bool:
        """The one release-tag rule (tagpolicy.decide), as a yes or no."""
        from velofarm.tags.tagpolicy import decide
        return decide(tag, self.release.tag_pattern).release


def read_farm_toml(path: Path) -> dict[str, Any]:
    """farm.toml's data, unvalidated; SpecError when the file is missing or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: not found; create it from the farm.toml in the velofarm repository "
                        "or pass --spec") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path.name}: not valid TOML: {exc}") from None


def load_spec(path: str | Path) -> Spec:
    """Read and validate farm.toml; raises SpecError naming the field and the fix."""
    path = Path(path).resolve()
    return parse_spec(read_farm_toml(path), path)


def parse_spec(data: dict[str, Any], path: Path,
               registry: dict[str, dict[str, Any]] | None = None) -> Spec:
    """Validate already-parsed farm.toml data, merged with the worker registry.

    `registry` stands in for the registry file's worker tables (to validate an edit before it is
    written); None reads the file [master] worker_registry names.
    """
    where = path.name
    _only(data, {"project", "platforms", "workers", "release", "master", "users"}, where)
    project = _project(_table(data, "project", where), f"{where}: project")
    platforms = _platforms(_table(data, "platforms", where), f"{where}: platforms")
    master = parse_master(data.get("master", {}), f"{where}: master")
    workers = _all_workers(data, platforms, path, master, registry)
    for name in platforms:
        if not any(name in w.platforms for w in workers.values()):
            raise SpecError(f"{where}: platforms.{name}: no worker serves this platform; add it to a "
                            f"worker's platforms (velofarm worker add NAME --platform {name}) or remove it")
    release = _release(data.get("release", {}), f"{where}: release")
    users = _users(data.get("users", {}), f"{where}: users")
    return Spec(path=path, project=project, platforms=platforms, workers=workers, release=release,
                master=master, users=users, raw=data)


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict) or not value:
        raise SpecError(f"{where}: [{key}] is missing or empty; see the farm.toml in the velofarm repository")
    return value


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise SpecError(f"{where}: unknown field '{key}'{suggest(key, sorted(allowed))}; "
                            f"allowed: {', '.join(sorted(allowed))}")


def _name(name: str, where: str) -> None:
    reason = unsafe_name_reason(name)
    if reason:
        raise SpecError(f"{where}: name '{name}' {reason}; rename it")


def _project(table: dict[str, Any], where: str) -> Project:
    _only(table, {"name", "title", "git_url", "manifest", "ship", "binaries", "needs_protoc"}, where)
    for key in ("name", "git_url"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise SpecError(f"{where}.{key}: missing; set it to a string")
    _name(table["name"], f"{where}.name")
    ship = table.get("ship", [])
    if not isinstance(ship, list) or not all(isinstance(s, str) and s for s in ship):
        raise SpecError(f"{where}.ship: must be a list of paths, e.g. [\"README.md\", \"configs\"]")
    for item in ship:
        _relative_path(item, f"{where}.ship")
    paths = [PurePosixPath(item) for item in ship]
    for i, path in enumerate(paths):
        for other in paths[:i]:
            if path == other:
                raise SpecError(f"{where}.ship: '{ship[i]}' is declared twice; keep one")
            if other in path.parents or path in other.parents:
                raise SpecError(f"{where}.ship: '{ship[i]}' and '{other}' overlap (one is inside the other); "
                                "keep the outer one")
    binaries = _binaries(table.get("binaries"), f"{where}.binaries")
    manifest = table.get("manifest", "Cargo.toml")
    if not isinstance(manifest, str):
        raise SpecError(f"{where}.manifest: must be a path string")
    _relative_path(manifest, f"{where}.manifest")
    return Project(name=table["name"], title=str(table.get("title", table["name"])),
                   git_url=table["git_url"], manifest=manifest, ship=tuple(ship),
                   binaries=binaries, needs_protoc=bool(table.get("needs_protoc", False)))


def _relative_path(item: str, where: str) -> None:
    """The same rules the packer applies on the worker, checked before any build starts."""
    pure = PurePosixPath(item)
    if (pure.is_absolute() or any(part in (".", "..") for part in item.split("/")) or "\\" in item
            or ":" in item or item.endswith("/") or not item):
        raise SpecError(f"{where}: '{item}' must be a plain relative path inside the repository "
                        "(no leading '/', './', '..', ':', '\\' or trailing '/')")


def _binaries(table: Any, where: str) -> tuple[Binary, ...]:
    if not isinstance(table, dict) or not table:
        raise SpecError(f"{where}: declare each binary with its smoke arguments, e.g. velo-sql = [\"--version\"] "
                        "(or [] for a binary that must not be run bare)")
    result = []
    for name, smoke in table.items():
        _name(name, f"{where}.{name}")
        if not isinstance(smoke, list) or not all(isinstance(a, str) for a in smoke):
            raise SpecError(f"{where}.{name}: must be a list of arguments such as [\"--version\"], "
                            "or [] for no smoke test")
        result.append(Binary(name=name, smoke=tuple(smoke)))
    lowered = [b.name.lower() for b in result]
    for b in result:
        if lowered.count(b.name.lower()) > 1:
            raise SpecError(f"{where}.{b.name}: binary declared twice (names differ only in case); keep one")
    return tuple(result)


def _platforms(table: dict[str, Any], where: str) -> dict[str, Platform]:
    known = catalogue_data()
    result: dict[str, Platform] = {}
    targets: dict[str, str] = {}
    for name, overrides in table.items():
        _name(name, f"{where}.{name}")
        if not isinstance(overrides, dict):
            raise SpecError(f"{where}.{name}: must be a table ([platforms.{name}])")
        if name not in known and "target" not in overrides:
            raise SpecError(f"{where}.{name}: not in the catalogue{suggest(name, sorted(known))}; "
                            "name a catalogue platform or give target, os and method")
        fields = {**known.get(name, {}), **overrides}
        platform = build_platform(name, fields, f"{where}.{name}")
        if platform.target in targets:
            raise SpecError(f"{where}.{name}.target: '{platform.target}' is already built by platform "
                            f"'{targets[platform.target]}'; one platform per target (archive names would clash)")
        targets[platform.target] = name
        result[name] = platform
    return result


def master_settings(data: dict[str, Any], path: Path) -> MasterSettings:
    """farm.toml's [master] alone, validated (for commands that must work while the registry is broken)."""
    return parse_master(data.get("master", {}), f"{path.name}: master")


def registry_path(path: Path, master: MasterSettings) -> Path:
    """The worker registry file, relative to farm.toml's folder."""
    if not isinstance(master.worker_registry, str) or not master.worker_registry:
        raise SpecError(f"{path.name}: master.worker_registry: must be a path, e.g. \"workers/registry.toml\"")
    value = Path(master.worker_registry).expanduser()
    return value if value.is_absolute() else path.parent / value


def _all_workers(data: dict[str, Any], platforms: dict[str, Platform], path: Path, master: MasterSettings,
                 registry: dict[str, dict[str, Any]] | None) -> dict[str, Worker]:
    # farm.toml's [workers] and the registry, validated alike; a name in both is ambiguous.
    where = path.name
    table = data.get("workers", {})
    if not isinstance(table, dict):
        raise SpecError(f"{where}: workers: must be tables ([workers.NAME])")
    workers = _workers(table, platforms, f"{where}: workers", source=where)
    reg_path = registry_path(path, master)
    shown = _shown(reg_path, path.parent)
    tables = read_registry(reg_path) if registry is None else registry
    added = _workers(tables, platforms, f"{shown}: workers", source=shown)
    check_tls_files({**workers, **added}, path.parent / master.secrets_dir, where)
    for name in added:
        if name in workers:
            raise SpecError(f"worker '{name}' is declared in both {where} [workers.{name}] and {shown}; keep one: "
                            f"delete it from {where}, or run: velofarm worker remove {name}")
    return {**workers, **added}


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _workers(table: dict[str, Any], platforms: dict[str, Platform], where: str,
             source: str = "farm.toml") -> dict[str, Worker]:
    result: dict[str, Worker] = {}
    for name, body in table.items():
        _name(name, f"{where}.{name}")
        if not isinstance(body, dict):
            raise SpecError(f"{where}.{name}: must be a table ([workers.{name}])")
        _only(body, {"platforms", "max_builds", "os", *DOCKER_FIELDS}, f"{where}.{name}")
        served = body.get("platforms")
        if not isinstance(served, list) or not served:
            raise SpecError(f"{where}.{name}.platforms: list the platforms this worker builds, "
                            f"e.g. [\"{next(iter(platforms))}\"]")
        for p in served:
            if p not in platforms:
                raise SpecError(f"{where}.{name}.platforms: unknown platform '{p}'"
                                f"{suggest(str(p), sorted(platforms))}; declare it under [platforms.{p}] first")
        if len(set(served)) != len(served):
            raise SpecError(f"{where}.{name}.platforms: a platform is listed twice; keep one")
        max_builds = body.get("max_builds", 1)
        if not isinstance(max_builds, int) or isinstance(max_builds, bool) or not 1 <= max_builds <= 64:
            raise SpecError(f"{where}.{name}.max_builds: must be a whole number from 1 to 64, got {max_builds!r}")
        result[name] = Worker(name=name, platforms=tuple(served), max_builds=max_builds, source=source,
                              os=worker_os(body.get("os", ""), served, platforms, f"{where}.{name}.os"),
                              docker=docker_settings(body, f"{where}.{name}", {p: platforms[p].os for p in served}))
    if "release-coordinator" in result:
        raise SpecError(f"{where}.release-coordinator: this name is reserved for the master's own worker")
    return result


def _release(table: Any, where: str) -> ReleaseSettings:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: must be a table")
    _only(table, set(ReleaseSettings.__dataclass_fields__), where)  # as _master: every field, none else
    pattern = table.get("tag_pattern", DEFAULT_TAG_PATTERN)
    try:
        re.compile(pattern, re.ASCII)  # tagpolicy.decide matches with re.ASCII too
    except (re.error, TypeError) as exc:
        raise SpecError(f"{where}.tag_pattern: not a valid regular expression: {exc}") from None
    if not pattern.endswith("$"):
        raise SpecError(f"{where}.tag_pattern: must end with '$' so that 'v1.0.0junk' does not match")
    publisher = table.get("publisher", "directory")
    if publisher not in PUBLISHERS:
        raise SpecError(f"{where}.publisher: '{publisher}' is not one of {', '.join(PUBLISHERS)}"
                        f"{suggest(str(publisher), list(PUBLISHERS))}")
    repo = table.get("github_repo", "")
    if publisher == "github" and not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", str(repo)):
        raise SpecError(f"{where}.github_repo: set it to OWNER/NAME when publisher = \"github\"")
    return ReleaseSettings(tag_pattern=pattern, publisher=publisher, reproduce=reproduce_count(table, where),
                           platform_timeout_minutes=platform_timeout(table, where),
                           build_timeout_minutes=build_timeout(table, where),
                           directory=str(table.get("directory", "releases")), github_repo=str(repo),
                           github_api_url=str(table.get("github_api_url", "https://api.github.com")).rstrip("/"),
                           github_token_secret=str(table.get("github_token_secret", "github-token")),
                           **notes_fields(table, where), **gitea_fields(table, where, publisher))


def _users(table: Any, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: must be a table")
    from velofarm.users import GITHUB_TABLE, ROLES, github_table_problem
    for name, body in table.items():
        if name == GITHUB_TABLE:
            problem = github_table_problem(body, [n for n in table if n != GITHUB_TABLE])
            if problem:
                raise SpecError(f"{where}.{name}: {problem}")
            continue
        _name(name, f"{where}.{name}")
        if not isinstance(body, dict) or body.get("role") not in ROLES:
            raise SpecError(f"{where}.{name}: needs role = \"ops\" or \"release-manager\" (use velofarm user add)")
        _only(body, {"role"}, f"{where}.{name}")
    return table
