"""The master on PostgreSQL: db_url from the secrets folder, psycopg2, a full release."""

from __future__ import annotations

import os
import secrets
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FARM_TOML, IN_CI, REPO, need

from velofarm.buildmaster.config import db_url, with_postgres_driver
from velofarm.secretstore import SecretStore
from velofarm.spec import tomlwrite
from velofarm.spec.farm import load_spec


def test_postgres_urls_get_the_psycopg2_driver() -> None:
    # SQLAlchemy 2.1 made psycopg (3) the default for postgresql://; velofarm ships psycopg2.
    assert with_postgres_driver("postgresql://u:p@db:5432/bb") == "postgresql+psycopg2://u:p@db:5432/bb"
    assert with_postgres_driver("postgres://u:p@db/bb") == "postgresql+psycopg2://u:p@db/bb"
    for url in ("postgresql+psycopg2://u@db/bb", "sqlite:///state.sqlite", "mysql://u@db/bb"):
        assert with_postgres_driver(url) == url


def test_db_url_comes_from_the_secrets_folder(tmp_path: Path) -> None:
    data = tomllib.loads(FARM_TOML.read_text())
    data["master"].pop("db_url")
    data["master"]["db_url_secret"] = "db_url"
    (tmp_path / "farm.toml").write_text(tomlwrite.dumps(data))
    spec = load_spec(tmp_path / "farm.toml")
    store = SecretStore(tmp_path / "secrets")
    with pytest.raises(ValueError, match="secret 'db_url' is missing from .*write the database URL there"):
        db_url(spec, store)
    store.put("db_url", "postgresql://velofarm:s3cret@127.0.0.1:5432/velofarm")
    assert db_url(spec, store) == "postgresql+psycopg2://velofarm:s3cret@127.0.0.1:5432/velofarm"


def _psql(sql: str) -> str:
    """Run SQL as the postgres superuser (the SQL goes on stdin: no password on a command line)."""
    out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-tA", "-f", "-"],
                         input=sql, capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr.strip()}")
    return out.stdout


def _running_cluster() -> int:
    """Start Debian's cluster if it is down; return its port."""
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in clusters.splitlines() if line.strip()]
    if not rows:
        pytest.fail("postgresql is installed but has no cluster: run pg_createcluster --start VERSION main")
    version, name, port, status = rows[0][:4]
    if status != "online":
        subprocess.run(["pg_ctlcluster", version, name, "start"], check=True, timeout=120)
    subprocess.run(["pg_isready", "-q", "-t", "60", "-h", "127.0.0.1", "-p", port], check=True, timeout=90)
    return int(port)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh role and database on the local PostgreSQL server, dropped afterwards."""
    need("pg_ctlcluster", "postgresql")
    need("psql", "postgresql-client")
    if os.geteuid() != 0:
        message = "the PostgreSQL fixture runs psql as the postgres user, which needs root"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    port = _running_cluster()
    name = f"velofarm_test_{os.getpid()}_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    _psql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}';\nCREATE DATABASE {name} OWNER {name};\n")
    try:
        yield f"postgresql://{name}:{password}@127.0.0.1:{port}/{name}"
    finally:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);\nDROP ROLE IF EXISTS {name};\n")


@pytest.mark.integration
@pytest.mark.postgres
def test_full_release_with_the_master_on_postgres(postgres_url: str, make_farm) -> None:  # type: ignore[no-untyped-def]
    import psycopg2

    farm = make_farm(["linux-x86_64"], name="pg")
    data = tomllib.loads(farm.spec_path.read_text())
    data["master"].pop("db_url")
    data["master"]["db_url_secret"] = "db_url"
    farm.spec_path.write_text(tomlwrite.dumps(data))
    farm.secrets.put("db_url", postgres_url)
    assert postgres_url.split("@")[0] not in farm.spec_path.read_text()
    farm.init_repo()
    farm.start_all()
    farm.push_tag("v0.1.0")
    release = farm.wait_release(1)
    assert release["results"] == 0, release["state_string"]
    assert (farm.root / "releases" / "v0.1.0" / "SHA256SUMS").is_file()
    assert not (farm.master_dir / "state.sqlite").exists()
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT b.name, count(*) FROM builds JOIN builders b ON b.id = builds.builderid "
                    "WHERE builds.results = 0 GROUP BY b.name ORDER BY b.name")
        assert cur.fetchall() == [("build-linux-x86_64", 1), ("release", 1)]
    conn.close()

    # deploy/backup.sh dumps this database (the URL from the secrets folder) and the artifacts.
    pg_restore = need("pg_restore", "postgresql-client")
    out = subprocess.run(["bash", str(REPO / "deploy" / "backup.sh"), str(farm.root), str(farm.root / "backups")],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    dump = next((farm.root / "backups").glob("velofarm-db-*.dump"))
    listing = subprocess.run([pg_restore, "--list", str(dump)], capture_output=True, text=True, check=True).stdout
    assert "TABLE DATA public builds" in listing
    assert next((farm.root / "backups").glob("velofarm-artifacts-*.tar.gz")).stat().st_size > 0
