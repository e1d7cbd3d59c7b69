"""Onboarding bundles: what `worker add` writes, what its bootstrap does, and one worker end to end."""

from __future__ import annotations

import json
import plistlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FARM_TOML, need

from velofarm.onboard import workertac
from velofarm.onboard.manage import Added, add_worker
from velofarm.onboard.status import render_table, worker_states
from velofarm.spec.farm import load_spec
from velofarm.spec.job import build_job
from velofarm.worker_tools import preflight

PROJECT_VENV = Path(sys.prefix)  # holds buildbot-worker at the master's version: --venv skips pip
VERSION = "4.3.0"


@pytest.fixture
def farm(tmp_path: Path) -> Path:
    spec = tmp_path / "farm.toml"
    text = FARM_TOML.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^public_host = .*$', 'public_host = "builds.example.com"', text)
    assert 'public_host = "builds.example.com"' in text
    spec.write_text(text, encoding="utf-8")
    return spec


def bootstrap(added: Added, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    script = added.bundle / "bootstrap.sh"
    out = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=300, check=False)
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_linux_bundle_holds_what_the_machine_needs_and_no_password(farm: Path) -> None:
    added = add_worker(farm, "lin-2", ["linux-x86_64", "windows-x86_64-gnu"], max_builds=2)
    assert sorted(added.files) == ["README.md", "bootstrap.sh", "toolchain/linux-x86_64.json",
                                   "toolchain/preflight.py", "toolchain/windows-x86_64-gnu.json"]
    script = (added.bundle / "bootstrap.sh").read_text()
    assert 'MASTER="builds.example.com:9989"' in script and 'NAME="lin-2"' in script
    assert f'VERSION="{VERSION}"' in script and '"buildbot-worker==$VERSION"' in script
    assert subprocess.run(["bash", "-n", str(added.bundle / "bootstrap.sh")], check=False).returncode == 0
    assert (added.bundle / "bootstrap.sh").stat().st_mode & 0o111
    spec = load_spec(farm)
    for name in ("linux-x86_64", "windows-x86_64-gnu"):
        job = json.loads((added.bundle / "toolchain" / f"{name}.json").read_text())
        assert job == build_job(spec, spec.platforms[name])
    assert (added.bundle / "toolchain" / "preflight.py").read_text() == Path(preflight.__file__).read_text()
    readme = (added.bundle / "README.md").read_text()
    for text in ("bash velofarm-lin-2/bootstrap.sh --password-file ~/velofarm-lin-2.password",
                 "velofarm worker list", "worker is ready", "velofarm worker remove lin-2",
                 "sudo systemctl disable --now velofarm-worker-lin-2.service", "scp secrets/worker-lin-2"):
        assert text in readme
    password = added.secret.read_text().strip()
    assert all(password not in p.read_text() for p in added.bundle.rglob("*") if p.is_file())


def test_bootstrap_refuses_a_missing_or_empty_password_file(farm: Path, tmp_path: Path) -> None:
    added = add_worker(farm, "lin-2", ["linux-x86_64"])
    out = bootstrap(added, "--dir", str(tmp_path / "m"), check=False)
    assert out.returncode != 0 and "--password-file FILE is required" in out.stderr
    (tmp_path / "empty").write_text("")
    out = bootstrap(added, "--password-file", str(tmp_path / "empty"), check=False)
    assert out.returncode != 0 and "missing, unreadable or empty" in out.stderr
    assert not (tmp_path / "m").exists()


