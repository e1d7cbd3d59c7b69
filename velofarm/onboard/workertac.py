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


CA_DIR = "master-ca"  # in the worker folder: ca.pem, the CA that signed the master's certificate
HOST_LINES = re.compile(r"^buildmaster_host = .*\nport = .*\nconnection_string = .*$", re.MULTILINE)


def tls_connection_string(master: str, ca_dir: Path) -> str:
    """Twisted's TLS client endpoint: the master's certificate must be signed by a CA in `ca_dir`
    and name the host (`master` is HOST:PORT)."""
    host, _, port = master.rpartition(":")
    escaped = str(ca_dir).replace("\\", "\\\\").replace(":", "\\:")
    return f"tls:host={host}:port={port}:trustRoots={escaped}"


def bind_tls(tac: Path, master: str, ca_pem: str) -> None:
    """Make the worker connect over TLS, trusting only `ca_pem` (pb_tls = true on the master)."""
    ca_dir = tac.parent / CA_DIR
    ca_dir.mkdir(exist_ok=True)
    (ca_dir / "ca.pem").write_text(ca_pem, encoding="utf-8")
    lines = (f"buildmaster_host = None\nport = None\n"
             f"connection_string = {tls_connection_string(master, ca_dir.resolve())!r}  # velofarm: TLS")
    text, count = HOST_LINES.subn(lines.replace("\\", "\\\\"), tac.read_text(encoding="utf-8"), count=1)
    if count != 1:
        raise RuntimeError(f"{tac}: no buildmaster_host/port/connection_string lines; was it made by create-worker?")
    tac.write_text(text, encoding="utf-8")


def create_worker_dir(directory: Path, master: str, name: str, password: str,
                      worker_cmd: list[str] | None = None, ca_pem: str | None = None) -> Path:
    """buildbot-worker create-worker without the password on its command line; over TLS when
    given the CA that signed the master's certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([*(worker_cmd or WORKER_CMD), "create-worker", "--quiet", "--umask=0o22", str(directory),
                    master, name, PLACEHOLDER], check=True, timeout=120)
    bind_password_file(directory / "buildbot.tac")
    if ca_pem:
        bind_tls(directory / "buildbot.tac", master, ca_pem)
    write_password(directory, password)
    return directory
