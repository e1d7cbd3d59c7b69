"""The platform catalogue: a platform is data, loaded from catalogue.toml and validated."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from velofarm.errors import SpecError

METHODS = ("cargo", "cross")
ARCHIVES = ("tar.gz", "zip")
OSES = ("linux", "macos", "windows")
DEFAULT_SIZE_LIMIT_MB = 30

FIELDS = {
    "target", "os", "method", "archive", "exe_suffix", "python", "cargo", "env", "rustflags",
    "linker", "runner", "size_limit_mb", "fix_target", "fix_linker", "fix_runner", "fix_cross",
    "fix_docker", "authenticode",
}


@dataclass(frozen=True)
class Platform:
    """One build target: how a worker turns the source into this platform's archive."""

    name: str
    target: str
    os: str
    method: str = "cargo"
    archive: str = "tar.gz"
    exe_suffix: str = ""
    python: str = "python3"
    cargo: str = "cargo"
    env: dict[str, str] = field(default_factory=dict)
    rustflags: tuple[str, ...] = ()
    linker: str | None = None
    runner: tuple[str, ...] = ()
    size_limit_mb: int = DEFAULT_SIZE_LIMIT_MB
    fix_target: str = ""
    fix_linker: str = ""
    fix_runner: str = ""
    fix_cross: str = ""
    fix_docker: str = ""
    authenticode: bool = False  # sign every .exe on the master (osslsigncode) before archiving

    @property
    def builder_name(self) -> str:
        return f"build-{self.name}"

    @property
    def target_os(self) -> str:
        """The OS the binaries run on, from the target triple (`os` is where they are built)."""
        if "windows" in self.target:
            return "windows"
        if "apple" in self.target or "darwin" in self.target:
            return "macos"
        return "linux" if "linux" in self.target else "other"

    @property
    def builder_tags(self) -> list[str]:
        """Where the platform builds and what it targets: ['platform', 'on-linux', 'for-windows', 'x86_64', 'cargo']."""
        return ["platform", f"on-{self.os}", f"for-{self.target_os}", self.target.split("-")[0], self.method]

    def to_json(self) -> dict[str, Any]:
        """The platform as plain JSON data, as the worker-side tools read it."""
        return {
            "name": self.name, "target": self.target, "os": self.os, "method": self.method,
            "archive": self.archive, "exe_suffix": self.exe_suffix, "python": self.python,
            "cargo": self.cargo, "env": dict(self.env), "rustflags": list(self.rustflags),
            "linker": self.linker, "runner": list(self.runner),
            "size_limit_bytes": self.size_limit_mb * 1024 * 1024,
            "fix_target": self.fix_target, "fix_linker": self.fix_linker,
            "fix_runner": self.fix_runner, "fix_cross": self.fix_cross, "fix_docker": self.fix_docker,
        }


def known_targets() -> list[str]:
    """Rust target triples velofarm accepts (a misspelling gets a suggestion)."""
    text = resources.files("velofarm.spec").joinpath("targets.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def catalogue_data() -> dict[str, dict[str, Any]]:
    """The raw catalogue table, platform name to fields."""
    text = resources.files("velofarm.spec").joinpath("catalogue.toml").read_text()
    return tomllib.loads(text)


def suggest(word: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' when a close choice exists, else ''."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def build_platform(name: str, fields: dict[str, Any], where: str) -> Platform:
    """Validate one platform's fields (catalogue merged with overrides) into a Platform."""
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        raise SpecError(f"{where}: unknown field '{unknown[0]}'{suggest(unknown[0], sorted(FIELDS))}; "
                        f"allowed fields: {', '.join(sorted(FIELDS))}")
    target = fields.get("target")
    if not isinstance(target, str) or not target:
        raise SpecError(f"{where}.target: missing; set the Rust target triple, e.g. 'x86_64-unknown-linux-gnu'")
    targets = known_targets()
    if target not in targets:
        raise SpecError(f"{where}.target: unknown target '{target}'{suggest(target, targets)}; "
                        "see `rustc --print target-list`")
    _choice(fields, "method", METHODS, where, "cargo")
    _choice(fields, "archive", ARCHIVES, where, "tar.gz")
    if "os" not in fields:
        raise SpecError(f"{where}.os: missing; one of {', '.join(OSES)}")
    _choice(fields, "os", OSES, where, "linux")
    size = fields.get("size_limit_mb", DEFAULT_SIZE_LIMIT_MB)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise SpecError(f"{where}.size_limit_mb: must be a positive whole number of megabytes, got {size!r}")
    env = fields.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise SpecError(f"{where}.env: must be a table of string values, e.g. env = {{ RUSTC = \"/usr/bin/rustc\" }}")
    for key in ("runner", "rustflags"):
        value = fields.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise SpecError(f"{where}.{key}: must be a list of non-empty strings, e.g. [\"/usr/lib/wine/wine64\"]")
    for key in ("exe_suffix", "python", "cargo", "linker", "fix_target", "fix_linker", "fix_runner",
                "fix_cross", "fix_docker"):
        if key in fields and not isinstance(fields[key], str):
            raise SpecError(f"{where}.{key}: must be a string")
    authenticode = fields.get("authenticode", False)
    if not isinstance(authenticode, bool):
        raise SpecError(f"{where}.authenticode: must be true or false, got {authenticode!r}")
    if authenticode and fields.get("exe_suffix") != ".exe":
        raise SpecError(f"{where}.authenticode: only Windows platforms (exe_suffix = \".exe\") have .exe files "
                        "to sign; remove authenticode from this platform")
    return Platform(
        name=name, target=target, os=fields["os"], method=fields.get("method", "cargo"),
        archive=fields.get("archive", "tar.gz"), exe_suffix=fields.get("exe_suffix", ""),
        python=fields.get("python", "python3"), cargo=fields.get("cargo", "cargo"), env=dict(env),
        rustflags=tuple(fields.get("rustflags", [])), linker=fields.get("linker") or None,
        runner=tuple(fields.get("runner", [])), size_limit_mb=size,
        fix_target=fields.get("fix_target", ""), fix_linker=fields.get("fix_linker", ""),
        fix_runner=fields.get("fix_runner", ""), fix_cross=fields.get("fix_cross", ""),
        fix_docker=fields.get("fix_docker", ""), authenticode=authenticode,
    )


def _choice(fields: dict[str, Any], key: str, allowed: tuple[str, ...], where: str, default: str) -> None:
    value = fields.get(key, default)
    if value not in allowed:
        raise SpecError(f"{where}.{key}: '{value}' is not one of {', '.join(allowed)}"
                        f"{suggest(str(value), list(allowed))}")


def catalogue() -> dict[str, Platform]:
    """Every platform of the built-in catalogue, validated."""
    return {name: build_platform(name, fields, f"catalogue.toml: {name}")
            for name, fields in catalogue_data().items()}


def worker_os(value: Any, served: list[str], platforms: dict[str, Platform], where: str) -> str:
    # A platform's os is the OS of the machine that builds it (windows-x86_64-gnu builds on linux).
    if value == "":
        return ""
    if value not in OSES:
        raise SpecError(f"{where}: '{value}' is not one of {', '.join(OSES)}{suggest(str(value), list(OSES))}")
    for p in served:
        if platforms[p].os != value:
            raise SpecError(f"{where}: '{value}', but platform {p} builds on {platforms[p].os}; "
                            f"serve it from a {platforms[p].os} worker, or set os = \"{platforms[p].os}\"")
    return str(value)