def test_linux_bootstrap_binds_the_password_file_and_writes_a_valid_unit(farm: Path, tmp_path: Path) -> None:
    added = add_worker(farm, "lin-2", ["linux-x86_64"])
    machine = tmp_path / "machine"
    out = bootstrap(added, "--password-file", str(added.secret), "--dir", str(machine),
                    "--venv", str(PROJECT_VENV), "--no-service")
    assert "toolchain for platform linux-x86_64" in out.stdout
    tac = (machine / "worker" / "buildbot.tac").read_text()
    assert workertac.READ_FILE in tac
    assert "buildmaster_host = 'builds.example.com'" in tac and "port = 9989" in tac
    assert "workername = 'lin-2'" in tac and added.secret.read_text().strip() not in tac
    copy = machine / "worker" / "worker.password"
    assert copy.read_text() == added.secret.read_text() and copy.stat().st_mode & 0o777 == 0o600
    unit = machine / "velofarm-worker-lin-2.service"
    text = unit.read_text()
    assert f"ExecStart={PROJECT_VENV}/bin/buildbot-worker start --nodaemon {machine}/worker" in text
    assert "Restart=always" in text and "WantedBy=multi-user.target" in text
    analyze = need("systemd-analyze", "systemd")
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    assert verify.returncode == 0, verify.stderr

    # A second run (after `worker rotate`) replaces the worker's copy and keeps the folder.
    new = tmp_path / "new.password"
    new.write_text("a-new-password\n")
    out = bootstrap(added, "--password-file", str(new), "--dir", str(machine), "--venv", str(PROJECT_VENV),
                    "--no-service")
    assert "keeping the worker folder" in out.stdout
    assert copy.read_text() == "a-new-password\n"
    assert (machine / "worker" / "buildbot.tac").read_text() == tac


def test_macos_bootstrap_writes_a_valid_launchd_plist(farm: Path, tmp_path: Path) -> None:
    added = add_worker(farm, "mac-2", ["macos-arm64"])
    machine = tmp_path / "mac"
    bootstrap(added, "--password-file", str(added.secret), "--dir", str(machine),
              "--venv", str(PROJECT_VENV), "--no-service")
    with open(machine / "net.velofarm.worker.mac-2.plist", "rb") as fh:
        plist = plistlib.load(fh)
    assert plist["Label"] == "net.velofarm.worker.mac-2"
    assert plist["ProgramArguments"] == [f"{PROJECT_VENV}/bin/buildbot-worker", "start", "--nodaemon",
                                         f"{machine}/worker"]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] is True and plist["UserName"]
    assert plist["EnvironmentVariables"]["PATH"].split(":")[0].endswith("/.cargo/bin")
    readme = (added.bundle / "README.md").read_text()
    assert "sudo launchctl bootout system/net.velofarm.worker.mac-2" in readme


