"""farm.toml → BuildmasterConfig. master.cfg calls `load_master_config` and nothing else."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from buildbot.plugins import secrets, util

from velofarm.buildmaster.changes import CHANGE_USER, change_sources
from velofarm.buildmaster.factories import platform_factory, release_factory
from velofarm.buildmaster.schedulers import RELEASE_BUILDER, all_schedulers
from velofarm.buildmaster.workers import COORDINATOR, all_workers
from velofarm.buildmaster.www import www_config
from velofarm.secretstore import SecretStore
from velofarm.spec import Spec, load_spec

CHANGE_SECRET = "change-source-password"


def spec_path_for(basedir: Path, spec_path: str | Path | None) -> Path:
    """The spec given, else VELOFARM_SPEC, else the farm.toml beside the master folder (the checkout's layout)."""
    return Path(spec_path or os.environ.get("VELOFARM_SPEC") or basedir.parent / "farm.toml")


def secrets_dir(spec: Spec) -> Path:
    return spec.resolve(spec.master.secrets_dir)


def builders(spec: Spec, basedir: Path) -> list[Any]:
    artifacts = basedir / spec.master.artifacts_dir
    result = [
        util.BuilderConfig(name=p.builder_name, workernames=[w.name for w in spec.workers_for(p.name)],
                           factory=platform_factory(spec, p, artifacts), collapseRequests=False,
                           tags=["platform", p.os], description=f"{p.target} ({p.method})",
                           properties={"platform": p.name, "target": p.target})
        for p in spec.platforms.values()
    ]
    result.append(util.BuilderConfig(name=RELEASE_BUILDER, workernames=[COORDINATOR], collapseRequests=False,
                                     factory=release_factory(spec, artifacts, basedir / "staging"),
                                     tags=["release"], description="builds every platform, verifies, publishes"))
    return result


def db_url(spec: Spec, store: SecretStore) -> str:
    if spec.master.db_url_secret:
        url = store.get(spec.master.db_url_secret)
        if not url:
            raise ValueError(f"farm.toml: master.db_url_secret: secret '{spec.master.db_url_secret}' is missing "
                             f"from {store.directory}; write the database URL there (mode 0600)")
        return url
    return spec.master.db_url


def load_master_config(basedir: str | Path, spec_path: str | Path | None = None) -> dict[str, Any]:
    """The whole BuildmasterConfig for the master in `basedir`."""
    basedir = Path(basedir).resolve()
    spec = load_spec(spec_path_for(basedir, spec_path))
    store = SecretStore(secrets_dir(spec))
    store.check()
    c: dict[str, Any] = {
        "title": spec.project.title,
        "titleURL": spec.master.url,
        "buildbotURL": spec.master.url,
        "buildbotNetUsageData": None,
        "protocols": {"pb": {"port": f"tcp:{spec.master.pb_port}:interface={spec.master.www_bind}"
                             if spec.master.www_bind in ("127.0.0.1", "::1") else spec.master.pb_port}},
        "db": {"db_url": db_url(spec, store)},
        "secretsProviders": [secrets.SecretInAFile(dirname=str(store.directory))],
        "workers": all_workers(spec),
        "builders": builders(spec, basedir),
        "schedulers": all_schedulers(spec),
        "change_source": change_sources(spec, store.get(CHANGE_SECRET), basedir / "gitpoller"),
        "www": www_config(spec, store),
        "collapseRequests": False,
        "properties": {"velofarm_spec": str(spec.path)},
    }
    return c
