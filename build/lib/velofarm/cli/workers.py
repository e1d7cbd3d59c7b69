"""`velofarm worker add|list|remove|rotate`, `velofarm doctor` and `velofarm reconfig`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from velofarm.errors import SpecError, VelofarmError
from velofarm.spec.platforms import OSES

RECONFIG_TIMEOUT = 300  # seconds; a busy master can take a while to load a large config


def cmd_worker_add(args: argparse.Namespace) -> int:
    from velofarm.onboard.manage import add_worker, open_farm
    added = add_worker(args.spec, args.name, args.platform or [], args.max_builds, args.os)
    farm = open_farm(args.spec)
    bundle, secret = added.bundle, added.secret  # absolute: the command may run from anywhere
    script = "bootstrap.ps1" if added.os == "windows" else "bootstrap.sh"
    print(f"worker {added.worker} ({added.os}; {', '.join(added.platforms)}) registered in "
          f"{farm.shown(farm.registry)}")
    print(f"password: {secret} (mode 0600; it is not in farm.toml, the registry or the bundle)")
    print(f"bundle:   {bundle}/ ({', '.join(f for f in added.files if not f.startswith('toolchain/'))}, "
          "toolchain/)")
    print("next:")
    print(f"  1. velofarm reconfig                      # the running master accepts {added.worker}")
    copy = f"velofarm-{added.worker}"
    print(f"  2. scp -r {bundle} HOST:{copy} && scp {secret} HOST:{copy}.password")
    print(f"  3. on HOST, as the build user: follow {copy}/README.md ({script} --password-file ...)")
    warning = _reachability_warning(farm.spec_path)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _reachability_warning(spec_path: Path) -> str:
    from velofarm.spec.farm import load_spec
    master = load_spec(spec_path).master
    if master.public_host in ("127.0.0.1", "localhost", "::1"):
        return (f"[master] public_host is {master.public_host}: only a worker on the master's own machine "
                "can connect; set public_host in farm.toml to the master's name on the network, then "
                "run velofarm worker remove and add again to rewrite the bundle")
    return ""


def cmd_worker_list(args: argparse.Namespace) -> int:
    from velofarm.onboard.status import render_table, rest_fetcher, worker_states
    from velofarm.spec.farm import load_spec
    spec = load_spec(args.spec)
    states, problem = worker_states(spec, rest_fetcher(args.url or spec.master.url))
    print(render_table(states))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def cmd_worker_remove(args: argparse.Namespace) -> int:
    from velofarm.onboard.manage import remove_worker
    os_name, steps = remove_worker(args.spec, args.name)
    print(f"worker {args.name} removed from the registry; its password and bundle are deleted")
    print("next: velofarm reconfig   # the master disconnects it (a build it is running ends)")
    print(f"then on the machine ({os_name}):")
    print("".join(f"  {line}\n" for line in steps.splitlines()), end="")
    return 0


def cmd_worker_rotate(args: argparse.Namespace) -> int:
    from velofarm.onboard.manage import open_farm, rotate_worker
    path = rotate_worker(args.spec, args.name)
    shown = open_farm(args.spec).shown(path)
    print(f"worker {args.name}: new password in {shown} (mode 0600)")
    print("next: velofarm reconfig   # from then on the master refuses the old password")
    print(f"then copy {shown} to the machine and run its bootstrap again with --password-file "
          "(or replace worker/worker.password there and restart the worker)")
    print("a connection made with the old password stays up until the worker reconnects")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from velofarm.onboard.doctor import diagnose, host_os, render, select_platforms
    from velofarm.spec.farm import load_spec
    spec = load_spec(args.spec)
    reports = diagnose(spec, select_platforms(spec, args.platform or [], args.worker, host_os()))
    print(render(reports))
    return 1 if any(r.missing for r in reports) else 0


def cmd_reconfig(args: argparse.Namespace) -> int:
    from velofarm.cli.masterdir import buildbot_command
    from velofarm.secretstore import SecretStore, worker_secret_name
    from velofarm.spec.farm import load_spec
    spec = load_spec(args.spec)
    store = SecretStore(spec.resolve(spec.master.secrets_dir))
    store.check()
    for name in spec.workers:
        if not store.get(worker_secret_name(name)):
            raise SpecError(f"worker {name}: its password (secret {worker_secret_name(name)}) is missing "
                            f"from {store.directory}; run: velofarm worker rotate {name}")
    master_dir = Path(args.master_dir) if args.master_dir else spec.root / "master"
    if not (master_dir / "twistd.pid").is_file():
        raise VelofarmError(f"{master_dir}: no running master (no twistd.pid); start it with "
                            f"buildbot start {master_dir}, or pass --master-dir")
    print(f"{spec.path.name}: ok: {len(spec.platforms)} platforms, {len(spec.workers)} workers; "
          f"reconfiguring the master in {master_dir}")
    command = [*buildbot_command(), "reconfig", f"--progress_timeout={RECONFIG_TIMEOUT}", str(master_dir)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=RECONFIG_TIMEOUT + 60, check=False)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        raise VelofarmError(f"buildbot reconfig {master_dir} failed (exit {out.returncode}); the master "
                            "keeps its previous configuration: see the lines above and "
                            f"{master_dir / 'twistd.log'}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{value} is not from 1 to 64")
    return value


def register(sub: Any) -> None:
    """Add this group's subcommands to the velofarm parser."""
    spec_help = "the farm spec (default: ./farm.toml)"
    text = "add, list, remove workers and rotate their passwords"
    worker: argparse.ArgumentParser = sub.add_parser("worker", help=text, description=text)
    actions = worker.add_subparsers(dest="worker_command", required=True)

    def add(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
        p.add_argument("--spec", default="farm.toml", help=spec_help)
        p.set_defaults(func=func)
        return p

    p = add("add", cmd_worker_add, "register a worker, generate its password and write its onboarding bundle")
    p.add_argument("name")
    p.add_argument("--platform", action="append", metavar="P", help="a platform it builds (repeat for more)")
    p.add_argument("--max-builds", type=_positive, default=1, help="builds at once (default 1)")
    p.add_argument("--os", choices=OSES,
                   help="its operating system (default: the one its platforms build on)")
    p = add("list", cmd_worker_list, "every worker: platforms, connected or not, last seen, current build")
    p.add_argument("--url", help="the master's web URL (default: [master] url)")
    p = add("remove", cmd_worker_remove, "unregister a worker and delete its password and bundle")
    p.add_argument("name")
    p = add("rotate", cmd_worker_rotate, "give a worker a new password (the old one works until reconfig)")
    p.add_argument("name")

    p = sub.add_parser("doctor", help="check this machine has what each platform's build needs",
                       description="check this machine has what each platform's build needs, and print "
                                   "the command that installs each missing item")
    p.add_argument("--spec", default="farm.toml", help=spec_help)
    p.add_argument("--platform", action="append", metavar="P", help="check this platform (repeat for more)")
    p.add_argument("--worker", help="check the platforms of this worker")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("reconfig",
                       help="validate the spec, then make the running master load it (no restart)",
                       description="validate the spec, then make the running master load it without a "
                                   "restart; running builds go on")
    p.add_argument("--spec", default="farm.toml", help=spec_help)
    p.add_argument("--master-dir", help="the master's folder (default: master/ beside farm.toml)")
    p.set_defaults(func=cmd_reconfig)
