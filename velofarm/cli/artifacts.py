"""`velofarm artifacts prune`: remove old dry-run and unpublished artifacts from the master's store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from velofarm.errors import ArtifactError


def artifacts_root(spec_path: str, master_dir: str | None) -> tuple[Path, int]:
    """The store of the master beside farm.toml (or --master), and [master] keep_tags."""
    from velofarm.spec.farm import load_spec
    spec = load_spec(spec_path)
    master = Path(master_dir) if master_dir else spec.path.parent / "master"
    if not master.is_dir():
        raise ArtifactError(f"{master}: no master folder there; pass --master DIR (the folder with buildbot.tac)")
    return master / spec.master.artifacts_dir, spec.master.keep_tags


def cmd_prune(args: argparse.Namespace) -> int:
    from velofarm.artifacts.retention import plan_prune, prune
    root, keep_tags = artifacts_root(args.spec, args.master)
    keep = args.keep if args.keep is not None else keep_tags
    if not keep:
        raise ArtifactError("say how many tags to keep: --keep N, or set [master] keep_tags in farm.toml")
    plan = plan_prune(root, keep)
    verb = "would remove" if args.dry_run else "removing"
    for tag in plan.remove:
        print(f"{verb} {root / tag}")
    print(f"kept: {len(plan.keep_newest)} newest ({', '.join(plan.keep_newest) or 'none'}), "
          f"{len(plan.keep_published)} published ({', '.join(plan.keep_published) or 'none'}; never pruned)")
    if not args.dry_run:
        prune(root, plan)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("keep at least 1 tag")
    return value


def register(sub: Any) -> None:
    text = "manage the master's artifact store"
    group: argparse.ArgumentParser = sub.add_parser("artifacts", help=text, description=text)
    actions = group.add_subparsers(dest="artifacts_command", required=True)
    text = "remove the artifacts of all but the N newest unpublished tags (a published release's are kept)"
    p: argparse.ArgumentParser = actions.add_parser("prune", help=text, description=text)
    p.add_argument("--spec", default="farm.toml", help="the farm spec (default: ./farm.toml)")
    p.add_argument("--master", help="the master folder (default: master/ beside farm.toml)")
    p.add_argument("--keep", type=_positive, help="tags to keep (default: [master] keep_tags)")
    p.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    p.set_defaults(func=cmd_prune)
