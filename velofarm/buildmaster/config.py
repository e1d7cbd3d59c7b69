"""farm.toml → BuildmasterConfig. master.cfg calls `load_master_config` and nothing else."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from buildbot.plugins import secrets, util
from twisted.python import log

from velofarm.buildmaster import dbfix, restfix
from velofarm.buildmaster.changes import change_sources
from velofarm.buildmaster.factories import platform_factory, release_factory
from velofarm.buildmaster.farmplan import (
    CHANGE_SECRET,
    COORDINATOR,
    RELEASE_BUILDER,
    buildbot_worker_names,
    platform_builders,
)
from velofarm.buildmaster.logcap import LOG_MAX_SIZE, LOG_MAX_TAIL_SIZE, LogCap
from velofarm.buildmaster.privacy import make_private, privacy_report
from velofarm.buildmaster.schedulers import all_schedulers
from velofarm.buildmaster.uploads import upload_service
from velofarm.buildmaster.webhook import WebhookService
from velofarm.buildmaster.workers import all_workers, other_worker_than
from velofarm.buildmaster.www import WEBHOOK_SECRET, www_config
from velofarm.release.authenticode import Authenticode, authenticode_signer
from velofarm.secretstore import SecretStore
from velofarm.spec.farm import Spec, load_spec

TLS_CERT, TLS_KEY = "master-tls.crt", "master-tls.key"


def spec_path_for(basedir: Path, spec_path: str | Path | None) -> Path:
    """The spec given, else VELOFARM_SPEC, else the farm.toml beside the master folder (the checkout's layout)."""
    return Path(spec_path or os.environ.get("VELOFARM_SPEC") or basedir.parent / "farm.toml")


def secrets_dir(spec: Spec) -> Path:
    return spec.resolve(spec.master.secrets_dir)


def authenticode_signer_for(spec: Spec) -> Authenticode | None:
    """The Authenticode signer when any platform asks for it; refused at config load (before any
    build starts) when its certificate or key is missing or the key is readable by others."""
    if not any(p.authenticode for p in spec.platforms.values()):
        return None
    return authenticode_signer(secrets_dir(spec), spec.project.title)


def builders(spec: Spec, basedir: Path) -> list[Any]:
    artifacts = basedir / spec.master.artifacts_dir
    signer = authenticode_signer_for(spec)
    twice = spec.release.reproduce > 1  # each platform's two builders prefer different workers
    result = [
        util.BuilderConfig(name=b.name, workernames=[n for w in spec.workers_for(b.platform.name)
                                        for n in buildbot_worker_names(w)],
                           factory=platform_factory(spec, b.platform, artifacts, b.again,
                                                    signer if b.platform.authenticode else None),
                           collapseRequests=False,
                           nextWorker=other_worker_than(b.platform.builder_name, b.name) if twice else None,
                           tags=b.platform.builder_tags,
                           description=f"{b.platform.target} ({b.platform.method}, built on {b.platform.os})"
                           + (", second build for the reproducibility check" if b.again else ""),
                           properties={"platform": b.platform.name, "target": b.platform.target})
        for b in platform_builders(spec)
    ]
    result.append(util.BuilderConfig(name=RELEASE_BUILDER, workernames=[COORDINATOR], collapseRequests=False,
                                     factory=release_factory(spec, artifacts, basedir / "staging"),
                                     tags=["release"], description="builds every platform, verifies, publishes"))
    return result


def services(spec: Spec, store: SecretStore, basedir: Path | None = None) -> list[Any]:
    """Extra services in the master process: the upload receiver, the log cap, the signed webhook endpoint."""
    artifacts = basedir / spec.master.artifacts_dir if basedir else None
    tls = tls_files(store) if spec.master.pb_tls else None
    result: list[Any] = [upload_service(spec, artifacts, tls), LogCap()]  # workers PUT archives here (uploads.py)
    if spec.master.webhook_port:
        secret = store.get(WEBHOOK_SECRET)
        if not secret:
            raise ValueError(f"farm.toml: master.webhook_port is set but the secret '{WEBHOOK_SECRET}' is missing "
                             f"from {store.directory}; write the webhook secret there (mode 0600)")
        result.append(WebhookService(
            port=f"tcp:{spec.master.webhook_port}:interface={spec.master.www_bind}",
            secret=secret, repository=spec.repo_url))
    return result


def pb_endpoint(spec: Spec, store: SecretStore) -> str:
    """The PB port: plain TCP, or TLS with the certificate and key from the secrets folder."""
    where = f"tcp:{spec.master.pb_port}:interface={spec.master.pb_bind}"
    if not spec.master.pb_tls:
        return where
    cert, key = tls_files(store)
    return (f"ssl:{spec.master.pb_port}:interface={spec.master.pb_bind}"
            f":privateKey={_escape(key)}:certKey={_escape(cert)}")


def tls_files(store: SecretStore) -> tuple[Path, Path]:
    """The master's certificate and key (pb_tls = true), each checked to be there and private."""
    files = store.path(TLS_CERT), store.path(TLS_KEY)
    for path in files:
        if not path.is_file():
            raise ValueError(f"farm.toml: master.pb_tls is true but {path} is missing: put the master's "
                             f"certificate ({TLS_CERT}, PEM, naming public_host) and key ({TLS_KEY}) there, "
                             "mode 0600")
    store.check()
    return files


def _escape(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace(":", "\\:")  # endpoint strings split on ':'


def db_url(spec: Spec, store: SecretStore) -> str:
    if spec.master.db_url_secret:
        url = store.get(spec.master.db_url_secret)
        if not url:
            raise ValueError(f"farm.toml: master.db_url_secret: secret '{spec.master.db_url_secret}' is missing "
                             f"from {store.directory}; write the database URL there (mode 0600)")
        return with_postgres_driver(url)
    return with_postgres_driver(spec.master.db_url)


def with_postgres_driver(url: str) -> str:
    """postgresql://... → postgresql+psycopg2://...: SQLAlchemy 2.1 made psycopg 3 the default
    driver, and velofarm ships psycopg2 (the `postgres` extra) as Buildbot 4.3 documents."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


class SecretsFolder(secrets.SecretInAFile):
    """SecretInAFile that reads a secret's file each time the secret is asked for.

    SecretInAFile loads the folder only when it is configured, and Buildbot reconfigures the
    workers before the secret providers (a provider only when its arguments change): a worker
    added, or a password rotated, while the master runs would stay unknown or old until a restart.
    """

    def get(self, entry: str) -> str | None:
        if not entry or os.sep in entry or entry.startswith("."):
            return None
        path = os.path.join(self._dirname, entry)
        if not os.path.isfile(path):
            return None
        self.checkFileIsReadOnly(self._dirname, entry)
        with open(path, encoding="utf-8") as fh:
            return fh.read().rstrip("\r\n")


def load_master_config(basedir: str | Path, spec_path: str | Path | None = None) -> dict[str, Any]:
    """The whole BuildmasterConfig for the master in `basedir`."""
    basedir = Path(basedir).resolve()
    # Before anything else is written: an older buildbot.tac may still pass umask 022.
    report = privacy_report(basedir, make_private(basedir))
    if report:
        log.msg(report)
    restfix.install()
    dbfix.install()  # PostgreSQL: survive a server restart (Buildbot retries only MySQL's lost connections)
    spec = load_spec(spec_path_for(basedir, spec_path))
    store = SecretStore(secrets_dir(spec))
    store.ensure()  # a fresh checkout has no secrets folder yet; it is created 0700
    c: dict[str, Any] = {
        "title": spec.project.title,
        "titleURL": spec.master.url,
        "buildbotURL": spec.master.url,
        "buildbotNetUsageData": None,
        "protocols": {"pb": {"port": pb_endpoint(spec, store)}},
        "db": {"db_url": db_url(spec, store)},
        "secretsProviders": [SecretsFolder(dirname=str(store.directory))],
        "workers": all_workers(spec, str(store.directory)),
        "builders": builders(spec, basedir),
        "schedulers": all_schedulers(spec),
        "change_source": change_sources(spec, store.get(CHANGE_SECRET), basedir / "gitpoller"),
        "www": www_config(spec, store, basedir / spec.master.artifacts_dir),
        "services": services(spec, store, basedir),
        # Buildbot 4.3 accepts these but no longer applies them; LogCap (logcap.py) does.
        "logMaxSize": LOG_MAX_SIZE,
        "logMaxTailSize": LOG_MAX_TAIL_SIZE,
        "collapseRequests": False,
        "properties": {"velofarm_spec": str(spec.path)},
    }
    return c
