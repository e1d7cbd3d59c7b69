"""Create a master base directory bound to one farm.toml (for the demo, tests and new farms)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from velofarm.errors import VelofarmError

TAC = '''# A velofarm master, configured from {spec}
import os

from buildbot.master import BuildMaster
from twisted.application import service
from twisted.python.log import FileLogObserver, ILogObserver
from twisted.python.logfile import LogFile

basedir = os.path.abspath(os.path.dirname(__file__))
application = service.Application('buildmaster')
logfile = LogFile.fromFullPath(os.path.join(basedir, "twistd.log"), rotateLength=10000000, maxRotatedFiles=10)
application.setComponent(ILogObserver, FileLogObserver(logfile).emit)
m = BuildMaster(basedir, "master.cfg", 0o022)
m.setServiceParent(application)
'''

CFG = '''# velofarm master: everything comes from farm.toml through the velofarm package.
from velofarm.buildmaster.config import load_master_config

BuildmasterConfig = load_master_config(basedir, {spec!r})  # noqa: F821 (Buildbot provides basedir)
'''


def buildbot_command() -> list[str]:
    """`buildbot` from the interpreter running velofarm (works inside and outside a venv)."""
    return [sys.executable, "-c", "import sys; from buildbot.scripts.runner import run; sys.exit(run())"]


def create_master(directory: Path, spec_path: Path) -> Path:
    """Write buildbot.tac and master.cfg for `spec_path` and create/upgrade the master's database."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = str(spec_path.resolve())
    (directory / "buildbot.tac").write_text(TAC.format(spec=spec), encoding="utf-8")
    (directory / "master.cfg").write_text(CFG.format(spec=spec), encoding="utf-8")
    out = subprocess.run([*buildbot_command(), "upgrade-master", "--quiet", str(directory)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise VelofarmError(f"{directory}: buildbot could not load the configuration for {spec}:\n"
                            + (out.stdout + out.stderr).strip()[-3000:])
    return directory