def powershell_commands(text: str) -> list[str]:
    """The script's statements, without comments, blank lines and leading indentation."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_powershell_bootstrap_runs_the_expected_commands(farm: Path) -> None:
    added = add_worker(farm, "win-2", ["windows-x86_64-msvc"])
    assert added.os == "windows" and "bootstrap.ps1" in added.files
    text = (added.bundle / "bootstrap.ps1").read_text()
    assert text.isascii()  # Windows PowerShell 5.1 reads a file without a BOM as the ANSI code page
    expected = [
        '$Name = "win-2"',
        '$Master = "builds.example.com:9989"',
        f'$Version = "{VERSION}"',
        '$Platforms = @("windows-x86_64-msvc")',
        'Invoke-Checked $Python @("-m", "venv", $Venv)',
        ('Invoke-Checked (Join-Path $Venv "Scripts\\python.exe") (@("-m", "pip", "install", "--quiet", '
         '"--disable-pip-version-check") + $PipList + @("buildbot-worker==$Version") + $TlsPackages)'),
        ('Invoke-Checked (Join-Path $Venv "Scripts\\buildbot-worker.exe") @("create-worker", "--quiet", $Worker, '
         f'$Master, $Name, "{workertac.PLACEHOLDER}")'),
        "$ReadFile = '" + workertac.READ_FILE.replace("'", "''") + "'",
        "[System.IO.File]::WriteAllText($Tac, $Text, (New-Object System.Text.UTF8Encoding $false))",
        "Copy-Item -LiteralPath $PasswordFile -Destination $PasswordCopy -Force",
        ('Invoke-Checked "icacls.exe" @($PasswordCopy, "/inheritance:r", "/grant:r", '
         '"${env:USERDOMAIN}\\${env:USERNAME}:(R,W)", "/grant:r", "*S-1-5-32-544:(F)")'),
        ('$Action = New-ScheduledTaskAction -Execute (Join-Path $Venv "Scripts\\buildbot-worker.exe") '
         '-Argument "start --nodaemon `"$Worker`"" -WorkingDirectory $Worker'),
        ("$Principal = New-ScheduledTaskPrincipal -UserId \"${env:USERDOMAIN}\\${env:USERNAME}\" -LogonType S4U "
         "-RunLevel Limited"),
        ("Register-ScheduledTask -TaskName $TaskName -Action $Action -Trigger $Triggers -Settings $Settings "
         "-Principal $Principal -Description \"velofarm worker $Name (Buildbot worker for $Master)\" -Force | Out-Null"),
        "Start-ScheduledTask -TaskName $TaskName",
    ]
    commands = powershell_commands(text)
    positions = []
    for command in expected:
        assert command in commands, f"missing: {command}"
        positions.append(commands.index(command))
    assert positions == sorted(positions), "the commands run in another order"
    assert any(re.search(r"New-ScheduledTaskTrigger -AtStartup", c) for c in commands)
    assert added.secret.read_text().strip() not in text
    assert "-PasswordFile" in (added.bundle / "README.md").read_text()


def test_worker_list_reads_the_masters_state(farm: Path) -> None:
    add_worker(farm, "lin-2", ["linux-x86_64"])
    spec = load_spec(farm)
    answers = {
        "workers": {"workers": [{"name": "linux-1", "workerid": 1, "connected_to": [{"masterid": 1}]},
                                {"name": "lin-2", "workerid": 2, "connected_to": []}]},
        "builds?complete=false": {"builds": [{"builderid": 5, "number": 12, "workerid": 1}]},
        "builders": {"builders": [{"builderid": 5, "name": "build-linux-x86_64"}]},
        "builds?workerid=2&order=-buildid&limit=1": {"builds": [{"complete_at": 1767225600, "started_at": 1}]},
    }
    states, problem = worker_states(spec, answers.__getitem__)
    assert problem == ""
    table = render_table(states).splitlines()
    assert table[0].split() == ["WORKER", "PLATFORMS", "CONNECTED", "LAST", "SEEN", "CURRENT", "BUILD",
                                "DECLARED", "IN"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert re.search(r"linux-1\s+linux-x86_64,windows-x86_64-gnu,linux-arm64\s+yes\s+now\s+build-linux-x86_64 #12\s+farm.toml",
                     rows["linux-1"])
    assert re.search(r"lin-2\s+linux-x86_64\s+no\s+2026-01-01 00:00:00 UTC \(last build\)\s+-\s+workers/registry.toml",
                     rows["lin-2"])
    assert "never" in rows["mac-mini-1"]  # in the spec, never seen by the master

    def down(path: str) -> object:
        raise OSError("connection refused")
    states, problem = worker_states(spec, down)
    assert "did not answer" in problem and all(s.connected is None for s in states)


# ------------------------------------------------------------------------------- end to end

def velofarm(*args: str) -> subprocess.CompletedProcess[str]:
    """The real `velofarm` command, as a person on the master runs it."""
    return subprocess.run([sys.executable, "-m", "velofarm.cli.main", *args], capture_output=True, text=True,
                          timeout=400, check=False)


def worker_ctl(venv: Path, action: str, directory: Path) -> None:
    # `start` exits 1 when the worker has not attached within 10 s (a refused password, a busy
    # machine) while the worker goes on running: the test watches the REST API instead.
    subprocess.run([str(venv / "bin" / "buildbot-worker"), action, str(directory)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=120, check=False)


def refusals(directory: Path) -> int:
    log = directory / "twistd.log"
    return log.read_text(errors="replace").count("unauthorized login") if log.exists() else 0


@pytest.mark.integration
def test_onboarding_end_to_end(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """add → bootstrap → connect and build → wrong password refused → rotate → list → remove."""
    farm = make_farm(["linux-x86_64"], name="onboard", master={"worker_registry": "onboarding/registry.toml"})
    spec = str(farm.spec_path)
    out = velofarm("worker", "add", "onboard-1", "--platform", "linux-x86_64", "--spec", spec)
    assert out.returncode == 0, out.stderr
    secret = farm.secrets.path("worker-onboard-1")
    assert "password: " in out.stdout and str(secret) in out.stdout
    bundle = farm.root / "onboarding" / "onboard-1"
    farm.init_repo()
    farm.start_master()
    master_pid = (farm.master_dir / "twistd.pid").read_text().strip()
    machine = tmp_path / "machine"
    wrong = tmp_path / "wrong"
    try:
        # A worker with the right name but a wrong password is refused.
        workertac.create_worker_dir(wrong, f"127.0.0.1:{farm.pb_port}", "onboard-1", "not-the-password")
        worker_ctl(PROJECT_VENV, "start", wrong)
        farm.wait(lambda: refusals(wrong) > 0, 60, "the wrong password to be refused")
        assert "onboard-1" not in farm.connected_workers()
        worker_ctl(PROJECT_VENV, "stop", wrong)

        # The generated bootstrap: a real virtualenv with buildbot-worker from the package index.
        boot = subprocess.run(["bash", str(bundle / "bootstrap.sh"), "--password-file", str(secret),
                               "--dir", str(machine), "--no-service"], capture_output=True, text=True, timeout=600, check=False)
        assert boot.returncode == 0, boot.stdout + boot.stderr
        venv = machine / "venv"
        worker_ctl(venv, "start", machine / "worker")
        farm.wait(lambda: "onboard-1" in farm.connected_workers(), 60, "onboard-1 to connect")

        listed = velofarm("worker", "list", "--spec", spec)
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if line.startswith("onboard-1 "))
        assert re.search(r"onboard-1\s+linux-x86_64\s+yes\s+now\s+-\s+onboarding/registry.toml", row), row

        # It takes the platform build of a release (the farm.toml worker is never started).
        farm.push_tag("v0.1.0")
        release = farm.wait_release(1)
        assert release["results"] == 0, release["state_string"]
        build = farm.builds("build-linux-x86_64")[-1]
        assert build["workerid"] == farm.api("workers/onboard-1")["workers"][0]["workerid"]

        # rotate + reconfig: the old password is refused from then on.
        assert velofarm("worker", "rotate", "onboard-1", "--spec", spec).returncode == 0
        reconfig = velofarm("reconfig", "--spec", spec)
        assert reconfig.returncode == 0, reconfig.stdout + reconfig.stderr
        before = refusals(machine / "worker")
        worker_ctl(venv, "stop", machine / "worker")
        worker_ctl(venv, "start", machine / "worker")
        farm.wait(lambda: refusals(machine / "worker") > before, 60, "the old password to be refused")
        assert "onboard-1" not in farm.connected_workers()
        listed = velofarm("worker", "list", "--spec", spec)
        row = next(line for line in listed.stdout.splitlines() if line.startswith("onboard-1 "))
        assert re.search(r"onboard-1\s+linux-x86_64\s+no\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(last build\)", row), row

        # The new password, handed over by running the bootstrap again, is accepted.
        boot = subprocess.run(["bash", str(bundle / "bootstrap.sh"), "--password-file", str(secret),
                               "--dir", str(machine), "--no-service"], capture_output=True, text=True, timeout=600, check=False)
        assert boot.returncode == 0, boot.stdout + boot.stderr
        worker_ctl(venv, "stop", machine / "worker")
        worker_ctl(venv, "start", machine / "worker")
        farm.wait(lambda: "onboard-1" in farm.connected_workers(), 60, "onboard-1 to connect again")

        # remove + reconfig disconnects it; the master never restarted.
        removed = velofarm("worker", "remove", "onboard-1", "--spec", spec)
        assert removed.returncode == 0, removed.stderr
        assert not secret.exists() and not bundle.exists()
        assert velofarm("reconfig", "--spec", spec).returncode == 0
        farm.wait(lambda: "onboard-1" not in farm.connected_workers(), 60, "onboard-1 to be disconnected")
        assert "onboard-1" not in velofarm("worker", "list", "--spec", spec).stdout
        assert (farm.master_dir / "twistd.pid").read_text().strip() == master_pid
    finally:
        for directory in (wrong, machine / "worker"):
            if (directory / "twistd.pid").exists():
                subprocess.run([*workertac.WORKER_CMD, "stop", str(directory)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60, check=False)
