"""Finding 11: the Windows bootstrap locks the whole worker folder (there is no Windows here, so
the script's text and its ACL commands are checked)."""

from __future__ import annotations

import re
from pathlib import Path

from test_onboarding import farm, powershell_commands  # noqa: F401 (the fixture)

from velofarm.onboard.manage import add_worker

USER = "${env:USERDOMAIN}\\${env:USERNAME}"
ADMINISTRATORS = "*S-1-5-32-544"
BROAD = ("*S-1-5-11", "*S-1-5-32-545", "*S-1-1-0")  # Authenticated Users, Users, Everyone


def script(farm: Path) -> list[str]:  # noqa: F811
    added = add_worker(farm, "win-acl", ["windows-x86_64-msvc"])
    return powershell_commands((added.bundle / "bootstrap.ps1").read_text())


def icacls_args(line: str) -> list[str]:
    inner = line.split("@(", 1)[1].rsplit(")", 1)[0]
    return [a.strip().strip('"') for a in inner.split(",")]


def test_the_worker_folder_is_locked_before_anything_is_written(farm: Path) -> None:  # noqa: F811
    lines = script(farm)
    locks = [i for i, line in enumerate(lines) if line.startswith('Invoke-Checked "icacls.exe" @($Dir,')]
    assert len(locks) == 2, lines
    grant, remove = (icacls_args(lines[i]) for i in locks)
    assert grant == ["$Dir", "/inheritance:r", "/grant:r", f"{USER}:(OI)(CI)F", "/grant:r",
                     f"{ADMINISTRATORS}:(OI)(CI)F", "/T", "/C", "/Q"]
    assert remove == ["$Dir", "/remove:g", *BROAD, "/T", "/C", "/Q"]
    created = lines.index("New-Item -ItemType Directory -Force -Path $Dir | Out-Null")
    first_write = min(i for i, line in enumerate(lines)
                      if "venv" in line and "Invoke-Checked" in line or "create-worker" in line)
    assert created < locks[0] < locks[1] < first_write


def test_no_acl_command_grants_anyone_else(farm: Path) -> None:  # noqa: F811
    for line in script(farm):
        if "icacls" not in line:
            continue
        args = icacls_args(line)
        grants = [args[i + 1] for i, a in enumerate(args) if a.startswith("/grant")]
        assert all(re.match(r"^(\$\{env:USERDOMAIN\}\\\$\{env:USERNAME\}|\*S-1-5-32-544):", g)
                              for g in grants), line
        assert ("/inheritance:r" in args and grants) or "/remove:g" in args, line
