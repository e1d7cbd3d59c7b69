"""Worker folders whose password lives in a 0600 file, never on a command line or in buildbot.tac."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from velofarm.secretstore import write_private_file

PASSWORD_FILE = "worker.password"
PLACEHOLDER = "read-from-worker.password"
WORKER_CMD = [sys.executable, "-c", "import sys; from buildbot_worker.scripts.runner import run; sys.exit(run())"]
PASSWD_LINE = re.compile(r"^passwd = .*$", re.MULTILINE)
READ_FILE = ("passwd = open(os.path.join(basedir, %r), encoding='utf-8').read().strip()"
             "  # velofarm: the password stays in a 0600 file" % PASSWORD_FILE)


def write_password(directory: Path, password: str) -> Path:
    return write_private_file(directory / PASSWORD_FILE, password + "\n")


def bind_password_file(tac: Path) -> None:
    """Make buildbot.tac read its password from worker.password beside it."""
    text = tac.read_text(encoding="utf-8")
    if READ_FILE not in text:
        text, count = PASSWD_LINE.subn(READ_FILE.replace("\\", "\\\\"), text, count=1)
        if count != 1:
            raise RuntimeError(f"{tac}: no 'passwd = ...' line; was it made by buildbot-worker create-worker?")
        tac.write_text(text, encoding="utf-8")


def create_worker_dir(directory: Path, master: str, name: str, password: str,
                      worker_cmd: list[str] | None = None) -> Path:
    """buildbot-worker create-worker without the password on its command line."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([*(worker_cmd or WORKER_CMD), "create-worker", "--quiet", "--umask=0o22", str(directory),
                    master, name, PLACEHOLDER], check=True, timeout=120)
    bind_password_file(directory / "buildbot.tac")
    write_password(directory, password)
    return directory
