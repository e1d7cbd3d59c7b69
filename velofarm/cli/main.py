"""The `velofarm` command: a thin face over the core and the Buildbot layer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from velofarm.errors import VelofarmError


def _spec(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from velofarm.spec.farm import load_spec
    return load_spec(args.spec)


def cmd_check(args: argparse.Namespace) -> int:
    import subprocess
    import tempfile

    from velofarm.cli.masterdir import buildbot_command, create_master
    spec = _spec(args)
    if args.list:  # the farm as it will run; no master needed
        from velofarm.cli.farmlist import farm_listing
        sys.stdout.write(farm_listing(spec))
        return 0
    print(f"{spec.path.name}: ok: {len(spec.platforms)} platforms, {len(spec.workers)} workers, "
          f"publisher {spec.release.publisher}")
    with tempfile.TemporaryDirectory(prefix="velofarm-check-") as tmp:
        create_master(Path(tmp), spec.path)
        out = subprocess.run([*buildbot_command(), "checkconfig", tmp], capture_output=True, text=True)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    return out.returncode


def cmd_master_create(args: argparse.Namespace) -> int:
    from velofarm.cli.masterdir import create_master
    spec = _spec(args)
    create_master(Path(args.dir), spec.path)
    print(f"master created in {args.dir} for {spec.path}; start it with: buildbot start {args.dir}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from velofarm.publish.directory import DirectoryPublisher
    from velofarm.release.keys import load_trusted_keys
    from velofarm.release.verify import load_release
    if args.unsigned:
        trusted = None
    elif args.keys or Path("keys").is_dir():
        trusted = load_trusted_keys(Path(args.keys or "keys"))
    else:
        raise VelofarmError("publish: no keys/ here to check the release's signatures with; pass --keys DIR "
                            "(or --unsigned for a release made without signing)")
    release = load_release(Path(args.release_dir), trusted)
    if args.to == "directory":
        if not args.dest:
            raise VelofarmError("--to directory needs --dest FOLDER")
        publisher = DirectoryPublisher(Path(args.dest))
    elif args.to == "gitea":
        from velofarm.publish.gitea import GiteaPublisher
        if not args.url or not args.repo or not args.token_file:
            raise VelofarmError("--to gitea needs --url https://GITEA-HOST, --repo OWNER/NAME and --token-file FILE")
        publisher = GiteaPublisher(args.url, args.repo, read_token(args.token_file, "Gitea"))
    else:
        from velofarm.publish.github import GitHubPublisher
        if not args.repo or not args.token_file:
            raise VelofarmError("--to github needs --repo OWNER/NAME and --token-file FILE")
        publisher = GitHubPublisher(args.repo, read_token(args.token_file, "GitHub"), api_url=args.api_url)
    outcome = publisher.publish(release)
    print(f"{release.tag}: {outcome.state}: {outcome.location}")
    for action in outcome.actions:
        print(f"  {action}")
    return 0


def read_token(path: str, forge: str) -> str:
    """A token from a file (never from the command line, where `ps` and shell history would show it)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise VelofarmError(f"--token-file {path}: cannot read it ({exc.strerror})") from None
    if not token:
        raise VelofarmError(f"{path}: empty; put the {forge} token in it")
    return token


def cmd_verify(args: argparse.Namespace) -> int:
    from velofarm.cli.verify import run_verify
    return run_verify(args)


def cmd_notify(args: argparse.Namespace) -> int:
    from velofarm.buildmaster.hookclient import send_tag_changes
    return send_tag_changes(args.master, Path(args.password_file), args.repository, sys.stdin,
                            Path(args.ca_file) if args.ca_file else None)


def cmd_demo(args: argparse.Namespace) -> int:
    from velofarm.cli.demo import run_demo
    return run_demo(Path(args.dir), once=args.once, spec_template=Path(args.spec), use_docker=not args.no_docker)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="velofarm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help: str, spec: bool = True) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        if spec:
            p.add_argument("--spec", default="farm.toml", help="the farm spec (default: ./farm.toml)")
        return p

    p = add("check", cmd_check, "validate farm.toml, then run buildbot checkconfig on its master")
    p.add_argument("--list", action="store_true",
                   help="print the farm as it will run (platforms, builders, workers, schedulers) instead")
    p = add("master-create", cmd_master_create, "create a master folder bound to the spec")
    p.add_argument("dir")
    p = add("publish", cmd_publish, "(re)publish a verified release folder by hand", spec=False)
    p.add_argument("release_dir")
    p.add_argument("--to", choices=("github", "gitea", "directory"), required=True)
    p.add_argument("--repo", help="OWNER/NAME (github, gitea)")
    p.add_argument("--url", help="gitea: the Gitea/Forgejo root URL, e.g. https://gitea.example.com")
    p.add_argument("--api-url", default="https://api.github.com", help="GitHub Enterprise: https://HOST/api/v3")
    p.add_argument("--token-file", help="a file holding the token (never pass a token on the command line)")
    p.add_argument("--dest", help="the releases folder (directory)")
    p.add_argument("--keys", help="the farm's public keys, to check the signatures first (default: ./keys)")
    p.add_argument("--unsigned", action="store_true", help="publish a release made without signing")
    p = add("verify", cmd_verify, "check a release: checksums, both signatures, provenance, SBOM "
            "(exit 0 ok, 1 verification failed, 2 bad input)", spec=False)
    from velofarm.cli.verify import add_verify_arguments
    add_verify_arguments(p)
    p = add("notify", cmd_notify, "send pushed tags to the master (git post-receive hook)", spec=False)
    p.add_argument("--master", required=True, help="HOST:PORT of the master's PB port")
    p.add_argument("--password-file", required=True)
    p.add_argument("--repository", required=True)
    p.add_argument("--ca-file", help="the farm's CA: connect over TLS (the master has pb_tls = true)")
    p = add("demo", cmd_demo, "release the example project locally, end to end")
    p.set_defaults(spec=str(Path(__file__).resolve().parents[2] / "farm.toml"))
    p.add_argument("--dir", default=".demo", help="scratch folder (default .demo)")
    p.add_argument("--once", action="store_true", help="exit when the release is done")
    p.add_argument("--no-docker", action="store_true",
                   help="build on host worker processes even when a Docker engine is reachable")
    for register in extra_commands():
        register(sub)
    return parser


def extra_commands() -> list:  # type: ignore[type-arg]
    """Command groups kept in their own modules; each adds its subparsers."""
    from velofarm.cli import artifacts as cli_artifacts
    from velofarm.cli import image as cli_image
    from velofarm.cli import keys as cli_keys
    from velofarm.cli import plan as cli_plan
    from velofarm.cli import users as cli_users
    from velofarm.cli import workers as cli_workers
    return [cli_users.register, cli_workers.register, cli_plan.register, cli_keys.register, cli_artifacts.register,
            cli_image.register]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VelofarmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
