"""The onboarding bundle `workers/<NAME>/`: a bootstrap script, a README and the toolchain check.

Everything in it is safe to commit: the password stays in the master's secrets folder and is
handed to the bootstrap as a file (`--password-file`), never written here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from velofarm.errors import SpecError
from velofarm.onboard import workertac
from velofarm.spec.farm import Spec, Worker
from velofarm.spec.job import build_job
from velofarm.worker_tools import preflight

PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative, with '/'
    text: str
    executable: bool = False


@dataclass(frozen=True)
class Flavour:
    """What differs between the three operating systems a worker can run."""

    bootstrap: str
    service_kind: str
    service_prefix: str
    home: str
    sep: str


FLAVOURS = {
    "linux": Flavour("bootstrap.sh", "systemd unit", "velofarm-worker-", "~", "/"),
    "macos": Flavour("bootstrap.sh", "launchd daemon", "net.velofarm.worker.", "~", "/"),
    "windows": Flavour("bootstrap.ps1", "scheduled task", "velofarm-worker-", "$HOME", "\\"),
}


def worker_version() -> str:
    """The buildbot-worker version workers must run: the master's own Buildbot version."""
    try:
        return metadata.version("buildbot")
    except metadata.PackageNotFoundError:
        raise SpecError("Buildbot is not installed in this Python; install velofarm (pip install -e .) "
                        "so the bundle can pin the master's version") from None


def master_address(spec: Spec) -> str:
    """host:port workers connect to: [master] public_host and pb_port."""
    host = spec.master.public_host
    if not isinstance(host, str) or not HOST.match(host):
        raise SpecError(f"{spec.path.name}: master.public_host: '{host}' is not a host name or IPv4 address; "
                        "set it to the name workers use to reach the master, e.g. \"builds.example.com\"")
    return f"{host}:{spec.master.pb_port}"


def worker_os(worker: Worker, spec: Spec) -> str:
    """The worker's OS: declared, else the OS its platforms build on."""
    return worker.os or spec.platforms[worker.platforms[0]].os


def render(template: str, values: dict[str, str]) -> str:
    """Fill @@KEY@@ placeholders; a multi-line value keeps the placeholder's indentation."""
    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template placeholder @@{key}@@ has no value")
        line_start = template.rfind("\n", 0, match.start()) + 1
        line = template[line_start:match.start()]
        indent = line[:len(line) - len(line.lstrip())]
        return values[key].replace("\n", "\n" + indent)
    return PLACEHOLDER.sub(fill, template)


def _template(name: str) -> str:
    return resources.files("velofarm.onboard").joinpath("templates", name).read_text(encoding="utf-8")


def render_bundle(spec: Spec, worker: Worker, secret_shown: str, bundle_shown: str) -> list[BundleFile]:
    """Every file of the worker's bundle; `*_shown` are the paths the README tells people to copy."""
    os_name = worker_os(worker, spec)
    values = _common_values(spec, worker, os_name)
    files = [BundleFile("README.md", render(_template("worker-README.md"),
                                            {**values, **_readme_values(worker, os_name, secret_shown,
                                                                       bundle_shown, spec)}))]
    if os_name == "windows":
        files.append(BundleFile("bootstrap.ps1", render(_template("bootstrap.ps1"), {
            **values, "PLATFORMS": ", ".join(f'"{p}"' for p in worker.platforms),
            "READ_FILE": workertac.READ_FILE.replace("'", "''")})))
    else:
        service = render(_template(f"service-{os_name}.sh"), values)
        status = ("status: systemctl status $UNIT; logs: journalctl -u $UNIT" if os_name == "linux"
                  else "status: sudo launchctl print system/$LABEL")
        files.append(BundleFile("bootstrap.sh", render(_template("bootstrap.sh"), {
            **values, "PLATFORMS": " ".join(f'"{p}"' for p in worker.platforms),
            "READ_FILE": repr(workertac.READ_FILE), "SERVICE": service.rstrip("\n"),
            "STATUS_HINT": status}), executable=True))
    files.append(BundleFile("toolchain/preflight.py", Path(preflight.__file__).read_text(encoding="utf-8")))
    for name in worker.platforms:
        job = build_job(spec, spec.platforms[name])
        files.append(BundleFile(f"toolchain/{name}.json", json.dumps(job, indent=1) + "\n"))
    return files


def _common_values(spec: Spec, worker: Worker, os_name: str) -> dict[str, str]:
    flavour = FLAVOURS[os_name]
    return {"NAME": worker.name, "MASTER": master_address(spec), "OS": os_name, "VERSION": worker_version(),
            "PLACEHOLDER": workertac.PLACEHOLDER, "SERVICE_KIND": flavour.service_kind}


