"""Adding, removing and re-keying workers: the registry, the secret and the bundle move together.

Every change is validated as a whole spec (farm.toml plus the edited registry) before anything
is written, and the registry is written last, atomically: a refused or failed command leaves
no half-registered worker behind.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velofarm.errors import SpecError
from velofarm.names import unsafe_name_reason
from velofarm.onboard.bundle import removal_steps, render_bundle, worker_os, write_bundle
from velofarm.secretstore import SecretStore, worker_secret_name
from velofarm.spec import registry
from velofarm.spec.farm import Spec, load_spec, master_settings, parse_spec, read_farm_toml, registry_path
from velofarm.spec.platforms import suggest

RESERVED = {"release-coordinator"}


@dataclass(frozen=True)
class Farm:
    """farm.toml as read (before validation), and where its registry and secrets live."""

    spec_path: Path
    data: dict[str, Any]
    registry: Path
    secrets: SecretStore

    def shown(self, path: Path) -> str:
        """A path as a person on the master types it: relative to farm.toml's folder when inside it."""
        try:
            return str(path.relative_to(self.spec_path.parent))
        except ValueError:
            return str(path)

    def bundle_dir(self, name: str) -> Path:
        return self.registry.parent / name


@dataclass(frozen=True)
class Added:
    worker: str
    os: str
    platforms: tuple[str, ...]
    secret: Path
    bundle: Path
    files: tuple[str, ...]


def open_farm(spec_path: str | Path) -> Farm:
    """Read farm.toml without validating the registry (so a broken registry entry can be removed)."""
    path = Path(spec_path).resolve()
    data = read_farm_toml(path)
    master = master_settings(data, path)
    secrets_dir = Path(master.secrets_dir).expanduser()
    secrets_dir = secrets_dir if secrets_dir.is_absolute() else path.parent / secrets_dir
    return Farm(spec_path=path, data=data, registry=registry_path(path, master),
                secrets=SecretStore(secrets_dir))


def add_worker(spec_path: str | Path, name: str, platforms: list[str], max_builds: int = 1,
               os_name: str | None = None) -> Added:
    """Register a worker, generate its password into the secrets folder, write its bundle."""
    farm = open_farm(spec_path)
    farm.secrets.check()  # refuse a secrets folder others can read before writing anything
    with registry.locked(farm.registry):
        tables = registry.read_registry(farm.registry)
        _check_new(farm, tables, name, platforms)
        entry: dict[str, Any] = {"platforms": list(platforms), "max_builds": max_builds}
        spec = parse_spec(farm.data, farm.spec_path, registry={**tables, name: entry})
        entry["os"] = os_name or _os_of(spec, platforms)
        spec = parse_spec(farm.data, farm.spec_path, registry={**tables, name: entry})
        worker = spec.workers[name]
        secret = farm.secrets.path(worker_secret_name(name))
        bundle = farm.bundle_dir(name)
        if bundle.exists():
            raise SpecError(f"{farm.shown(bundle)}: already exists (left from an earlier worker?); "
                            "delete it, then add the worker again")
        files = render_bundle(spec, worker, farm.shown(secret), farm.shown(bundle))
        farm.secrets.generate(worker_secret_name(name))
        try:
            write_bundle(bundle, files)
            try:
                registry.write_registry(farm.registry, {**tables, name: entry})
            except BaseException:
                shutil.rmtree(bundle, ignore_errors=True)
                raise
        except BaseException:
            farm.secrets.remove(worker_secret_name(name))
            raise
    return Added(worker=name, os=worker_os(worker, spec), platforms=worker.platforms, secret=secret,
                 bundle=bundle, files=tuple(f.path for f in files))


def _check_new(farm: Farm, tables: dict[str, Any], name: str, platforms: list[str]) -> None:
    reason = unsafe_name_reason(name)
    if reason:
        raise SpecError(f"worker name '{name}' {reason}; e.g. linux-builder-2")
    if name in RESERVED:
        raise SpecError(f"worker name '{name}' is reserved for the master's own worker; pick another name")
    declared = farm.data.get("workers", {})
    if isinstance(declared, dict) and name in declared:
        raise SpecError(f"worker '{name}' already exists in {farm.spec_path.name} [workers.{name}]; pick "
                        "another name")
    if name in tables:
        raise SpecError(f"worker '{name}' already exists in {farm.shown(farm.registry)}; pick another name, "
                        f"or run: velofarm worker remove {name}")
    known = sorted(farm.data.get("platforms", {}))
    if not platforms:
        raise SpecError(f"give at least one --platform; this farm builds: {', '.join(known)}")
    for p in platforms:
        if p not in known:
            raise SpecError(f"--platform '{p}': not a platform of {farm.spec_path.name}{suggest(p, known)}; "
                            f"this farm builds: {', '.join(known)} (declare others under [platforms.NAME])")
    if len(set(platforms)) != len(platforms):
        raise SpecError("--platform: a platform is given twice; give each once")


def _os_of(spec: Spec, platforms: list[str]) -> str:
    # Without --os the platforms decide; a worker that would need two systems is two workers.
    systems = {p: spec.platforms[p].os for p in platforms}
    if len(set(systems.values())) > 1:
        listed = ", ".join(f"{p} ({o})" for p, o in systems.items())
        raise SpecError(f"--platform: {listed} build on different systems; one worker runs one OS: add "
                        "one worker per system")
    return next(iter(systems.values()))


def remove_worker(spec_path: str | Path, name: str) -> tuple[str, str]:
    """Unregister a registry worker, delete its password and bundle; returns (os, machine-side steps)."""
    farm = open_farm(spec_path)
    with registry.locked(farm.registry):
        tables = registry.read_registry(farm.registry)
        if name not in tables:
            declared = farm.data.get("workers", {})
            if isinstance(declared, dict) and name in declared:
                raise SpecError(f"worker '{name}' is declared in {farm.spec_path.name} [workers.{name}], "
                                f"not in {farm.shown(farm.registry)}; delete it there, then run "
                                "velofarm reconfig")
            listed = ", ".join(sorted(tables)) or "none"
            raise SpecError(f"no worker '{name}' in {farm.shown(farm.registry)}"
                            f"{suggest(name, sorted(tables))}; registered workers: {listed}")
        remaining = {k: v for k, v in tables.items() if k != name}
        try:
            parse_spec(farm.data, farm.spec_path, registry=remaining)
        except SpecError as exc:
            raise SpecError(f"cannot remove worker '{name}': without it, {exc}") from None
        entry = tables[name]
        registry.write_registry(farm.registry, remaining)
    farm.secrets.remove(worker_secret_name(name))
    shutil.rmtree(farm.bundle_dir(name), ignore_errors=True)
    os_name = str(entry.get("os") or "linux")
    return os_name, removal_steps(os_name, name)


def rotate_worker(spec_path: str | Path, name: str) -> Path:
    """A new password for a worker (farm.toml's or the registry's); the old one lasts until reconfig."""
    spec = load_spec(spec_path)
    if name not in spec.workers:
        raise SpecError(f"no worker '{name}' in {spec.path.name} or its registry"
                        f"{suggest(name, sorted(spec.workers))}; workers: {', '.join(sorted(spec.workers))}")
    store = open_farm(spec.path).secrets
    store.check()
    store.generate(worker_secret_name(name))
    return store.path(worker_secret_name(name))
