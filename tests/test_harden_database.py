"""The master's PostgreSQL database unreachable for a few seconds while a release builds.

A database of its own (created and dropped here): every connection the master holds is
terminated, as a server restart does ("terminating connection due to administrator command"), and
new ones are refused for a while; then the database comes back. The release must complete and be
published whole (Buildbot 4.3 alone left the release and its build "building" for ever: see
velofarm/buildmaster/dbfix.py).
Other databases on the server are not touched, so other tests using it are not disturbed.
"""

from __future__ import annotations

import threading
import time
import tomllib
from pathlib import Path
from typing import Any, Callable

import pytest
from support.farmtools import steps
from test_postgres import _psql, postgres_url  # noqa: F401  (the fixture)

from velofarm.cli.localfarm import LocalFarm
from velofarm.cli.main import main
from velofarm.spec import tomlwrite

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
TAG = "v0.1.0"
AWAY = 8  # seconds the database refuses connections


def database_away(name: str, seconds: float, cut: threading.Event | None = None) -> None:
    """Cut every connection to `name` and refuse new ones for `seconds`, then let them in again."""
    _psql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false;\n"
          f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{name}';\n")
    if cut is not None:
        cut.set()
    try:
        time.sleep(seconds)
    finally:
        _psql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true;\n")


def test_lost_connections_are_told_from_other_errors() -> None:
    from velofarm.buildmaster.dbfix import connection_lost
    for text in ("terminating connection due to administrator command",
                 "server closed the connection unexpectedly\n\tThis probably means the server terminated",
                 "SSL connection has been closed unexpectedly",
                 'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
                 'FATAL:  database "x" is not currently accepting connections',
                 "FATAL:  the database system is starting up"):
        assert connection_lost(Exception(text)), text
    for text in ('relation "builds" does not exist', "duplicate key value violates unique constraint"):
        assert not connection_lost(Exception(text)), text


def test_buildbots_engine_rides_out_a_database_restart(postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    """The engine Buildbot builds for the master (with velofarm's strategy): its pooled connection
    is cut, and the database refuses connections for 2 s; the next query still answers."""
    import sqlalchemy as sa
    from buildbot.db import enginestrategy

    from velofarm.buildmaster import dbfix
    from velofarm.buildmaster.config import with_postgres_driver

    dbfix.install()
    engine = enginestrategy.create_engine(with_postgres_driver(postgres_url), basedir=str(tmp_path))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1  # the pool now holds a connection
        name = postgres_url.rsplit("/", 1)[1]
        cut = threading.Event()
        away = threading.Thread(target=database_away, args=(name, 2, cut))
        away.start()
        assert cut.wait(60)  # the pooled connection is cut and new ones are refused
        with engine.connect() as conn:  # waits for the database, then gets a fresh connection
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        away.join()
        lost = sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        assert engine.should_retry(lost)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def running_step(farm: LocalFarm, builder: str, name: str) -> dict[str, Any] | None:
    for build in farm.builds(builder):
        for step in steps(farm, build["buildid"]):
            if step["name"] == name and step["started_at"] and not step["complete"]:
                return step
    return None


def test_the_database_away_during_a_build_the_release_still_completes_whole(postgres_url: str,  # noqa: F811
                                                               make_farm: Callable[..., LocalFarm]) -> None:
    farm = make_farm(["linux-x86_64"], name="pgfault")
    data = tomllib.loads(farm.spec_path.read_text())
    data["master"].pop("db_url")
    data["master"]["db_url_secret"] = "db_url"
    farm.spec_path.write_text(tomlwrite.dumps(data))
    farm.secrets.put("db_url", postgres_url)
    name = postgres_url.rsplit("/", 1)[1]
    farm.init_repo()
    farm.start_all()
    farm.push_tag(TAG)
    farm.wait(lambda: running_step(farm, "build-linux-x86_64", "cargo build"), 600, "cargo build to run")
    database_away(name, AWAY)

    def ended() -> dict[str, Any] | None:
        builds = [b for b in farm.builds("release") if b["complete"] and b["results"] != 5]  # 5: RETRY
        return builds[-1] if builds else None
    try:
        release = farm.wait(ended, 900, "the release to end after the database came back")
    except TimeoutError as exc:
        log = (farm.master_dir / "twistd.log").read_text(errors="replace").splitlines()[-60:]
        raise AssertionError(f"{exc}: the master wedged\n" + "\n".join(log)) from None
    folder = farm.root / "releases" / TAG
    assert release["results"] == 0, release["state_string"]  # completed, not just failed cleanly
    assert release["number"] == 1 and len(farm.builds("build-linux-x86_64")) == 1  # no retry was needed
    assert main(["verify", str(folder), "--keys", str(farm.root / "keys")]) == 0  # published whole
    assert [p.name for p in (farm.root / "releases").iterdir()] == [TAG]  # and once, no temporary folder
    log = (farm.master_dir / "twistd.log").read_text(errors="replace")
    assert "velofarm: the database does not answer" in log  # the cut was felt, and waited out