def _readme_values(worker: Worker, os_name: str, secret: str, bundle: str, spec: Spec) -> dict[str, str]:
    f = FLAVOURS[os_name]
    name, copy = worker.name, f"velofarm-{worker.name}"
    script = f"{copy}{f.sep}{f.bootstrap}"
    password = f"{f.home}{f.sep}{copy}.password"
    if os_name == "windows":
        doctor = f"powershell -ExecutionPolicy Bypass -File {script} -Doctor"
        run = f"powershell -ExecutionPolicy Bypass -File {script} -PasswordFile {password}"
        run_as = ("In an elevated PowerShell, as the user that builds (it owns the rustup toolchain and "
                  "the Visual Studio Build Tools), run:")
        delete, mode = f"Remove-Item {password}", "readable by this user and Administrators only"
    else:
        doctor, run = f"bash {script} --doctor", f"bash {script} --password-file {password}"
        run_as = ("As the user that builds (it owns `~/.cargo`; `sudo` is asked for only to install the "
                  "service), run:")
        delete, mode = f"rm {password}", "mode 0600"
    return {
        "OS_TITLE": {"linux": "Linux", "macos": "macOS", "windows": "Windows"}[os_name],
        "PLATFORMS": ", ".join(f"`{p}`" for p in worker.platforms), "MAX_BUILDS": str(worker.max_builds),
        "SERVICE_NAME": f.service_prefix + name, "BOOTSTRAP": f.bootstrap, "SECRET": secret,
        "COPY": f"scp -r {bundle} HOST:{copy}\nscp {secret} HOST:{copy}.password",
        "DOCTOR": doctor, "RUN_AS": run_as, "RUN": run, "DELETE_COPY": delete, "PASSWORD_MODE": mode,
        "DIR": "C:\\velofarm-worker" if os_name == "windows" else "~/velofarm-worker",
        "WHY": WHY[os_name], "OPTIONS": OPTIONS[f.bootstrap.rsplit(".", 1)[1]], "UI": spec.master.url,
        "STATUS": STATUS[os_name].replace("NAME", name),
        "LOG": ("C:\\velofarm-worker\\worker\\twistd.log" if os_name == "windows"
                else "~/velofarm-worker/worker/twistd.log"),
        "REMOVE": removal_steps(os_name, name),
    }


WHY = {
    "linux": ("Why a systemd system unit: it starts at boot without anyone logged in, restarts\n"
              "the worker if it stops, and runs it as the user who ran the bootstrap."),
    "macos": ("Why a launchd daemon (not an agent): a build Mac is usually headless; a daemon\n"
              "starts at boot without a login, `UserName` runs it as the build user, and\n"
              "`KeepAlive` restarts it."),
    "windows": ("Why a scheduled task (not a service): buildbot-worker's service needs pywin32, a\n"
                "registry entry and the build user's password; a task at startup with an S4U logon\n"
                "runs as the build user without storing a password, and Windows has it built in."),
}
OPTIONS = {
    "sh": ("`--dir DIR` (default `~/velofarm-worker`), `--python`, `--pip-args` (e.g. a\n"
           "mirror), `--venv` (an existing virtualenv), `--no-service` (start it by hand)"),
    "ps1": ("`-Dir DIR` (default `C:\\velofarm-worker`), `-Python`, `-PipArgs` (e.g. a\n"
            "mirror), `-Venv` (an existing virtualenv), `-NoService` (start it by hand)"),
}
STATUS = {
    "linux": "`systemctl status velofarm-worker-NAME`; `journalctl -u velofarm-worker-NAME`",
    "macos": "`sudo launchctl print system/net.velofarm.worker.NAME`",
    "windows": "`Get-ScheduledTask -TaskName velofarm-worker-NAME | Get-ScheduledTaskInfo`",
}


def removal_steps(os_name: str, name: str) -> str:
    """The commands that take a worker off its machine (after `velofarm worker remove`)."""
    if os_name == "windows":
        return (f"Stop-ScheduledTask -TaskName velofarm-worker-{name}\n"
                f"Unregister-ScheduledTask -TaskName velofarm-worker-{name} -Confirm:$false\n"
                f"Remove-Item -Recurse -Force C:\\velofarm-worker, $HOME\\velofarm-{name}")
    if os_name == "macos":
        return (f"sudo launchctl bootout system/net.velofarm.worker.{name}\n"
                f"sudo rm /Library/LaunchDaemons/net.velofarm.worker.{name}.plist\n"
                f"rm -rf ~/velofarm-worker ~/velofarm-{name}")
    return (f"sudo systemctl disable --now velofarm-worker-{name}.service\n"
            f"sudo rm /etc/systemd/system/velofarm-worker-{name}.service && sudo systemctl daemon-reload\n"
            f"rm -rf ~/velofarm-worker ~/velofarm-{name}")


def write_bundle(directory: Path, files: list[BundleFile]) -> None:
    """Write the bundle into a temporary folder, then rename it into place (all or nothing)."""
    if directory.exists():
        raise SpecError(f"{directory}: already exists (left from an earlier worker?); delete it, then "
                        "add the worker again")
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for f in files:
            path = tmp.joinpath(*f.path.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(f.text)
            path.chmod(0o755 if f.executable else 0o644)
        tmp.rename(directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
